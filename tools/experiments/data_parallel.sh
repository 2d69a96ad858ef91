#!/usr/bin/env bash
# Data-parallel pretraining on this machine: configs/small.json as 1 process x 2 threads against
# 2 ranks x 1 thread (chronos-train launch, Gloo on loopback), the same global batch and data.
# Reports tokens/s and MFU (against chronos-bench's matmul peak at 2 threads, measured in the same
# run), and per step the gradient all-reduce time, the part of it overlapped with backward, the wait
# after backward and the gradient bytes. Results: runs/data_parallel/summary.json and a table on stdout.
# Usage: tools/experiments/data_parallel.sh   (STEPS, BATCH (global), SEQ, CONFIG override; ~4 min)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
. "$root/tools/experiments/prepare_data.sh"
steps=${STEPS:-30} batch=${BATCH:-4} seq=${SEQ:-256} config=${CONFIG:-$root/configs/small.json}
out="$root/runs/data_parallel"
rm -rf "$out" && mkdir -p "$out"
common=(pretrain --config "$config" --tokenizer "$tokenizer" --data "$data/corpus.jsonl" --steps "$steps" --grad-accum 1
        --max-seq-len "$seq" --log-every 1 --log-level warn --seed 7)

echo "==> matmul peak and FLOPs per step (chronos-bench train, 2 threads)"
"$bin/chronos-bench" train --config "$config" --batch "$batch" --seq-len "$seq" --threads 2 --repeat 3 --json >"$out/bench.json"
echo "==> 1 process x 2 threads, batch $batch"
"$bin/chronos-train" "${common[@]}" --out "$out/one" --batch-size "$batch" --threads 2 --log-jsonl "$out/one.jsonl" >"$out/one.out"
echo "==> 2 ranks x 1 thread, batch $((batch / 2)) each"
"$bin/chronos-train" launch --nproc 2 --threads-per-rank 1 "${common[@]}" --out "$out/two" --batch-size $((batch / 2)) \
  --log-jsonl "$out/two.jsonl" >"$out/two.out"

/usr/bin/python3 - "$out" "$batch" "$seq" <<'PY'
import json, statistics, sys
out, batch, seq = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
bench = json.load(open(f"{out}/bench.json"))
flop_per_token = bench["train_gflop_per_step"] * 1e9 / (batch * seq)
peak = bench["matmul_gflops"] * 1e9
def steps(name):
    rows = [json.loads(l) for l in open(f"{out}/{name}.jsonl") if '"loss"' in l]
    return rows[3:]  # the first steps warm up
summary = {"config": bench["model"], "batch": batch, "seq_len": seq, "matmul_gflops_2_threads": bench["matmul_gflops"],
           "train_gflop_per_token": flop_per_token / 1e9}
for name in ("one", "two"):
    rows = steps(name)
    tps = statistics.median(r["tokens_per_s"] for r in rows)
    entry = {"steps_measured": len(rows), "tokens_per_s": tps, "mfu": tps * flop_per_token / peak,
             "step_ms": batch * seq / tps * 1e3}
    if name == "two":
        for key in ("allreduce_ms", "allreduce_wait_ms"):
            entry[key] = statistics.median(r[key] for r in rows)
        entry["allreduce_overlap"] = statistics.median(r["allreduce_overlap"] for r in rows)
        entry["gradient_bytes"] = rows[-1]["gradient_bytes"]
        entry["buckets"] = rows[-1]["buckets"]
    summary[name] = entry
summary["speedup"] = summary["two"]["tokens_per_s"] / summary["one"]["tokens_per_s"]
json.dump(summary, open(f"{out}/summary.json", "w"), indent=2)
one, two = summary["one"], summary["two"]
print(f"| run | tokens/s | MFU | step ms |\n|---|---|---|---|")
print(f"| 1 process x 2 threads | {one['tokens_per_s']:.0f} | {one['mfu']:.3f} | {one['step_ms']:.0f} |")
print(f"| 2 ranks x 1 thread | {two['tokens_per_s']:.0f} | {two['mfu']:.3f} | {two['step_ms']:.0f} |")
print(f"2 ranks / 1 process: {summary['speedup']:.2f}x; all-reduce {two['allreduce_ms']:.1f} ms per step "
      f"({two['allreduce_overlap'] * 100:.0f}% during backward, {two['allreduce_wait_ms']:.1f} ms waited after it), "
      f"{two['gradient_bytes'] / 2**20:.1f} MiB of gradients in {two['buckets']} buckets")
PY
