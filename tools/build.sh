#!/usr/bin/env bash
# Configures and builds Chronos (Release by default) into BUILD_DIR (default: build/).
# Usage: tools/build.sh [extra cmake -D options...]. Environment: BUILD_DIR, BUILD_TYPE, JOBS.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${BUILD_DIR:-$root/build}
build_type=${BUILD_TYPE:-Release}
jobs=${JOBS:-$(nproc)}

extra=()
if command -v ccache >/dev/null 2>&1; then extra+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
# On a GPU machine the PyTorch-bundled LibTorch (CUDA) is preferred when python has torch.
if [ -z "${CHRONOS_NO_PYTORCH:-}" ] && command -v nvidia-smi >/dev/null 2>&1 && python3 -c 'import torch' 2>/dev/null; then
  extra+=("-DCMAKE_PREFIX_PATH=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')")
fi

cmake -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE="$build_type" "${extra[@]}" "$@" >/dev/null
cmake --build "$build_dir" -j "$jobs"
