#!/usr/bin/env bash
# The quickstart's corpus and tokenizer, built when missing (tools/quickstart.sh builds the same):
# runs/quickstart/data/{corpus,sft,heldout,bench_prompts,intent_prompts}.jsonl and
# runs/quickstart/tokenizer/tokenizer.json. The experiments scripts source it.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bin="${BUILD_DIR:-$root/build}/tools"
data="$root/runs/quickstart/data"
tokenizer="$root/runs/quickstart/tokenizer/tokenizer.json"
if [ ! -f "$data/corpus.jsonl" ] || [ ! -f "$data/heldout.jsonl" ] || [ ! -f "$data/sft.jsonl" ] || [ ! -f "$data/bench_prompts.jsonl" ]; then
  echo "==> corpus: eight domains from Debian packages -> $data"
  mkdir -p "$data"
  python3 "$root/tools/build_corpus.py" --out "$data/corpus.jsonl" --sft "$data/sft.jsonl" --heldout "$data/heldout.jsonl" \
    --prompts "$data/bench_prompts.jsonl" --intent-prompts "$data/intent_prompts.jsonl" --summary "$data/summary.json"
fi
if [ ! -f "$tokenizer" ]; then
  echo "==> tokenizer: byte-level BPE, 6400 tokens"
  "$bin/chronos-train" tokenizer --data "$data/corpus.jsonl" --vocab-size 6400 --out "$(dirname "$tokenizer")"
fi
