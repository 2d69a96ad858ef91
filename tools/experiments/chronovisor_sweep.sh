#!/usr/bin/env bash
# The Chronovisor experiments of docs/chronovisor.md: the same model trained from the same start on the
# same data under each routing control (none, DeepSeek-V3's aux-loss-free bias, the Chronovisor over a
# sweep of pressure scales and clock periods), then for each run: held-out perplexity per domain (with
# each domain's expert usage), the validation loss at every checkpoint, and the offload hit rate at a
# fixed budget. tools/experiments/chronovisor_report.py turns OUT into tables and plots.
#
# Usage: tools/experiments/chronovisor_sweep.sh [MODEL...]   MODEL: fine | mixtral (default: both)
# Needs the quickstart's corpus and tokenizer (runs/quickstart/data, runs/quickstart/tokenizer: run
# tools/quickstart.sh first). Environment: OUT (runs/chronovisor), STEPS (150), BATCH (4), SEQ (256),
# LR (2e-3), BALANCE (the model's default load-balance weight when empty), EVAL_RECORDS (200),
# SETTINGS (all: a space-separated subset of the names below), BUDGET (25%: the offload compute budget),
# SEEDS (0: a space-separated list; seed N initialises the model with N and orders the data with N + 1,
# and every setting of that seed starts from the same init. Seed 0 writes OUT/MODEL/SETTING as before,
# seed N > 0 OUT/MODEL/seedN/SETTING; the report pairs each setting with "none" of the same seed).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bin="${BUILD_DIR:-$root/build}/tools"
data="$root/runs/quickstart/data"
tokenizer="$root/runs/quickstart/tokenizer/tokenizer.json"
out=${OUT:-$root/runs/chronovisor}
steps=${STEPS:-150} batch=${BATCH:-4} seq=${SEQ:-256} lr=${LR:-2e-3} eval_records=${EVAL_RECORDS:-200} budget=${BUDGET:-25%}
read -r -a seeds <<<"${SEEDS:-0}"
for n in "${seeds[@]}"; do [[ $n =~ ^[0-9]+$ ]] || { echo "chronovisor_sweep: SEEDS must be non-negative integers (got '$n')" >&2; exit 1; }; done
models=("$@")
[ ${#models[@]} -gt 0 ] || models=(fine mixtral)
for f in "$data/corpus.jsonl" "$data/heldout.jsonl" "$data/bench_prompts.jsonl" "$tokenizer"; do
  [ -f "$f" ] || { echo "chronovisor_sweep: $f is missing (run tools/quickstart.sh first)" >&2; exit 1; }
done
[ -x "$bin/chronos-train" ] || { echo "chronovisor_sweep: $bin/chronos-train is missing (build first: tools/build.sh)" >&2; exit 1; }

# name -> chronos-train flags
declare -A control=(
  [none]=""
  [aux_free]="--aux-free --aux-free-step 0.001"
  [cv_s0.01]="--chronovisor --pressure-scale 0.01"
  [cv_s0.05]="--chronovisor --pressure-scale 0.05"
  [cv_s0.1]="--chronovisor --pressure-scale 0.1"
  [cv_s0.5]="--chronovisor --pressure-scale 0.5"
  [cv_s0.1_p10_40]="--chronovisor --pressure-scale 0.1 --micro-period 10 --macro-period 40"
  [cv_s0.1_p3_10]="--chronovisor --pressure-scale 0.1 --micro-period 3 --macro-period 10"
)
settings=(${SETTINGS:-none aux_free cv_s0.01 cv_s0.05 cv_s0.1 cv_s0.5 cv_s0.1_p10_40 cv_s0.1_p3_10})
for s in "${settings[@]}"; do [ -n "${control[$s]+set}" ] || { echo "chronovisor_sweep: unknown setting '$s'" >&2; exit 1; }; done

config_of() {
  case $1 in
    fine) echo "$root/configs/fine.json" ;;
    mixtral) echo "$root/configs/mixtral-small.json" ;;
    *) echo "chronovisor_sweep: unknown model '$1' (fine or mixtral)" >&2; exit 1 ;;
  esac
}

checkpoint_every=$(( steps / 5 > 0 ? steps / 5 : 1 ))
mkdir -p "$out"
head -n 16 "$data/bench_prompts.jsonl" >"$out/prompts.jsonl"
for model in "${models[@]}"; do
  config=$(config_of "$model")
  for seed in "${seeds[@]}"; do
    dir="$out/$model"
    [ "$seed" = 0 ] || dir="$out/$model/seed$seed"
    mkdir -p "$dir"
    echo "==> $model (seed $seed): init from $config"
    "$bin/chronos-train" init --config "$config" --out "$dir/init" --tokenizer "$tokenizer" --seed "$seed" --log-level warn
    for s in "${settings[@]}"; do
      run="$dir/$s"
      rm -rf "$run"
      mkdir -p "$run"
      echo "==> $model / seed $seed / $s: $steps steps of $batch x $seq tokens ${control[$s]}"
      balance=(); [ -z "${BALANCE:-}" ] || balance=(--lambda-balance "$BALANCE")
      start=$(date +%s.%N)
      # shellcheck disable=SC2086
      "$bin/chronos-train" pretrain --from "$dir/init" --data "$data/corpus.jsonl" --out "$run/model" --steps "$steps" \
        --batch-size "$batch" --grad-accum 1 --max-seq-len "$seq" --lr "$lr" --seed $((seed + 1)) --log-every 1 --log-jsonl "$run/log.jsonl" \
        --save-every "$checkpoint_every" --keep 0 "${balance[@]}" ${control[$s]} --log-level warn
      echo "{\"train_seconds\": $(echo "$(date +%s.%N) - $start" | bc)}" >"$run/timing.json"
      # The validation loss along the run (each checkpoint), then the final model per domain.
      for ckpt in "$run"/model/checkpoints/step_*; do
        cp "$tokenizer" "$ckpt/tokenizer.json"  # checkpoints hold no tokenizer
        "$bin/chronos-train" eval --model "$ckpt" --data "$data/heldout.jsonl" --max-records "$eval_records" --json --log-level warn >"$ckpt/eval.json"
      done
      "$bin/chronos-train" eval --model "$run/model" --data "$data/heldout.jsonl" --max-records "$eval_records" --json --log-level warn >"$run/eval.json"
      # Offload at a fixed budget: the routed experts packed (calibrated on the prompts) and decoded
      # reactively (LRU) and predictively, with the reads from the real disk.
      "$bin/chronos-bench" offload --model "$run/model" --prompts "$out/prompts.jsonl" --max-new-tokens 32 --compute-budget "$budget" \
        --ram-budget "$budget" --modes resident,reactive,lookahead --json --log-level warn >"$run/offload.json" || echo "offload bench failed for $run" >&2
      rm -rf "$run/model/expert_cache"
    done
  done
done
echo "==> done: python3 tools/experiments/chronovisor_report.py $out"
