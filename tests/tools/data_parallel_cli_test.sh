#!/usr/bin/env bash
# Data-parallel chronos-train when things go wrong: a rank killed or frozen mid-run, a missing rank, a
# bad MASTER_PORT, a store nobody serves. Each ends with a line that names the rank or the variable,
# a non-zero exit within the timeout, and the checkpoints already written intact.
# Usage: data_parallel_cli_test.sh TOOLS_DIR SOURCE_DIR
set -u
bin=$1 src=$2
train=$bin/chronos-train
minimind="$src/tests/data/minimind/tokenizer.json"
work=$(mktemp -d)
launcher=
trap '[ -n "$launcher" ] && kill -9 $launcher 2>/dev/null; pkill -9 -f "$work/" 2>/dev/null; rm -rf "$work"' EXIT
. "$(dirname "$0")/cli_lib.sh"
[ -f "$minimind" ] || { echo "SKIP: the MiniMind tokenizer fixture is missing ($minimind)"; exit 77; }

expect_ok init "$train" init --config "$src/configs/tiny.json" --out "$work/init" --tokenizer "$minimind" --seed 1 --log-level warn
for i in $(seq 1 64); do printf '{"text": "the experts of layer %d route tokens to the cache while memory holds only some of them"}\n' "$i"; done >"$work/pre.jsonl"
stage=(pretrain --from "$work/init" --data "$work/pre.jsonl" --steps 100000 --batch-size 2 --grad-accum 1 --max-seq-len 32
       --log-level warn --threads 1)

# The rank RANK of the launch $launcher (its pid), once it runs.
rank_pid() {
  local child
  for child in $(pgrep -P "$launcher"); do
    if tr '\0' '\n' <"/proc/$child/environ" 2>/dev/null | grep -qx "RANK=$1"; then echo "$child"; return; fi
  done
}

# start_job NAME GRACE ARGS...: a 2-rank launch in the background (GRACE: the launcher's --grace); waits until
# it has logged a step.
start_job() {
  local name=$1 grace=$2
  shift 2
  "$train" launch --nproc 2 --grace "$grace" "${stage[@]}" --out "$work/$name" --log-jsonl "$work/$name.jsonl" --log-every 1 --save-every 2 \
    "$@" >"$work/$name.out" 2>"$work/$name.err" &
  launcher=$!
  for _ in $(seq 1 300); do
    [ -s "$work/$name.jsonl" ] && [ -d "$work/$name/checkpoints" ] && return 0
    sleep 0.1
  done
  fail "$name: the job logged nothing in 30 s"; cat "$work/$name.err"
  return 1
}

# finish_job NAME LIMIT FRAGMENT...: the launch must end non-zero within LIMIT seconds, stderr holding each FRAGMENT.
finish_job() {
  local name=$1 limit=$2 rc
  shift 2
  for _ in $(seq 1 $((limit * 10))); do kill -0 "$launcher" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$launcher" 2>/dev/null; then fail "$name: still running after $limit s"; kill -9 "$launcher"; fi
  wait "$launcher"
  rc=$?
  launcher=
  [ $rc -ne 0 ] || fail "$name: exit status 0"
  local fragment
  for fragment in "$@"; do
    grep -qF -- "$fragment" "$work/$name.err" || { fail "$name: stderr lacks '$fragment':"; sed 's/^/  | /' "$work/$name.err"; }
  done
  # What was written before the failure is whole: the newest checkpoint resumes.
  local latest
  latest=$(ls -d "$work/$name"/checkpoints/step_* 2>/dev/null | grep -v '\.tmp$' | tail -1)
  [ -n "$latest" ] && [ -f "$latest/trainer_state.json" ] && [ -f "$latest/model.safetensors" ] || fail "$name: no complete checkpoint left"
  passed=$((passed + 1))
}

# A rank killed outright: the launcher names it, rank 0 names it too (its peer's heartbeat stopped), which
# takes it a few seconds: the grace period leaves them.
if start_job killed 20; then
  kill -9 "$(rank_pid 1)"
  finish_job killed 60 "rank 1 was killed by signal 9" "rank 1 stopped (no heartbeat"
  # ... and the job resumes from it, on two ranks again.
  last=$(ls -d "$work/killed"/checkpoints/step_* | grep -v '\.tmp$' | tail -1)
  step=$((10#${last##*step_}))
  expect_ok resume_after_kill "$train" launch --nproc 2 "${stage[@]}" --out "$work/killed" --resume "$work/killed" --stop-at $((step + 1))
  grep -q "^pretrain: $((step + 1)) steps," "$work/out" || { fail "resume_after_kill did not continue from step $step:"; cat "$work/out"; }
fi

# A frozen rank (SIGSTOP): rank 0's collective times out and names it; the launcher then stops it.
if start_job frozen 3 --dist-timeout 4; then
  kill -STOP "$(rank_pid 1)"
  finish_job frozen 60 "rank 0: " "rank 1 stopped (no heartbeat" "rank 0 exited with status 1"
fi

# The environment: one line naming the variable, or the store that cannot be reached.
one_rank=(env WORLD_SIZE=2 MASTER_ADDR=127.0.0.1)
expect_error bad_master_port "MASTER_PORT must be a port number in [1, 65535] (got 'abc')" \
  "${one_rank[@]}" RANK=0 MASTER_PORT=abc "$train" "${stage[@]}" --out "$work/x"
expect_error missing_rank "RANK is not set" env WORLD_SIZE=2 RANK= MASTER_ADDR=h MASTER_PORT=1 "$train" "${stage[@]}" --out "$work/x"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
expect_error no_store "rank 1 cannot reach the rendezvous store at 127.0.0.1:$port within 2 s" \
  "${one_rank[@]}" RANK=1 MASTER_PORT="$port" "$train" "${stage[@]}" --out "$work/x" --dist-timeout 2
expect_error unknown_host "cannot reach the rendezvous store at no-such-host.invalid:$port" \
  env WORLD_SIZE=2 RANK=1 MASTER_ADDR=no-such-host.invalid MASTER_PORT="$port" "$train" "${stage[@]}" --out "$work/x" --dist-timeout 2
expect_error lonely_rank_0 "rank 0: only 1 of 2 ranks joined 127.0.0.1:$port within 2 s" \
  "${one_rank[@]}" RANK=0 MASTER_PORT="$port" "$train" "${stage[@]}" --out "$work/x" --dist-timeout 2
expect_error launch_without_stage "give the stage to run" "$train" launch --nproc 2
expect_error launch_bad_nproc "--nproc" "$train" launch --nproc 0 pretrain
# NCCL asked of a CPU build: every rank says why (the launcher adds which rank failed first).
"$train" launch --nproc 2 "${stage[@]}" --out "$work/x" --dist-backend nccl >"$work/out" 2>"$work/err"
if [ $? -ne 0 ] && grep -qF "this LibTorch was built without NCCL" "$work/err"; then passed=$((passed + 1)); else fail "nccl_on_cpu:"; cat "$work/err"; fi
[ -e "$work/x/model.safetensors" ] && fail "a failed run wrote a model"

echo "$passed passed, $failures failed"
[ "$failures" -eq 0 ]
