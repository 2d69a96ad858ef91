#!/usr/bin/env bash
# Checks tools/build_corpus.py on the fixtures of tests/data/corpus: the same sources given in
# another order (and the man page gzipped, next to a .so link) give byte-identical outputs; held-out
# and training texts are disjoint; records keep their domain; prompts are balanced per domain;
# legacy encodings, double-encoded UTF-8, colour escapes and overstrikes come out as clean UTF-8;
# bad input gives one line and a non-zero exit. Without groff the man domain is left out and the
# test reports a skip (77) after the other checks.
# Usage: corpus_builder_test.sh SOURCE_DIR
set -euo pipefail
src=$1
builder="$src/tools/build_corpus.py"
data="$src/tests/data/corpus"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
fail() { echo "FAIL $*"; failures=$((failures + 1)); }

domains=en,zh,de,ru,python,man
skip_man=""
if ! command -v groff >/dev/null; then
  domains=en,zh,de,ru,python
  skip_man="groff is not installed: the man domain was not tested"
fi
reversed=$(echo "$domains" | tr ',' '\n' | tac | paste -sd, -)
mkdir -p "$work/man1"
gzip -c "$data/man/hello.1" >"$work/man1/hello.1.gz"
cp "$data/man/salute.1" "$work/man1/"

options=(--max-chars 300 --heldout-fraction 0.2 --prompts-per-domain 2 --intent-prompts-per-domain 2 --jobs 2)
build() {  # build OUT_DIR ARGS...: every output into OUT_DIR
  local out=$1
  shift
  mkdir -p "$out"
  python3 "$builder" --out "$out/corpus.jsonl" --sft "$out/sft.jsonl" --heldout "$out/heldout.jsonl" \
    --prompts "$out/prompts.jsonl" --intent-prompts "$out/intent.jsonl" --summary "$out/summary.json" \
    "${options[@]}" "$@" 2>"$out/stderr" || { cat "$out/stderr" >&2; return 1; }
}
man_a=() man_b=()
if [ -z "$skip_man" ]; then
  man_a=(--source "man=$data/man")
  man_b=(--source "man=$work/man1/salute.1" --source "man=$work/man1/hello.1.gz")
fi
build "$work/a" --domains "$domains" --source "en=$data/fortunes/en" --source "zh=$data/fortunes/zh" \
  --source "de=$data/fortunes/de" --source "ru=$data/fortunes/ru" --source "python=$data/python" "${man_a[@]}" >/dev/null
build "$work/b" --domains "$reversed" "${man_b[@]}" --source "python=$data/python/beta.py" \
  --source "python=$data/python/alpha.py" --source "ru=$data/fortunes/ru/poslovicy" --source "de=$data/fortunes/de" \
  --source "zh=$data/fortunes/zh/tang" --source "en=$data/fortunes/en/wisdom" --source "en=$data/fortunes/en/computers" >/dev/null

for file in corpus.jsonl sft.jsonl heldout.jsonl prompts.jsonl intent.jsonl summary.json; do
  cmp -s "$work/a/$file" "$work/b/$file" || fail "$file differs between the two runs"
done
grep -q "build_corpus: en: " "$work/a/stderr" || fail "no progress line for en on stderr"

python3 - "$work/a" "$domains" <<'PY' || fail "content checks"
import collections, json, sys
out, domains = sys.argv[1], sys.argv[2].split(",")
def load(name):
    with open(f"{out}/{name}", encoding="utf-8") as f:
        return [json.loads(line) for line in f]
corpus, sft, heldout = load("corpus.jsonl"), load("sft.jsonl"), load("heldout.jsonl")
prompts, intent = load("prompts.jsonl"), load("intent.jsonl")
problems = []
def check(ok, message):
    if not ok:
        problems.append(message)
for name, records in [("corpus", corpus), ("sft", sft), ("heldout", heldout), ("prompts", prompts), ("intent", intent)]:
    check(all(r.get("domain") in domains for r in records), f"{name}: a record without a requested domain")
