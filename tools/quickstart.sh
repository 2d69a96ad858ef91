#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to a working Chronos model: installs what is missing,
# builds Release, then runs the pipeline on the bundled small preset. Everything it writes goes under
# runs/quickstart/; the final model directory is runs/quickstart/model. Safe to run again.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/runs/quickstart"
bin="${BUILD_DIR:-$root/build}/tools"
config="$root/configs/small.json"

step() { printf '\n==> %s\n' "$*"; }

step "Installing missing build dependencies"
bash "$root/tools/setup_deps.sh"

step "Building Chronos (Release)"
bash "$root/tools/build.sh"

mkdir -p "$out"
step "Backend"
"$bin/chronos-bench" forward --config "$root/configs/tiny.json" --seq-len 8 --batch 1 --repeat 1 --warmup 0 \
  --matmul-size 256 --log-level debug 2>&1 | sed -n '/LibTorch/,/threads/p' | sed 's/^\[[^]]*\] \[[^]]*\] //'

step "Initialising the small model ($config) into $out/model"
"$bin/chronos-train" init --config "$config" --out "$out/model" --seed 0 --log-level warn

step "Measuring a prefill forward pass of the small model"
"$bin/chronos-bench" forward --config "$config" --seq-len 256 --batch 2 --repeat 3 --warmup 1 --json --log-level warn \
  | tee "$out/forward_bench.json"

step "Done"
cat <<MSG
What this run did:
  - built the library, tools and tests in ${BUILD_DIR:-$root/build}
  - wrote a freshly initialised model directory: $out/model (config.json, model.safetensors)
  - measured prefill throughput and model FLOPs utilisation: $out/forward_bench.json
Next: tools/test.sh runs the test suite.
MSG
