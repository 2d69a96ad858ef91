// Mixed precision on CUDA: while an AutocastGuard lives, CUDA matmuls run in the given dtype (bf16 by
// default) and LibTorch keeps reductions and softmax in fp32; master weights stay fp32. No effect on
// other devices. The one place that knows the autocast API of both LibTorch versions (1.13, 2.x).
#pragma once

#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

namespace chronos {

class AutocastGuard {
 public:
  AutocastGuard(const c10::Device& device, c10::ScalarType dtype);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;
  bool active() const { return active_; }

 private:
  bool active_ = false;
  bool was_enabled_ = false;
};

}  // namespace chronos
