#!/usr/bin/env bash
# tools/plot.py on a fixture training log: the PNGs are written and are PNGs; a malformed log is one
# error line naming its file and line. Exits 77 (a ctest skip) without matplotlib.
# Usage: plot_test.sh SOURCE_DIR WORK_DIR
set -uo pipefail
src=$1 work=$2
rm -rf "$work" && mkdir -p "$work"
. "$src/tests/tools/cli_lib.sh"
if ! python3 -c 'import matplotlib' 2>/dev/null && ! /usr/bin/python3 -c 'import matplotlib' 2>/dev/null; then
  echo "skipped: matplotlib is missing (tools/setup_deps.sh installs python3-matplotlib)"
  exit 77
fi
plot="$src/tools/plot.py"
expect_ok plot_training python3 "$plot" training "$src/tests/data/plots/train_log.jsonl" --out "$work/plots"
# Each of FOLDER/NAME.png exists, is a PNG and holds a real picture.
expect_pngs() {
  local folder=$1 name file
  shift
  for name in "$@"; do
    file="$folder/$name.png"
    if [ ! -s "$file" ] || [ "$(head -c 8 "$file" | od -An -tx1 | tr -d ' \n')" != "89504e470d0a1a0a" ] || [ "$(stat -c %s "$file")" -lt 2000 ]; then
      fail "$name.png is missing, empty or not a PNG"
    else
      passed=$((passed + 1))
    fi
  done
}
expect_pngs "$work/plots" losses training expert_load
# A --chronovisor run's log: the training plots skip its tick lines; the chronovisor plots read them.
expect_ok plot_training_with_ticks python3 "$plot" training "$src/tests/data/plots/chronovisor_log.jsonl" --out "$work/cv"
expect_ok plot_chronovisor python3 "$plot" chronovisor "$src/tests/data/plots/chronovisor_log.jsonl" --out "$work/cv"
expect_pngs "$work/cv" losses coherence lens pressure
expect_error plot_no_ticks "no Chronovisor ticks" python3 "$plot" chronovisor "$src/tests/data/plots/train_log.jsonl" --out "$work/x"
grep -m1 '"chronovisor"' "$src/tests/data/plots/chronovisor_log.jsonl" | sed 's/"lens":\[\[[^]]*\]/"lens":[[1]/' >"$work/badlens.jsonl"
expect_error plot_bad_lens "$work/badlens.jsonl:1: 'lens' must be" python3 "$plot" chronovisor "$work/badlens.jsonl" --out "$work/x"
{ head -2 "$src/tests/data/plots/train_log.jsonl"; echo '{"step": 3, "loss": '; } >"$work/bad.jsonl"
expect_error plot_bad_line "$work/bad.jsonl:3: invalid JSON" python3 "$plot" training "$work/bad.jsonl" --out "$work/x"
echo '{"loss": 1}' >"$work/nostep.jsonl"
expect_error plot_no_step "$work/nostep.jsonl:1: a training record needs an integer 'step'" python3 "$plot" training "$work/nostep.jsonl" --out "$work/x"
expect_error plot_missing "$work/none.jsonl: No such file or directory" python3 "$plot" training "$work/none.jsonl" --out "$work/x"
# A chronos-compare result: bars, KV bytes against context, and the stage curves from the logs it names.
expect_ok plot_compare python3 "$plot" compare "$src/tests/data/plots/compare.json" --out "$work/compare"
expect_pngs "$work/compare" compare_bars kv_bytes compare_training
echo '{"vanilla": {"kv_bytes_per_token": {"512": 1}}}' >"$work/notcompare.json"
expect_error plot_not_compare "$work/notcompare.json: not a chronos-compare result (no 'chronos' object)" python3 "$plot" compare "$work/notcompare.json" --out "$work/x"
printf '{"vanilla": ' >"$work/badcompare.json"
expect_error plot_bad_compare "$work/badcompare.json:1: invalid JSON" python3 "$plot" compare "$work/badcompare.json" --out "$work/x"
# A chronos-tune study folder: the front with its knee and the chosen trial.
expect_ok plot_tune python3 "$plot" tune "$src/tests/data/plots/tune" --out "$work/tune"
expect_pngs "$work/tune" pareto
mkdir -p "$work/notune" && echo '{"trials": []}' >"$work/notune/tune.json"
expect_error plot_not_tune "$work/notune/tune.json: not a chronos-tune summary" python3 "$plot" tune "$work/notune" --out "$work/x"
echo "plot: $passed passed, $failures failed"
[ "$failures" -eq 0 ]
