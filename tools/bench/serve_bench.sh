#!/usr/bin/env bash
# Measures chronos-serve on one model directory (docs/serve.md "Measured"), all in one run:
#  - single-stream decode tokens/s through the server (streamed /v1/completions, greedy, the client on
#    the same machine) against chronos-generate on the same prompt and token budget (medians of REPEAT
#    alternated runs each);
#  - aggregate tokens/s at --parallel 1, 2 and 4 with 4 concurrent clients, and the time to first
#    token p50 / p95 of those requests.
# Usage: tools/bench/serve_bench.sh MODEL_DIR [MAX_TOKENS=128] [REPEAT=9]   (BIN_DIR: build/tools)
set -euo pipefail
model=$1 tokens=${2:-128} repeat=${3:-9}
src=$(cd "$(dirname "$0")/../.." && pwd)
bin=${BIN_DIR:-$src/build/tools}
work=$(mktemp -d)
trap 'stop_server >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
. "$src/tests/serve/server_lib.sh"
prompt="The history of the river"
client="$src/tools/bench/serve_client.cjs"

# Single stream: chronos-generate and one streamed request to an idle server, alternated REPEAT
# times (the machine's speed drifts; alternating keeps both sides in the same conditions).
start_server --model "$model" --parallel 1
generate_rates=() server_rates=() ttfts=()
for i in $(seq 1 "$repeat"); do
  generate_rates+=("$("$bin/chronos-generate" --model "$model" --prompt "$prompt" --max-new-tokens "$tokens" --greedy --json \
    --log-level warn | python3 -c 'import json,sys; print(json.load(sys.stdin)["stats"]["decode_tokens_per_s"])')")
  one=$(node "$client" --mode bench --url "$server_url" --clients 1 --requests 1 --warmup 1 --max-tokens "$tokens" --prompt "$prompt")
  server_rates+=("$(echo "$one" | python3 -c 'import json,sys; print(json.load(sys.stdin)["stream_tokens_per_s_median"])')")
  ttfts+=("$(echo "$one" | python3 -c 'import json,sys; print(json.load(sys.stdin)["ttft_ms_p50"])')")
done
stop_server
python3 - "${generate_rates[*]}" "${server_rates[*]}" "${ttfts[*]}" <<'PY'
import json, statistics, sys
g, s, t = ([float(x) for x in a.split()] for a in sys.argv[1:4])
print(json.dumps({"single_stream": {"runs": len(g), "chronos_generate_tokens_per_s": round(statistics.median(g), 2),
                  "server_tokens_per_s": round(statistics.median(s), 2),
                  "ratio": round(statistics.median(s) / statistics.median(g), 3),
                  "ratio_of_pairs_median": round(statistics.median(b / a for a, b in zip(g, s)), 3),
                  "ttft_ms_p50": round(statistics.median(t), 2)}}))
PY

for parallel in 1 2 4; do
  start_server --model "$model" --parallel "$parallel" --max-queue 8
  result=$(node "$client" --mode bench --url "$server_url" --clients 4 --requests 12 --warmup 1 --max-tokens "$tokens" --prompt "$prompt")
  stop_server
  echo "{\"parallel\": $parallel, \"result\": $result}"
done
