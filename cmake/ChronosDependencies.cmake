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
pkg_check_modules(IGRAPH QUIET IMPORTED_TARGET igraph>=0.10)
if(NOT IGRAPH_FOUND)
  message(FATAL_ERROR "chronos: igraph >= 0.10 not found; install libigraph-dev (tools/setup_deps.sh does)")
endif()
pkg_check_modules(XXHASH QUIET IMPORTED_TARGET libxxhash)
if(NOT XXHASH_FOUND)
  message(FATAL_ERROR "chronos: xxHash not found; install libxxhash-dev (tools/setup_deps.sh does)")
endif()
# The tokenizer: PCRE2 (with its JIT) for the Split and Replace regexes of tokenizer.json, utf8proc
# for Unicode normalization, case mapping and categories.
pkg_check_modules(PCRE2 QUIET IMPORTED_TARGET libpcre2-8)
if(NOT PCRE2_FOUND)
  message(FATAL_ERROR "chronos: PCRE2 not found; install libpcre2-dev (tools/setup_deps.sh does)")
endif()
pkg_check_modules(UTF8PROC QUIET IMPORTED_TARGET libutf8proc)
if(NOT UTF8PROC_FOUND)
  message(FATAL_ERROR "chronos: utf8proc not found; install libutf8proc-dev (tools/setup_deps.sh does)")
endif()
