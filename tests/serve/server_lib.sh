# Helpers of the serve tests that drive a real chronos-serve (sourced). Needs $bin (the folder of
# the chronos-* executables), $src (the source tree) and $work (a scratch folder).

# make_tiny_model DIR: a tiny random model with the MiniMind tokenizer and chat template.
make_tiny_model() {
  "$bin/chronos-train" init --config "$src/configs/tiny.json" --out "$1" --tokenizer "$src/tests/data/minimind/tokenizer.json" \
    --seed 1 --log-level warn >/dev/null
}

# start_server ARGS...: starts chronos-serve on a free port; sets $server_pid and $server_url once
# /health answers 200. Fails (return 1) with its log when it does not within 60 s.
start_server() {
  "$bin/chronos-serve" --port 0 --log-level warn "$@" >"$work/server.log" 2>&1 &
  server_pid=$!
  local i port=""
  for i in $(seq 1 600); do
    port=$(sed -n 's|^chronos-serve: listening on http://[^:]*:\([0-9]*\).*|\1|p' "$work/server.log" | head -1)
    if [ -n "$port" ] && curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1; then
      server_url="http://127.0.0.1:$port"
      return 0
    fi
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "chronos-serve did not come up:"; sed 's/^/  | /' "$work/server.log"
  return 1
}

# stop_server: SIGTERM, and the server must exit 0 within 30 s.
stop_server() {
  [ -n "${server_pid:-}" ] || return 0
  kill -TERM "$server_pid" 2>/dev/null || true
  local i
  for i in $(seq 1 300); do
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$server_pid" 2>/dev/null; then
    echo "chronos-serve did not stop on SIGTERM"; kill -KILL "$server_pid"; server_pid=""; return 1
  fi
  local rc=0
  wait "$server_pid" || rc=$?
  server_pid=""
  [ $rc -eq 0 ] || { echo "chronos-serve exited $rc:"; tail -5 "$work/server.log"; return 1; }
}
