// TransferEngine (DESIGN.md seam): moves an expert from a host slot to a compute slot and returns
// a ready event, and owns the memory both slot pools live in. The CPU engine (this file's factory
// for a CPU device) copies on its own thread, converting fp16/bf16/fp32 as needed, optionally at a
// throttled bandwidth to stand in for PCIe in tests and benchmarks. The CUDA engine (the GPU
// issue: pinned host memory, an H2D stream, one cudaEvent per copy, device-side waits) plugs in
// behind the same interface from a *_cuda.cpp file; no CUDA type appears here.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "chronos/store/ready_event.h"

namespace chronos {

// Host memory from an engine; the deleter knows how it was allocated (aligned_alloc, cudaHostAlloc).
using HostMemory = std::unique_ptr<void, void (*)(void*)>;

// A simulated host-to-device link for the CPU engine: latency per copy plus bytes at `gbps`.
struct TransferThrottle {
  double latency_ms = 0;  // per copy; 0 = off
  double gbps = 0;        // GB/s (10^9 bytes per second) of source bytes; 0 = off
};

struct CopyJob {
  const void* src = nullptr;              // host slot
  c10::ScalarType src_dtype = c10::kFloat;
  void* dst = nullptr;                    // compute slot (device memory on CUDA)
  c10::ScalarType dst_dtype = c10::kFloat;
  int64_t elements = 0;                   // to convert and copy
  ReadyEventPtr after;                    // optional: the copy starts only once this completes (the slot's last use)
  // Called on the engine's thread once the bytes have landed (error empty) or the copy failed,
  // before the returned event completes; never from inside copy() itself.
  std::function<void(const std::string& error)> on_done;
};

class TransferEngine {
 public:
  virtual ~TransferEngine() = default;
  virtual c10::Device device() const = 0;
  virtual std::string name() const = 0;

  // `bytes` of host staging memory, 4 KiB aligned (page-locked on CUDA). Throws on failure.
  virtual HostMemory allocate_host(size_t bytes) = 0;
  // The compute slot pool: a contiguous [count, elements] tensor of `dtype` on device().
  virtual at::Tensor allocate_compute(int64_t count, int64_t elements, c10::ScalarType dtype) = 0;
  // Queues a copy; the event completes (done or failed) after job.on_done has run.
  virtual ReadyEventPtr copy(CopyJob job) = 0;
  // Marks the end of compute's use of a slot and returns the event a later copy into that slot
  // must wait for (CPU: compute is synchronous, so this is done at once).
  virtual ReadyEventPtr record_use() = 0;
  // Fails the copies still queued (their on_done gets an error) and joins the engine's threads.
  // Idempotent; the destructor calls it.
  virtual void shutdown() = 0;
};

// The engine for `device`: the CPU engine for a CPU device; a clear InvalidArgument for CUDA until
// the CUDA engine is added, and for any other device type.
std::unique_ptr<TransferEngine> make_transfer_engine(const c10::Device& device, TransferThrottle throttle = {});

// Converts `elements` values from `src` (src_dtype) to `dst` (dst_dtype), fp32/fp16/bf16 each way,
// with scalar loops (no ATen ops: safe and visible to ThreadSanitizer on any thread). Throws
// InvalidArgument for other dtypes.
void convert_elements(const void* src, c10::ScalarType src_dtype, void* dst, c10::ScalarType dst_dtype, int64_t elements);

}  // namespace chronos