check({r["domain"] for r in corpus} == set(domains), "corpus: not every domain has training records")
check({r["domain"] for r in heldout} == set(domains), "heldout: not every domain has held-out records")
training = {r["text"] for r in corpus}
held = {r["text"] for r in heldout}
answers = {m["content"] for r in sft for m in r["conversations"] if m["role"] == "assistant"}
check(not training & held, "a held-out text is in the corpus")
check(not answers & held, "a held-out text is an SFT answer")
check(answers == training, "the SFT answers are not the training texts")
check(len(corpus) == len(training), "the corpus repeats a text")
per_domain = collections.Counter(r["domain"] for r in prompts)
check(all(per_domain[d] == 2 for d in domains) and len(prompts) == 2 * len(domains), f"prompts per domain: {per_domain}")
check([r["domain"] for r in prompts[:len(domains)]] == domains, "prompts are not interleaved by domain")
check(all(any(h.startswith(p["text"]) for h in held) for p in prompts), "a prompt is not the opening of a held-out text")
check(all(any(t.startswith(p["text"]) for t in training) for p in intent), "an intent prompt is not the opening of a training text")
check(collections.Counter(r["domain"] for r in intent) == collections.Counter({d: 2 for d in domains}), "intent prompts unbalanced")
everything = [r["text"] for r in corpus + heldout]
# latin-1, koi8-r, double-encoded UTF-8, colour escapes (zh, en), an overstrike, Python definitions.
for fragment in ["Grüße aus München", "Привет! Не имей сто рублей", "встаёт", "Louis-Ferdinand Céline",
                 "《登高》\n作者：杜甫", "UNIX is simple", "Well, SOMEbody", "class Account:", "def transfer("]:
    check(any(fragment in t for t in everything), f"missing text: {fragment!r}")
check(not any(c in t for t in everything for c in "\x1b\b\ufffd"), "an escape, backspace or replacement character is left")
check(all(len(t) <= 300 for t in everything), "a record is longer than --max-chars")
man = [r["text"] for r in corpus + heldout if r["domain"] == "man"]
check(not any(line.startswith((".", "'", "\\")) for t in man for line in t.split("\n")), "roff left in the man records")
check(not man or any("hello - print a friendly greeting" in t for t in man), "the man page was not rendered")
check(not man or sum("Hello, Ada!" in t for t in man) == 1, "the man page is there twice (.so link or .gz copy)")
questions = {m["content"] for r in sft for m in r["conversations"] if m["role"] == "user"}
for question in ["Tell me a saying about wisdom.", "Erzähl mir einen Spruch über sprueche.", "Show me Python code from the beta module."]:
    check(question in questions, f"missing SFT question {question!r}")
summary = json.load(open(f"{out}/summary.json", encoding="utf-8"))
check(sorted(summary["domains"]) == sorted(domains), "summary domains")
check(all(summary["domains"][d]["train"]["records"] == sum(r["domain"] == d for r in corpus) for d in domains), "summary counts")
for problem in problems:
    print(f"FAIL {problem}")
sys.exit(1 if problems else 0)
PY

# Bad input: a non-zero exit and one line on stderr that names the problem.
expect_error() {  # expect_error NAME FRAGMENT ARGS...
  local name=$1 fragment=$2 rc=0
  shift 2
  python3 "$builder" --out "$work/bad.jsonl" "$@" >/dev/null 2>"$work/err" || rc=$?
  if [ "$rc" -eq 0 ] || [ "$(grep -c . "$work/err")" -ne 1 ] || ! grep -qF -- "$fragment" "$work/err"; then
    fail "$name: rc=$rc, wanted one stderr line with '$fragment':"
    sed 's/^/  | /' "$work/err"
  fi
}
expect_error missing_source "$work/none" --domains en --source "en=$work/none"
expect_error unknown_domain "unknown domain 'klingon'" --domains en,klingon --source "en=$data/fortunes/en"
expect_error unknown_source_domain "unknown domain 'xx'" --domains en --source "xx=$data/fortunes/en"
expect_error source_not_built "not in --domains" --domains en --source "en=$data/fortunes/en" --source "de=$data/fortunes/de"
expect_error bad_fraction "--heldout-fraction" --domains en --source "en=$data/fortunes/en" --heldout-fraction 1.5
expect_error not_a_fraction "--heldout-fraction" --domains en --source "en=$data/fortunes/en" --heldout-fraction half
expect_error bad_max_chars "--max-chars" --domains en --source "en=$data/fortunes/en" --max-chars 0
expect_error no_files "no python files" --domains python --source "python=$data/man"
expect_error too_few_prompts "--prompts-per-domain" --domains en --source "en=$data/fortunes/en" --prompts-per-domain 50
expect_error unwritable_output "$work/none/sft.jsonl" --domains en --source "en=$data/fortunes/en" --sft "$work/none/sft.jsonl"
expect_error unknown_flag "--bogus" --bogus

if [ "$failures" -ne 0 ]; then
  echo "corpus_builder: $failures failure(s)"
  exit 1
fi
if [ -n "$skip_man" ]; then
  echo "SKIP: $skip_man"
  exit 77
fi
echo "corpus_builder: all checks passed"
