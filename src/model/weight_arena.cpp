#include "chronos/model/weight_arena.h"

#include <ATen/ATen.h>
#include <sys/mman.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <new>
#include <vector>

namespace chronos {
namespace {

constexpr int64_t kHugePage = 2 << 20;
constexpr int64_t kAlignment = 64;

int64_t round_up(int64_t n, int64_t to) { return (n + to - 1) / to * to; }

}  // namespace

int64_t gather_weights_in_huge_pages(torch::nn::Module& module) {
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> tensors;
  for (const at::Tensor& t : module.parameters(/*recurse=*/true)) tensors.push_back(t);
  for (const at::Tensor& t : module.buffers(/*recurse=*/true)) tensors.push_back(t);

  // A tensor with the same data pointer and layout as an earlier one (a tied weight) follows it. Any
  // other sharing of memory (views into one storage) is left alone: moving it would untie it.
  std::map<const void*, at::Tensor> first_of_storage;
  std::vector<at::Tensor> moved;
  std::map<const void*, int64_t> offset_of;
  int64_t total = 0;
  for (const at::Tensor& t : tensors) {
    if (!t.defined() || !t.device().is_cpu() || t.numel() == 0) continue;
    const void* storage = t.storage().unsafeGetStorageImpl();
    const auto [it, fresh] = first_of_storage.emplace(storage, t);
    if (!fresh) {
      const at::Tensor& first = it->second;
      if (first.data_ptr() != t.data_ptr() || first.sizes() != t.sizes() || first.strides() != t.strides() ||
          first.scalar_type() != t.scalar_type())
        return 0;
    } else {
      offset_of[storage] = total;
      total = round_up(total + static_cast<int64_t>(t.numel() * t.element_size()), kAlignment);
    }
    moved.push_back(t);
  }
  if (total == 0) return 0;

  const int64_t capacity = round_up(total, kHugePage);
  void* raw = std::aligned_alloc(kHugePage, static_cast<size_t>(capacity));
  if (raw == nullptr) throw std::bad_alloc();
  ::madvise(raw, static_cast<size_t>(capacity), MADV_HUGEPAGE);  // advice: without THP, ordinary pages
  const std::shared_ptr<void> arena(raw, std::free);
  auto* base = static_cast<char*>(raw);

  std::map<const void*, at::Tensor> view_of;
  for (at::Tensor& tensor : moved) {
    const auto* data = static_cast<const char*>(tensor.data_ptr());
    if (data >= base && data < base + capacity) continue;  // registered twice: moved already
    const void* storage = tensor.storage().unsafeGetStorageImpl();
    auto it = view_of.find(storage);
    if (it == view_of.end()) {
      at::Tensor view = at::from_blob(
          base + offset_of[storage], tensor.sizes(), [arena](void*) {}, tensor.options().requires_grad(false));
      view.copy_(tensor);
      it = view_of.emplace(storage, view).first;
    }
    tensor.set_data(it->second);
  }
  return total;
}

}  // namespace chronos
