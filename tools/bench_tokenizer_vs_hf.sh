#!/usr/bin/env bash
# Single-thread encode speed of Chronos against HF tokenizers (the Rust library, through its npm
# package) on the same texts, in the same run: for each tokenizer.json, `chronos-bench tokenizer
# --jsonl` and tools/bench_tokenizer_hf.cjs (encodeBatch with parallelism off) encode every record
# of TEXTS.jsonl, one warm-up pass, then the median of five timed passes. Prints MB/s and the ratio.
# Usage: tools/bench_tokenizer_vs_hf.sh BUILD_DIR TEXTS.jsonl TOKENIZER.json...
#   TEXTS.jsonl: one JSON string (or {"text": ...} record) per line, e.g. BUILD_DIR/compat-text/texts.jsonl
#   (the compat tests' text set). The npm packages come from BUILD_DIR/compat-node (ctest -L compat).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:?usage: bench_tokenizer_vs_hf.sh BUILD_DIR TEXTS.jsonl TOKENIZER.json...}
texts=${2:?usage: bench_tokenizer_vs_hf.sh BUILD_DIR TEXTS.jsonl TOKENIZER.json...}
shift 2
[ $# -gt 0 ] || { echo "bench_tokenizer_vs_hf: give at least one tokenizer.json" >&2; exit 2; }
nodes="$build/compat-node/node_modules"
[ -d "$nodes/tokenizers" ] || { echo "bench_tokenizer_vs_hf: $nodes/tokenizers is missing; run ctest -L compat in $build first" >&2; exit 1; }
printf '%-40s %11s %8s %7s\n' tokenizer chronos_MB/s hf_MB/s ratio
for tokenizer in "$@"; do
  ours=$("$build/tools/chronos-bench" tokenizer --tokenizer "$tokenizer" --text "$texts" --jsonl --threads 1 --warmup 1 --repeat 5 \
         --json --log-level warn | python3 -c 'import json,sys; print(json.load(sys.stdin)["mb_per_s"])')
  hf=$(RAYON_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false NODE_PATH="$nodes" node "$root/tools/bench_tokenizer_hf.cjs" "$tokenizer" "$texts" 1 5)
  python3 -c "import sys; o,h=float(sys.argv[2]),float(sys.argv[3]); print(f'{sys.argv[1][-40:]:<40} {o:11.2f} {h:8.2f} {o/h:6.2f}x')" "$tokenizer" "$ours" "$hf"
done
