// The output tensors of a one-token step, allocated once and handed out again. at::empty costs
// 0.3-0.7 us through the dispatcher and the allocator, ~1.2 us in a decode step whose streamed
// weights have evicted their state (fine.json int8), and a step asked for nine a layer (~70 on
// eight layers): ~6% of a step of the fine preset.
#pragma once

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

namespace chronos {

// One call site's buffer on one thread (declare it `thread_local`: a module may run on several
// threads at once). get() returns the same tensor as the last call once nothing else holds it or a
// view of its memory (the caller's step has released it), else a fresh one that it keeps instead.
// Its values are the last call's: the caller writes every one, as after at::empty.
class TokenBuffer {
 public:
  at::Tensor get(at::IntArrayRef sizes, const at::TensorOptions& options) {
    const bool free = tensor_.defined() && tensor_.use_count() == 1 && tensor_.storage().use_count() == 1;
    // An inference tensor outside c10::InferenceMode (or a normal one inside) behaves otherwise: fresh.
    if (!free || tensor_.sizes() != sizes || tensor_.dtype() != options.dtype() || tensor_.device() != options.device() ||
        tensor_.is_inference() != c10::InferenceMode::is_enabled())
      tensor_ = at::empty(sizes, options);
    return tensor_;
  }

 private:
  at::Tensor tensor_;
};

}  // namespace chronos
