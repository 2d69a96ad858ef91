#!/usr/bin/env bash
# The tokenizer compat test: builds the text set once (the quickstart corpus from Debian's fortunes
# in six languages and man pages, via tools/build_corpus.py, plus tests/data/tokenizer/compat_cases.jsonl),
# then compares Chronos with HF tokenizers on it (tokenizers.cjs).
# Usage: tokenizers.sh BUILD_DIR COMPAT_DRIVER SOURCE_DIR WORK_DIR
set -euo pipefail
build=$1 driver=$2 src=$3 work=$4
mkdir -p "$work"
texts="$build/compat-text/texts.jsonl"
if [ ! -s "$texts" ]; then
  mkdir -p "$build/compat-text"
  if ! python3 "$src/tools/build_corpus.py" --out "$build/compat-text/corpus.jsonl" --max-chars 6000000 \
      >"$build/compat-text/build.log" 2>&1; then
    echo "skipped: the quickstart corpus could not be built (tools/setup_deps.sh installs its Debian packages); see $build/compat-text/build.log"
    exit 77
  fi
  python3 - "$build/compat-text/corpus.jsonl" "$texts" <<'PY'
import json, sys
with open(sys.argv[1], encoding="utf-8") as src, open(sys.argv[2] + ".tmp", "w", encoding="utf-8") as out:
    for line in src:
        record = json.loads(line)
        text = record.get("text") or ""
        if text:
            out.write(json.dumps(text, ensure_ascii=False) + "\n")
import os
os.replace(sys.argv[2] + ".tmp", sys.argv[2])
PY
fi
exec bash "$src/tests/compat/run_compat.sh" "$build" tokenizers.cjs "$driver" "$src" "$work" "$texts" "$src/tests/data/tokenizer/compat_cases.jsonl"
