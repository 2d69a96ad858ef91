#include "chronos/model/weight_arena.h"

#include <ATen/ATen.h>
#include <sys/mman.h>

#include <cstdint>
#include <map>
#include <memory>
#include <new>
#include <vector>

namespace chronos {
namespace {

constexpr int64_t kHugePage = 2 << 20;
constexpr int64_t kAlignment = 64;

int64_t round_up(int64_t n, int64_t to) { return (n + to - 1) / to * to; }

// `bytes` (a multiple of kHugePage) of fresh anonymous memory at a kHugePage boundary, advised
// MADV_HUGEPAGE before anything touches it; unmapped when the last owner lets go. Not malloc's: once a
// large block has been freed (a model's float32 weights, converted), malloc serves blocks up to 32 MiB
// from its heap, whose pages are already mapped 4 KiB at a time, and advice does not change mapped
// pages (fine.json's int8 arena had no huge page at all).
std::shared_ptr<void> map_huge_pages(int64_t bytes) {
  const auto size = static_cast<size_t>(bytes), slack = static_cast<size_t>(kHugePage);
  void* raw = ::mmap(nullptr, size + slack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) throw std::bad_alloc();
  const auto start = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t aligned = (start + slack - 1) / slack * slack;
  if (aligned > start) ::munmap(raw, aligned - start);
  ::munmap(reinterpret_cast<void*>(aligned + size), start + slack - aligned);  // never empty: aligned < start + slack
  void* base = reinterpret_cast<void*>(aligned);
  ::madvise(base, size, MADV_HUGEPAGE);  // advice: without THP, ordinary pages
  return std::shared_ptr<void>(base, [size](void* p) { ::munmap(p, size); });
}

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
  const std::shared_ptr<void> arena = map_huge_pages(capacity);
  auto* base = static_cast<char*>(arena.get());

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
