#!/usr/bin/env bash
# One command for the tests on a fresh Debian 12 machine: installs what is missing, builds, runs ctest.
# Usage: tools/test.sh [ctest arguments...]   (default: every test labelled unit)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/tools/setup_deps.sh"
bash "$root/tools/build.sh"
cd "${BUILD_DIR:-$root/build}"
if [ $# -eq 0 ]; then set -- -L unit; fi
ctest --output-on-failure -j "$(nproc)" "$@"
