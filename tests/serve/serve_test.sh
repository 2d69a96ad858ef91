#!/usr/bin/env bash
# The serve tests that need a real chronos-serve and a real client (ctest: serve_openai_client,
# serve_web_ui, serve_load). Usage: serve_test.sh openai|browser|load BIN_DIR SOURCE_DIR BUILD_DIR WORK_DIR
# openai: the official `openai` npm package against the server (label compat);
# browser: Debian's headless chromium driven by playwright-core on an offloaded model, with screenshots (label e2e);
# load: 200 requests from 16 clients with streams, cancellations and malformed bodies (label e2e).
# Exits 77 (a ctest skip) when node, npm, the npm registry or chromium is missing.
set -uo pipefail
kind=$1 bin=$2 src=$3 build=$4 work=$5
rm -rf "$work" && mkdir -p "$work"
. "$src/tests/serve/server_lib.sh"
trap 'stop_server >/dev/null 2>&1 || true' EXIT
command -v node >/dev/null 2>&1 || { echo "skipped: node unavailable (tools/setup_deps.sh installs nodejs)"; exit 77; }
[ -f "$src/tests/data/minimind/tokenizer.json" ] || { echo "skipped: the MiniMind tokenizer fixture is missing"; exit 77; }
make_tiny_model "$work/tiny" || { echo "FAIL: chronos-train init"; exit 1; }

case "$kind" in
  openai)
    start_server --model "$work/tiny" --api-key sesame --metrics --parallel 2 || exit 1
    bash "$src/tests/compat/run_compat.sh" "$build" ../serve/openai_client.cjs "$server_url" sesame
    rc=$?
    ;;
  browser)
    [ -x /usr/bin/chromium ] || { echo "skipped: /usr/bin/chromium missing (tools/setup_deps.sh installs chromium)"; exit 77; }
    # Offloaded, so that the IO monitor shows experts in every tier.
    printf '{"text": "the quick brown fox jumps over the lazy dog"}\n{"text": "experts that fire together are stored together"}\n' \
      >"$work/calib.jsonl"
    "$bin/chronos-pack" --model "$work/tiny" --data "$work/calib.jsonl" --seq-len 16 --log-level warn >/dev/null ||
      { echo "FAIL: chronos-pack"; exit 1; }
    start_server --model "$work/tiny" --offload "$work/tiny/expert_cache" --ram-budget 50% --compute-budget 25% || exit 1
    mkdir -p "$build/artifacts"
    bash "$src/tests/compat/run_compat.sh" "$build" ../serve/web_ui.cjs "$server_url" "$build/artifacts" "$work/chromium-profile"
    rc=$?
    ;;
  load)
    start_server --model "$work/tiny" --parallel 2 --max-queue 8 --max-body-bytes 65536 || exit 1
    # A burst of 16 new connections needs a listen backlog above cpp-httplib's 5 (else SYN cookies
    # reset some mid-request); ss shows a listening socket's backlog as its Send-Q.
    if command -v ss >/dev/null; then
      backlog=$(ss -Hltn "sport = :${server_url##*:}" | awk '{print $3; exit}')
      [ "${backlog:-0}" -ge 64 ] || { echo "FAIL listen backlog ${backlog:-unknown} (want >= 64)"; stop_server; exit 1; }
    fi
    # The resident-memory bound needs the server's pid; under AddressSanitizer freed memory sits in its
    # quarantine (256 MiB by default), so RSS says nothing about leaks there and is not checked.
    rss=(--pid "$server_pid")
    if ldd "$bin/chronos-serve" 2>/dev/null | grep -q libasan; then rss=(); echo "AddressSanitizer build: the RSS bound is not checked"; fi
    node "$src/tools/bench/serve_client.cjs" --mode load --url "$server_url" "${rss[@]}" --requests 200 --clients 16
    rc=$?
    ;;
  *) echo "unknown kind $kind"; exit 2 ;;
esac
[ $rc -eq 0 ] || [ $rc -eq 77 ] || { echo "server log (tail):"; tail -20 "$work/server.log" | sed 's/^/  | /'; }
[ $rc -eq 77 ] && exit 77
stop_server || rc=1
exit $rc
