#!/usr/bin/env bash
# Installs the build into a scratch prefix, then configures, builds and runs the consumer project
# against it with find_package(chronos). Usage: run.sh BUILD_DIR CONSUMER_SOURCE BUILD_TYPE
set -euo pipefail
build=$1 source=$2 type=${3:-Release}
scratch="$build/consumer-check"
rm -rf "$scratch"
cmake --install "$build" --prefix "$scratch/prefix" >/dev/null
cmake -S "$source" -B "$scratch/build" -G Ninja -DCMAKE_BUILD_TYPE="$type" -DCMAKE_PREFIX_PATH="$scratch/prefix" >/dev/null
cmake --build "$scratch/build"
"$scratch/build/consumer"
