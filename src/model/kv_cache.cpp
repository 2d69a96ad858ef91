#include "chronos/model/kv_cache.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cstring>

#include "chronos/core/error.h"

namespace chronos {

const char* to_string(KvDtype dtype) { return dtype == KvDtype::bf16 ? "bf16" : "fp32"; }

KvDtype parse_kv_dtype(const std::string& name) {
  if (name == "fp32") return KvDtype::fp32;
  if (name == "bf16") return KvDtype::bf16;
  throw InvalidArgument(cat("unknown KV cache dtype '", name, "' (fp32 or bf16)"));
}

namespace {

// Whether `storage` (a view's base) can take `extra` more positions after [start, start+length) for
// tensors shaped like `like`, kept in `dtype`.
bool fits(const at::Tensor& storage, int64_t start, int64_t length, int64_t extra, const at::Tensor& like, at::ScalarType dtype) {
  if (!storage.defined() || storage.scalar_type() != dtype || storage.device() != like.device() ||
      storage.dim() != like.dim() || storage.size(0) != like.size(0) || start + length + extra > storage.size(1))
    return false;
  for (int64_t d = 2; d < like.dim(); ++d)
    if (storage.size(d) != like.size(d)) return false;
  return true;
}

at::Tensor grown(const at::Tensor& live, const at::Tensor& like, at::ScalarType dtype, int64_t capacity) {
  std::vector<int64_t> shape(like.sizes().begin(), like.sizes().end());
  shape[1] = capacity;
  at::Tensor storage = at::empty(shape, like.options().dtype(dtype));
  if (live.defined() && live.size(1) > 0) storage.narrow(1, 0, live.size(1)).copy_(live);
  return storage;
}

// view = storage.narrow(1, start, length). When nothing else holds the view (the attention's own
// references end with its step), its sizes and offset change in place: narrow() builds a new tensor
// through the dispatcher, two a layer per token, 3.8% of a step of the fine preset.
void narrow_view(at::Tensor& view, const at::Tensor& storage, int64_t start, int64_t length) {
  c10::TensorImpl* impl = view.defined() ? view.unsafeGetTensorImpl() : nullptr;
  if (impl != nullptr && view.use_count() == 1 && impl->allow_tensor_metadata_change() && !view.requires_grad() &&
      view.is_alias_of(storage) && view.dim() == storage.dim() && view.strides() == storage.strides()) {
    std::vector<int64_t> sizes(storage.sizes().begin(), storage.sizes().end());
    sizes[1] = length;
    impl->set_sizes_and_strides(sizes, storage.strides());
    impl->set_storage_offset(storage.storage_offset() + start * storage.stride(1));
    return;
  }
  view = storage.narrow(1, start, length);
}

// Writes n float32 values into `to` as `dtype`: float32, or bfloat16 rounded to nearest even, as
// at::Tensor::to rounds.
void put_floats(void* to, const float* from, int64_t n, at::ScalarType dtype) {
  if (dtype == at::kFloat) {
    std::memcpy(to, from, static_cast<size_t>(n) * sizeof(float));
    return;
  }
  c10::BFloat16* out = static_cast<c10::BFloat16*>(to);
  for (int64_t i = 0; i < n; ++i) out[i] = c10::BFloat16(from[i]);
}

// Copies the contiguous CPU tensor t into `to`, converted to `dtype`.
void put_converted(void* to, const at::Tensor& t, at::ScalarType dtype) {
  if (t.scalar_type() == dtype) {
    std::memcpy(to, t.data_ptr(), t.nbytes());
  } else if (t.scalar_type() == at::kFloat && dtype == at::kBFloat16) {
    put_floats(to, t.data_ptr<float>(), t.numel(), dtype);
  } else {
    at::from_blob(to, t.sizes(), t.options().dtype(dtype)).copy_(t);
  }
}

}  // namespace

void LayerCache::append(const at::Tensor& a, const at::Tensor& b) {
  const int64_t length = this->length(), extra = a.size(1);
  if (a.requires_grad() || b.requires_grad() || (first.defined() && first.requires_grad())) {
    const at::Tensor a_kept = store_as == at::ScalarType::Undefined ? a : a.to(store_as);
    const at::Tensor b_kept = store_as == at::ScalarType::Undefined ? b : b.to(store_as);
    first = first.defined() ? at::cat({first, a_kept}, 1) : a_kept;
    second = second.defined() ? at::cat({second, b_kept}, 1) : b_kept;
    first_storage_ = second_storage_ = at::Tensor();
    first_base_ = second_base_ = nullptr;
    start_ = 0;
    return;
  }
  const at::ScalarType a_dtype = store_as == at::ScalarType::Undefined ? a.scalar_type() : store_as;
  const at::ScalarType b_dtype = store_as == at::ScalarType::Undefined ? b.scalar_type() : store_as;
  const bool in_place = first.defined() && fits(first_storage_, start_, length, extra, a, a_dtype) &&
                        fits(second_storage_, start_, length, extra, b, b_dtype);
  if (!in_place) {
    // Fresh storage, twice what is needed: the copy of the live positions is paid once per doubling.
    const int64_t capacity = std::max<int64_t>(2 * (length + extra), 64);
    first_storage_ = grown(first, a, a_dtype, capacity);
    second_storage_ = grown(second, b, b_dtype, capacity);
    start_ = 0;
  }
  // One sequence on the CPU (decode): its positions lie back to back in the storage, a plain copy.
  if (extra > 0 && a.size(0) == 1 && a.is_cpu() && b.is_cpu() && a.is_contiguous() && b.is_contiguous()) {
    const auto put = [&](at::Tensor& storage, const at::Tensor& t) {
      const int64_t bytes_per_position = t.numel() / extra * storage.element_size();
      put_converted(static_cast<char*>(storage.data_ptr()) + (start_ + length) * bytes_per_position, t, storage.scalar_type());
    };
    put(first_storage_, a);
    put(second_storage_, b);
  } else {
    first_storage_.narrow(1, start_ + length, extra).copy_(a);  // copy_ converts to the storage's dtype
    second_storage_.narrow(1, start_ + length, extra).copy_(b);
  }
  narrow_view(first, first_storage_, start_, length + extra);
  narrow_view(second, second_storage_, start_, length + extra);
  // What append_token needs: one sequence in contiguous CPU storage of float32 or bfloat16.
  const bool token_ready = a.size(0) == 1 && first_storage_.is_cpu() && first_storage_.is_contiguous() && second_storage_.is_contiguous() &&
                           first_storage_.scalar_type() == second_storage_.scalar_type() &&
                           (first_storage_.scalar_type() == at::kFloat || first_storage_.scalar_type() == at::kBFloat16);
  first_base_ = token_ready ? static_cast<char*>(first_storage_.data_ptr()) : nullptr;
  second_base_ = token_ready ? static_cast<char*>(second_storage_.data_ptr()) : nullptr;
  capacity_ = first_storage_.size(1);
  first_values_ = first_storage_.numel() / capacity_;
  second_values_ = second_storage_.numel() / capacity_;
  kept_ = first_storage_.scalar_type();
}

namespace {
// Grows a view's length by one in place (it starts where it did).
void grow_view(at::Tensor& view) { view.unsafeGetTensorImpl()->set_size(1, view.size(1) + 1); }
}  // namespace

bool LayerCache::append_token(const float* a, int64_t a_count, const float* b, int64_t b_count) {
  if (!open_token(a_count, b_count)) return false;
  put_token(0, a, a_count, 0, b, b_count);
  return true;
}

bool LayerCache::open_token(int64_t a_count, int64_t b_count) {
  if (first_base_ == nullptr || a_count != first_values_ || b_count != second_values_) return false;
  // The views change in place, so nothing else may hold them (as narrow_view asks).
  if (start_ + length() + 1 > capacity_ || first.use_count() != 1 || second.use_count() != 1 ||
      !first.unsafeGetTensorImpl()->allow_tensor_metadata_change() || !second.unsafeGetTensorImpl()->allow_tensor_metadata_change())
    return false;
  grow_view(first);
  grow_view(second);
  return true;
}

void LayerCache::put_token(int64_t a_offset, const float* a, int64_t a_count, int64_t b_offset, const float* b, int64_t b_count) {
  const int64_t element = static_cast<int64_t>(c10::elementSize(kept_)), last = start_ + length() - 1;
  put_floats(first_base_ + (last * first_values_ + a_offset) * element, a, a_count, kept_);
  put_floats(second_base_ + (last * second_values_ + b_offset) * element, b, b_count, kept_);
}

void LayerCache::keep_last(int64_t n) {
  const int64_t drop = length() - n;
  if (drop <= 0) return;
  if (first_storage_.defined()) {
    start_ += drop;
    narrow_view(first, first_storage_, start_, n);
    narrow_view(second, second_storage_, start_, n);
  } else {
    first = first.narrow(1, drop, n);
    second = second.narrow(1, drop, n);
  }
}

namespace {
// What a layer of a cache of `dtype` keeps its positions in (LayerCache::store_as).
at::ScalarType store_as(KvDtype dtype) { return dtype == KvDtype::bf16 ? at::kBFloat16 : at::ScalarType::Undefined; }
}  // namespace

KVCache::KVCache(int64_t num_layers, KvDtype dtype) : layers_(num_layers), dtype_(dtype) {
  for (LayerCache& layer : layers_) layer.store_as = store_as(dtype);
}

void KVCache::reset() {
  for (auto& layer : layers_) {
    layer = LayerCache{};
    layer.store_as = store_as(dtype_);
  }
  position_ = 0;
}

int64_t KVCache::bytes() const {
  int64_t total = 0;
  for (const auto& layer : layers_) {
    for (const auto* t : {&layer.first, &layer.second})
      if (t->defined()) total += t->numel() * t->element_size();
  }
  return total;
}

}  // namespace chronos
