#!/usr/bin/env bash
# chronos-tune at the small scale of docs/results.md: TPE over the eight knobs of configs/fine.json, each
# trial STEPS pretraining steps of BATCH x 256 tokens on the quickstart corpus, measured on 60 held-out
# records and 6 prompts of 16 new tokens; then the knee's config and the Pareto plot. About a minute per
# trial on 2 cores at the defaults. Resumes a stopped run.
# Usage: tools/experiments/tune.sh   Environment: OUT (runs/tune), TRIALS (20), STEPS (60), BATCH (4), EXTRA.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bin="${BUILD_DIR:-$root/build}/tools"
[ -x "$bin/chronos-tune" ] || { echo "tune.sh: $bin/chronos-tune is missing (build first: tools/build.sh)" >&2; exit 1; }
command -v optuna >/dev/null || { echo "tune.sh: optuna is missing (tools/setup_deps.sh installs python3-optuna)" >&2; exit 1; }
bash "$root/tools/experiments/prepare_data.sh"
data="$root/runs/quickstart/data"
out=${OUT:-$root/runs/tune}
start=$(date +%s)
# shellcheck disable=SC2086
"$bin/chronos-tune" --config "$root/configs/fine.json" --data "$data/corpus.jsonl" \
  --tokenizer "$root/runs/quickstart/tokenizer/tokenizer.json" --heldout "$data/heldout.jsonl" --prompts "$data/bench_prompts.jsonl" \
  --steps "${STEPS:-60}" --batch-size "${BATCH:-4}" --max-seq-len 256 --lr 2e-3 --eval-records 60 --num-prompts 6 --max-new-tokens 16 \
  --ram-budget 50% --compute-budget 50% --trials "${TRIALS:-20}" --out "$out" ${EXTRA:-} --log-level info
echo "tune.sh: $(( ($(date +%s) - start) / 60 )) min"
"$bin/chronos-tune" --out "$out" --apply-best knee
python3 "$root/tools/plot.py" tune "$out"
