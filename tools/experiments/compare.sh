#!/usr/bin/env bash
# chronos-compare at a named scale (docs/results.md): vanilla MoE vs Chronos, trained identically on the
# quickstart corpus, then the plots. Builds the corpus and tokenizer first when missing.
#
# Usage: tools/experiments/compare.sh [quickstart|large]   (default quickstart)
#   quickstart: configs/fine.json, 240 pretraining steps of 8 x 256 tokens + 40 SFT steps; 17 minutes on
#               2 cores
#   large:      configs/fine.json, 1000 pretraining steps + 120 SFT steps, every held-out record, 32 prompts;
#               about 1.5 hours on 2 cores
# Environment: OUT (runs/compare/SCALE), STEPS, SFT_STEPS, EXTRA (more chronos-compare flags, e.g. --ssd-mbps 1000).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bin="${BUILD_DIR:-$root/build}/tools"
scale=${1:-quickstart}
case $scale in
  quickstart) steps=${STEPS:-240} sft_steps=${SFT_STEPS:-40} eval_records=200 prompts=16 ;;
  large) steps=${STEPS:-1000} sft_steps=${SFT_STEPS:-120} eval_records=0 prompts=32 ;;
  *) echo "compare.sh: unknown scale '$scale' (quickstart or large)" >&2; exit 2 ;;
esac
[ -x "$bin/chronos-compare" ] || { echo "compare.sh: $bin/chronos-compare is missing (build first: tools/build.sh)" >&2; exit 1; }
bash "$root/tools/experiments/prepare_data.sh"
data="$root/runs/quickstart/data"
out=${OUT:-$root/runs/compare/$scale}
rm -rf "$out"
start=$(date +%s)
# shellcheck disable=SC2086
"$bin/chronos-compare" --config "$root/configs/fine.json" --data "$data/corpus.jsonl" \
  --tokenizer "$root/runs/quickstart/tokenizer/tokenizer.json" --heldout "$data/heldout.jsonl" --prompts "$data/bench_prompts.jsonl" \
  --steps "$steps" --batch-size 8 --max-seq-len 256 --lr 2e-3 --lambda-balance 0.01 \
  --stages pretrain,sft --stage-data "sft=$data/sft.jsonl" --stage-steps "sft=$sft_steps" \
  --eval-records "$eval_records" --num-prompts "$prompts" --max-new-tokens 32 --ram-budget 50% --compute-budget 50% \
  --out "$out" ${EXTRA:-} --log-level warn
echo "compare.sh: $scale in $(( ($(date +%s) - start) / 60 )) min"
python3 "$root/tools/plot.py" compare "$out/compare.json"
