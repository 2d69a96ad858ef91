// Backend dispatcher: probes what this LibTorch build offers, picks a compute device by priority
// (cuda > mps > cpu for "auto"), sets the thread count, and describes the machine for logs.
#pragma once

#include <c10/core/Device.h>

#include <string>
#include <vector>

namespace chronos {

struct DeviceInfo {
  std::string kind;        // "cpu", "cuda" or "mps"
  int index = 0;           // device ordinal within its kind
  std::string name;        // human-readable name (GPU model, CPU model)
  long long total_memory_bytes = 0;  // 0 when unknown
};

struct BackendInfo {
  std::vector<DeviceInfo> devices;  // every usable device, highest priority first
  bool cuda_built = false;          // LibTorch was compiled with CUDA
  bool mps_built = false;           // LibTorch was compiled with MPS
  int threads = 1;                  // intra-op threads in effect
  std::string blas;                 // BLAS library loaded into the process (see loaded_blas())
  std::string torch_version;        // e.g. "1.13.1"
};

// Probes the devices and libraries once per call (cheap; no device is initialised beyond a query).
BackendInfo probe_backend();

// The BLAS library loaded into the process: "OpenBLAS (OpenMP)", "OpenBLAS (pthread)", "MKL", ...
std::string loaded_blas();

// Resolves "auto", "cpu", "cuda", "cuda:N" or "mps" to a device this build can use.
// Throws InvalidArgument naming the request and what is available.
c10::Device choose_device(const std::string& request);

// Sets LibTorch's intra-op thread count; threads <= 0 means OMP_NUM_THREADS when set, else all cores.
// Returns the count set.
int configure_threads(int threads);

// Multi-line human-readable summary: devices, memory, threads, BLAS, LibTorch version.
std::string describe(const BackendInfo& info);

}  // namespace chronos
