#!/usr/bin/env bash
# One command for the tests on a fresh Debian 12 machine: installs what is missing, builds, runs ctest.
# Usage: tools/test.sh [ctest arguments...]   (default: the labels unit, e2e, fuzz, tsan and compat; README "Tests")
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/tools/setup_deps.sh"
# The expert store's threads are also tested under ThreadSanitizer (one extra test executable).
bash "$root/tools/build.sh" -DCHRONOS_STORE_TSAN=ON
cd "${BUILD_DIR:-$root/build}"
if [ $# -eq 0 ]; then set -- -L 'unit|e2e|fuzz|tsan|compat'; fi
ctest --output-on-failure -j "$(nproc)" "$@"
