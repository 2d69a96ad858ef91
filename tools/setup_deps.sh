#!/usr/bin/env bash
# Installs the Debian packages Chronos builds against, only those that are missing.
# Sourced or run by tools/quickstart.sh, tools/test.sh and .ci/run. Idempotent.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libtorch-dev          # LibTorch 1.13 (CPU); GPU machines use the PyTorch-bundled LibTorch instead
  libopenblas0-pthread  # without it Debian's LibTorch runs matmuls ~30x slower (reference BLAS)
  nlohmann-json3-dev libcli11-dev libspdlog-dev libgtest-dev
  libigraph-dev         # Louvain communities for chronos-pack
  libxxhash-dev         # XXH3 checksums of expert cache files
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all build dependencies present"
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1; then
  sudo=(sudo)
else
  echo "setup: error: missing packages (${missing[*]}) and not root; install them with apt-get" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup: error: apt-get not found; install these packages by hand: ${missing[*]}" >&2
  exit 1
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
echo "setup: done"
