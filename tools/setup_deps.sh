#!/usr/bin/env bash
# Installs the Debian packages Chronos builds against, only those that are missing.
# Sourced or run by tools/quickstart.sh, tools/test.sh and .ci/run. Idempotent.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libtorch-dev          # LibTorch 1.13 (CPU); GPU machines use the PyTorch-bundled LibTorch instead
  libgloo-dev           # Gloo headers for c10d's ProcessGroupGloo (data-parallel chronos-train; the library is LibTorch's)
  libopenblas0-openmp   # without it Debian's LibTorch runs matmuls ~30x slower (reference BLAS); the
                        # OpenMP build shares LibTorch's threads instead of competing with them
  nlohmann-json3-dev libcli11-dev libspdlog-dev libgtest-dev
  libigraph-dev         # Louvain communities for chronos-pack
  libxxhash-dev         # XXH3 checksums of expert cache files
  libcpp-httplib-dev    # chronos-serve's HTTP transport (cpp-httplib, a shared library with pkg-config)
  libpcre2-dev          # the Split/Replace regexes of tokenizer.json (PCRE2 with its JIT)
  libutf8proc-dev       # Unicode normalization (NFC/NFKC), case mapping and categories for tokenizers
  groff-base            # renders man pages for the corpus builder (quickstart) and its test
  python3-matplotlib    # tools/plot.py: training curves and expert-load heatmaps as PNG
  python3-optuna        # chronos-tune drives Optuna's TPE through its command line (ask / tell on a SQLite study)
  clang libclang-rt-dev # libFuzzer + ASan/UBSan runtimes: the fuzz targets of tests/fuzz (ctest label fuzz)
)
# The compat tests (ctest label compat) compare with the reference JavaScript packages (npm installs
# them into the build folder) on the quickstart corpus (Debian's fortunes and man pages).
if ! command -v npm >/dev/null 2>&1; then packages+=(nodejs npm); fi
packages+=(chromium curl)  # chronos-serve's web UI test drives headless chromium (playwright-core); the serve tests poll with curl
packages+=(fortunes fortunes-zh fortunes-de fortunes-es fortunes-it fortunes-ru manpages man-db)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

sudo=()
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then sudo=(sudo); fi
can_admin() { [ "$(id -u)" -eq 0 ] || [ ${#sudo[@]} -gt 0 ]; }

if [ ${#missing[@]} -gt 0 ]; then
  if ! can_admin; then
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
else
  echo "setup: all build dependencies present"
fi

# With the pthread build also installed, the alternatives system prefers it (priority 100 vs 95).
# LibTorch links libblas.so.3 and libopenblas.so.0, each an alternative of its own: point them and
# liblapack.so.3 at the OpenMP build (docs/cli.md, "Threads").
triplet=$(gcc -dumpmachine)
for lib in libblas.so.3 liblapack.so.3 libopenblas.so.0; do
  name="$lib-$triplet"
  want="/usr/lib/$triplet/openblas-openmp/$lib"
  [ -e "$want" ] || continue
  current=$(update-alternatives --query "$name" 2>/dev/null | sed -n 's/^Value: //p')
  [ "$current" = "$want" ] && continue
  if can_admin; then
    "${sudo[@]}" update-alternatives --quiet --set "$name" "$want"
    echo "setup: $lib now points at the OpenMP build of OpenBLAS"
  else
    echo "setup: warning: $lib points at $current; as root: update-alternatives --set $name $want" >&2
  fi
done
echo "setup: done"
