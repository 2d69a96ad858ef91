#!/usr/bin/env bash
# Measures chronos-serve on one model directory (docs/serve.md "Measured"), all in one run:
#  - single-stream decode tokens/s through the server (streamed /v1/completions, greedy) against
#    chronos-generate on the same prompt and token budget (medians of REPEAT runs each);
#  - aggregate tokens/s at --parallel 1, 2 and 4 with 4 concurrent clients, and the time to first
#    token p50 / p95 of those requests.
# Usage: tools/bench/serve_bench.sh MODEL_DIR [MAX_TOKENS=128] [REPEAT=5]   (BIN_DIR: build/tools)
set -euo pipefail
model=$1 tokens=${2:-128} repeat=${3:-5}
src=$(cd "$(dirname "$0")/../.." && pwd)
bin=${BIN_DIR:-$src/build/tools}
work=$(mktemp -d)
trap 'stop_server >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
. "$src/tests/serve/server_lib.sh"
prompt="The history of the river"
client="$src/tools/bench/serve_client.cjs"

rates=()
for i in $(seq 1 "$repeat"); do
  rates+=("$("$bin/chronos-generate" --model "$model" --prompt "$prompt" --max-new-tokens "$tokens" --greedy --json --log-level warn |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["stats"]["decode_tokens_per_s"])')")
done
generate_rate=$(printf '%s\n' "${rates[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')

start_server --model "$model" --parallel 1
single=$(node "$client" --mode bench --url "$server_url" --clients 1 --requests "$repeat" --max-tokens "$tokens" --prompt "$prompt")
stop_server
echo "$single" | python3 -c "
import json, sys
s = json.load(sys.stdin)
print(json.dumps({'single_stream': {'chronos_generate_tokens_per_s': $generate_rate, 'server_tokens_per_s': s['stream_tokens_per_s_median'],
                  'ratio': round(s['stream_tokens_per_s_median'] / $generate_rate, 3), 'ttft_ms_p50': s['ttft_ms_p50']}}))"

for parallel in 1 2 4; do
  start_server --model "$model" --parallel "$parallel" --max-queue 8
  result=$(node "$client" --mode bench --url "$server_url" --clients 4 --requests 12 --max-tokens "$tokens" --prompt "$prompt")
  stop_server
  echo "{\"parallel\": $parallel, \"result\": $result}"
done
