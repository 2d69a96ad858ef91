#!/usr/bin/env bash
# Runs one compat test (ctest label compat) against the reference JavaScript packages of
# tests/compat/package.json, installed with npm into BUILD_DIR/compat-node on first use.
# Usage: run_compat.sh BUILD_DIR SCRIPT.cjs [arguments...]
# Exits 77, which ctest reports as a skip, when node/npm or the npm registry is unavailable.
set -euo pipefail
build=$1
script=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "skipped: npm unavailable (install nodejs and npm; tools/setup_deps.sh does)"
  exit 77
fi
dir="$build/compat-node"
stamp="$dir/installed-$(md5sum "$here/package.json" | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  mkdir -p "$dir"
  # Several compat tests may start at once: one installs, the others wait for it.
  exec 9>"$dir/.lock"
  flock 9
  if [ ! -f "$stamp" ]; then
    cp "$here/package.json" "$dir/package.json"
    if ! (cd "$dir" && npm install --no-audit --no-fund --no-package-lock --loglevel=error >"$dir/npm.log" 2>&1); then
      echo "skipped: npm install failed (registry unreachable?); see $dir/npm.log"
      tail -5 "$dir/npm.log" || true
      exit 77
    fi
    touch "$stamp"
  fi
  flock -u 9
fi
NODE_PATH="$dir/node_modules" exec node "$here/$script" "$@"
