#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to a trained, offloaded Chronos model: installs what is
# missing, builds Release, then runs the pipeline on a multi-domain corpus built from Debian packages
# (English, Chinese, German, Spanish, Italian and Russian fortunes, Python's standard library, man
# pages): tokenizer, pretraining of the fine-grained preset (32 experts per layer, top-4), a short SFT,
# held-out cross-entropy per domain, generation, expert caches in fp32 / int8 / int4, the intent
# classifier, and the offload benchmark. Everything goes under runs/quickstart/; the final model
# directory is runs/quickstart/model. Safe to run again (it starts over).
# Environment: PRETRAIN_STEPS, SFT_STEPS, BENCH_PROMPTS (0: all held-out prompts), BENCH_TOKENS.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/runs/quickstart"
bin="${BUILD_DIR:-$root/build}/tools"
config="$root/configs/fine.json"
pretrain_steps=${PRETRAIN_STEPS:-360}
sft_steps=${SFT_STEPS:-60}
bench_prompts=${BENCH_PROMPTS:-0}
bench_tokens=${BENCH_TOKENS:-64}
# Without a strong load-balance weight a short run collapses onto a few experts per layer, which
# leaves nothing to offload: 0.01 keeps every expert in use at no cost in CE (docs/training_losses.md).
balance=0.01
corpus_packages=(fortunes fortunes-zh fortunes-de fortunes-es fortunes-it fortunes-ru manpages man-db groff-base)

step() { printf '\n==> %s\n' "$*"; }
started=$(date +%s)

step "Installing missing build dependencies"
bash "$root/tools/setup_deps.sh"
missing=()
for p in "${corpus_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "quickstart: installing the text corpus (Debian packages ${missing[*]})"
  sudo=(); [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi

step "Building Chronos (Release)"
bash "$root/tools/build.sh"
built=$(date +%s)

rm -rf "$out"
mkdir -p "$out/data"
data="$out/data"
step "Corpus: eight domains from Debian packages -> JSONL (held-out split per domain)"
python3 "$root/tools/build_corpus.py" --out "$data/corpus.jsonl" --sft "$data/sft.jsonl" --heldout "$data/heldout.jsonl" \
  --prompts "$data/bench_prompts.jsonl" --intent-prompts "$data/intent_prompts.jsonl" --summary "$data/summary.json"

step "Tokenizer: byte-level BPE, 6400 tokens"
"$bin/chronos-train" tokenizer --data "$data/corpus.jsonl" --vocab-size 6400 --out "$out/tokenizer"

step "Model: the fine-grained preset ($config)"
"$bin/chronos-train" init --config "$config" --out "$out/init" --tokenizer "$out/tokenizer/tokenizer.json" --seed 0 --log-level warn

step "Pretraining: $pretrain_steps steps of 8 x 256 tokens"
"$bin/chronos-train" pretrain --from "$out/init" --data "$data/corpus.jsonl" --out "$out/pretrain" \
  --steps "$pretrain_steps" --batch-size 8 --grad-accum 1 --max-seq-len 256 --lr 2e-3 --log-every 20 \
  --lambda-balance "$balance" --save-every 120 --keep 1 --log-jsonl "$out/pretrain.jsonl"

step "SFT: $sft_steps steps on conversations built from the corpus"
"$bin/chronos-train" sft --from "$out/pretrain" --data "$data/sft.jsonl" --out "$out/model" \
  --steps "$sft_steps" --batch-size 4 --max-seq-len 256 --lr 5e-4 --lambda-balance "$balance" --log-every 20 \
  --log-jsonl "$out/sft.jsonl"

step "Generating with the trained model"
"$bin/chronos-generate" --model "$out/model" --chat --prompt "Tell me a saying about computers." \
  --max-new-tokens 48 --temperature 0.8 --top-p 0.9 --seed 1 --stats --log-level warn

step "Expert caches: the routed experts packed by co-activation, in fp32, int8 and int4"
"$bin/chronos-pack" --model "$out/model" --data "$data/corpus.jsonl" --max-tokens 16384 --log-level warn
for q in int8 int4; do
  "$bin/chronos-pack" --model "$out/model" --data "$data/corpus.jsonl" --max-tokens 16384 --dtype "$q" \
    --out "$out/model/expert_cache_$q" --log-level warn
done

step "Held-out cross-entropy per domain: resident, and with int8 / int4 experts"
"$bin/chronos-train" eval --model "$out/model" --data "$data/heldout.jsonl" \
  --expert-cache "$out/model/expert_cache_int8" --expert-cache "$out/model/expert_cache_int4" --log-level warn | tee "$out/eval.md"

step "Intent classifier: prompt -> the experts its generation will use"
"$bin/chronos-train" intent --model "$out/model" --data "$data/intent_prompts.jsonl" --max-prompts 240 --max-new-tokens 32 \
  --steps 300 --log-level warn

step "Offloaded generation: half of the routed experts in RAM, the rest read from disk"
"$bin/chronos-generate" --model "$out/model" --offload "$out/model/expert_cache" --ram-budget 50% --compute-budget 25% \
  --chat --prompt "Tell me a saying about computers." --max-new-tokens 48 --temperature 0.8 --top-p 0.9 --seed 1 --stats --log-level warn

step "Offload benchmark: resident vs reactive vs predictive decode, fp32 / int8 / int4 experts, from the real disk"
"$bin/chronos-bench" offload --model "$out/model" --prompts "$data/bench_prompts.jsonl" --num-prompts "$bench_prompts" \
  --max-new-tokens "$bench_tokens" --ram-budget 50% --compute-budget 50% --log-level warn | tee "$out/offload_bench.md"

finished=$(date +%s)
step "Done in $(( (finished - started) / 60 )) min ($(( (finished - built) / 60 )) min after the build)"
cat <<MSG
What this run did:
  - built the library, tools and tests in ${BUILD_DIR:-$root/build}
  - built $(wc -l <"$data/corpus.jsonl") training and $(wc -l <"$data/heldout.jsonl") held-out records in eight domains ($data/summary.json)
  - trained a tokenizer: $out/tokenizer
  - pretrained the fine preset ($out/pretrain, log $out/pretrain.jsonl) and fine-tuned it ($out/sft.jsonl)
  - final model directory: $out/model, with its routed experts packed into $out/model/expert_cache{,_int8,_int4}
    and its intent classifier (intent_classifier.safetensors)
  - held-out cross-entropy per domain: $out/eval.md; offload benchmark: $out/offload_bench.md
Try: $bin/chronos-generate --model $out/model --chat      (a REPL on a terminal)
     $bin/chronos-generate --model $out/model --chat --offload $out/model/expert_cache_int4 --stats
     $bin/chronos-bench offload --model $out/model --prompts $data/bench_prompts.jsonl --ssd-ms 30
Tests: tools/test.sh
MSG
