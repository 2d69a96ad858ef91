#include "chronos/core/autocast.h"

#include <ATen/autocast_mode.h>
#include <torch/version.h>

namespace chronos {

// LibTorch 2.4 replaced the CUDA-only calls with per-device-type ones.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define CHRONOS_AUTOCAST_PER_DEVICE 1
#endif

AutocastGuard::AutocastGuard(const c10::Device& device, c10::ScalarType dtype) {
  if (!device.is_cuda() || dtype == c10::kFloat) return;
#ifdef CHRONOS_AUTOCAST_PER_DEVICE
  was_enabled_ = at::autocast::is_autocast_enabled(at::kCUDA);
  at::autocast::set_autocast_dtype(at::kCUDA, dtype);
  at::autocast::set_autocast_enabled(at::kCUDA, true);
#else
  was_enabled_ = at::autocast::is_enabled();
  at::autocast::set_autocast_gpu_dtype(dtype);
  at::autocast::set_enabled(true);
#endif
  active_ = true;
}

AutocastGuard::~AutocastGuard() {
  if (!active_) return;
#ifdef CHRONOS_AUTOCAST_PER_DEVICE
  at::autocast::set_autocast_enabled(at::kCUDA, was_enabled_);
#else
  at::autocast::set_enabled(was_enabled_);
#endif
  if (!was_enabled_) at::autocast::clear_cache();
}

}  // namespace chronos
