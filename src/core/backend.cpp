#include "chronos/core/backend.h"

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/version.h>
#include <link.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <cstdlib>
#include <sstream>
#include <thread>

#include "chronos/core/error.h"

namespace chronos {
namespace {

std::string cpu_model_name() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      auto colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(' ', colon + 1));
    }
  }
  return "unknown CPU";
}

long long physical_memory_bytes() {
  long pages = sysconf(_SC_PHYS_PAGES);
  long page_size = sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page_size > 0 ? static_cast<long long>(pages) * page_size : 0;
}

// Collects the real paths of the loaded libraries: Debian's LibTorch links the generic libblas.so.3
// and libopenblas.so.0, which the alternatives system points at OpenBLAS (OpenMP or pthread build)
// or the slow reference BLAS, each name on its own.
int collect_library(struct dl_phdr_info* info, size_t, void* data) {
  if (info->dlpi_name == nullptr || info->dlpi_name[0] == '\0') return 0;
  char resolved[PATH_MAX];
  static_cast<std::vector<std::string>*>(data)->push_back(::realpath(info->dlpi_name, resolved) != nullptr ? resolved
                                                                                                            : info->dlpi_name);
  return 0;
}

}  // namespace

std::string loaded_blas() {
  std::vector<std::string> paths;
  dl_iterate_phdr(collect_library, &paths);
  const auto any = [&](const char* part) {
    return std::any_of(paths.begin(), paths.end(), [&](const std::string& p) { return p.find(part) != std::string::npos; });
  };
  // A pthread OpenBLAS anywhere in the process runs its own threads, whatever else is loaded.
  if (any("openblas-pthread")) return "OpenBLAS (pthread)";
  if (any("openblas-openmp")) return "OpenBLAS (OpenMP)";
  if (any("openblas")) return "OpenBLAS";
  if (any("mkl")) return "MKL";
  if (any("blis")) return "BLIS";
  if (any("/blas/libblas")) return "reference BLAS (slow: install libopenblas0-openmp)";
  return at::hasMKL() ? "MKL (static)" : "unknown";
}

BackendInfo probe_backend() {
  BackendInfo info;
  info.cuda_built = at::hasCUDA();
  info.mps_built = at::hasMPS();
  info.threads = at::get_num_threads();
  info.blas = loaded_blas();
  info.torch_version = TORCH_VERSION;
  if (info.cuda_built && torch::cuda::is_available()) {
    const int count = static_cast<int>(torch::cuda::device_count());
    for (int i = 0; i < count; ++i) {
      // Device names and memory come from the CUDA engine (issue: GPU path); the ordinal is enough here.
      info.devices.push_back({"cuda", i, cat("CUDA device ", i), 0});
    }
  }
  if (info.mps_built) info.devices.push_back({"mps", 0, "Apple MPS", 0});
  info.devices.push_back({"cpu", 0, cpu_model_name(), physical_memory_bytes()});
  return info;
}

c10::Device choose_device(const std::string& request) {
  const BackendInfo info = probe_backend();
  auto has = [&](const std::string& kind, int index) {
    for (const auto& d : info.devices)
      if (d.kind == kind && d.index == index) return true;
    return false;
  };
  if (request == "auto") {
    const DeviceInfo& best = info.devices.front();
    if (best.kind == "cuda") return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(best.index));
    if (best.kind == "mps") return c10::Device(c10::kMPS);
    return c10::Device(c10::kCPU);
  }
  if (request == "cpu") return c10::Device(c10::kCPU);
  std::string kind = request;
  int index = 0;
  if (auto colon = request.find(':'); colon != std::string::npos) {
    kind = request.substr(0, colon);
    try {
      size_t used = 0;
      index = std::stoi(request.substr(colon + 1), &used);
      if (used != request.size() - colon - 1 || index < 0) throw std::invalid_argument("index");
    } catch (const std::exception&) {
      throw InvalidArgument(cat("device '", request, "': bad device index"));
    }
  }
  if (kind == "cuda") {
    if (!has("cuda", index))
      throw InvalidArgument(cat("device ", request, ": no such CUDA device (",
                                info.cuda_built ? "CUDA build, none visible" : "this LibTorch has no CUDA", ")"));
    return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(index));
  }
  if (kind == "mps") {
    if (!has("mps", 0)) throw InvalidArgument("device mps: this LibTorch has no MPS support");
    return c10::Device(c10::kMPS);
  }
  throw InvalidArgument(cat("device '", request, "': expected auto, cpu, cuda, cuda:N or mps"));
}

int configure_threads(int threads) {
  if (threads <= 0) {
    // OMP_NUM_THREADS when set (a data-parallel launcher shares the cores out that way), else every core.
    const char* omp = std::getenv("OMP_NUM_THREADS");
    threads = omp != nullptr ? std::atoi(omp) : 0;
    if (threads <= 0) threads = static_cast<int>(std::thread::hardware_concurrency());
    if (threads <= 0) threads = 1;
  }
  at::set_num_threads(threads);
  return at::get_num_threads();
}

std::string describe(const BackendInfo& info) {
  std::ostringstream out;
  out << "LibTorch " << info.torch_version << " (CUDA " << (info.cuda_built ? "built" : "not built")
      << ", MPS " << (info.mps_built ? "built" : "not built") << ")\n";
  for (const auto& d : info.devices) {
    out << "  device " << d.kind << ":" << d.index << "  " << d.name;
    if (d.total_memory_bytes > 0) out << "  " << (d.total_memory_bytes >> 20) << " MiB";
    out << "\n";
  }
  out << "  threads " << info.threads << ", BLAS " << info.blas;
  if (info.blas == "OpenBLAS (pthread)")
    out << " (its threads compete with LibTorch's OpenMP threads: libopenblas0-openmp shares them)";
  return out.str();
}

}  // namespace chronos
