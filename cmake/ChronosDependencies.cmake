# Finds every third-party package the build uses, with one message per missing one.
set(THREADS_PREFER_PTHREAD_FLAG ON)
find_package(Threads REQUIRED)

find_package(Torch REQUIRED)
# The same libgomp that Debian's LibTorch runs its threads on, for at::parallel_for in our kernels.
find_package(OpenMP REQUIRED COMPONENTS CXX)
# Whether this LibTorch was built with CUDA: the *_cuda.cpp sources are added only then.
set(CHRONOS_WITH_CUDA OFF)
if(TORCH_CUDA_LIBRARIES OR TARGET torch_cuda)
  set(CHRONOS_WITH_CUDA ON)
endif()
message(STATUS "chronos: Torch ${Torch_VERSION}, CUDA support: ${CHRONOS_WITH_CUDA}")
# Data-parallel training runs on LibTorch's c10d: its Gloo process group needs Gloo's headers (Debian:
# libgloo-dev; PyTorch's own LibTorch bundles them under its include folder). NCCL comes with CUDA builds.
find_path(CHRONOS_GLOO_INCLUDE_DIR gloo/config.h HINTS ${TORCH_INCLUDE_DIRS})
if(NOT CHRONOS_GLOO_INCLUDE_DIR)
  message(FATAL_ERROR "Gloo headers not found (gloo/config.h): install libgloo-dev, or use a LibTorch that bundles them")
endif()
find_path(CHRONOS_NCCL_HEADER torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp HINTS ${TORCH_INCLUDE_DIRS})
find_path(CHRONOS_NCCL_INCLUDE_DIR nccl.h HINTS ${TORCH_INCLUDE_DIRS} ${CUDAToolkit_INCLUDE_DIRS})
set(CHRONOS_WITH_NCCL OFF)
if(CHRONOS_WITH_CUDA AND CHRONOS_NCCL_HEADER AND CHRONOS_NCCL_INCLUDE_DIR)
  set(CHRONOS_WITH_NCCL ON)
endif()
message(STATUS "chronos: data-parallel backends: Gloo, NCCL: ${CHRONOS_WITH_NCCL}")

find_package(nlohmann_json 3.9 REQUIRED)
find_package(spdlog REQUIRED)
if(CHRONOS_BUILD_TOOLS)
  find_package(CLI11 REQUIRED)
endif()
if(CHRONOS_BUILD_TESTS)
  find_package(GTest REQUIRED)
  include(GoogleTest)
endif()

# The expert store: igraph's Louvain for chronos-pack's clusters, xxHash's XXH3 for cache checksums.
# pkg-config rather than igraph's CMake package: Debian's names the static dependencies
# (libarpack.so, ...) whose -dev packages libigraph-dev does not pull in.
find_package(PkgConfig REQUIRED)
# chronos_require_pkg(PREFIX MODULE WHAT DEBIAN_PACKAGE): PkgConfig::PREFIX and PREFIX_LIBRARIES, or one
# clear error. A macro, so the PREFIX_* variables land in the caller's scope.
macro(chronos_require_pkg prefix module what package)
  pkg_check_modules(${prefix} QUIET IMPORTED_TARGET ${module})
  if(NOT ${prefix}_FOUND)
    message(FATAL_ERROR "chronos: ${what} not found; install ${package} (tools/setup_deps.sh does)")
  endif()
endmacro()
chronos_require_pkg(IGRAPH "igraph>=0.10" "igraph >= 0.10" libigraph-dev)
chronos_require_pkg(XXHASH libxxhash xxHash libxxhash-dev)
# The tokenizer: PCRE2 (with its JIT) for the Split and Replace regexes of tokenizer.json, utf8proc
# for Unicode normalization, case mapping and categories.
chronos_require_pkg(PCRE2 libpcre2-8 PCRE2 libpcre2-dev)
chronos_require_pkg(UTF8PROC libutf8proc utf8proc libutf8proc-dev)

# chronos-serve's HTTP transport: Debian's cpp-httplib is a shared library with a pkg-config file.
if(CHRONOS_BUILD_TOOLS)
  chronos_require_pkg(HTTPLIB cpp-httplib cpp-httplib libcpp-httplib-dev)
endif()
