#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to a trained Chronos model: installs what is missing,
# builds Release, then runs the pipeline on real text from Debian's fortune packages: tokenizer,
# pretraining of the small preset for a few minutes, a short SFT on conversations built from the same
# corpus, and generation. Everything goes under runs/quickstart/; the final model directory is
# runs/quickstart/model. Safe to run again (it starts over). Environment: PRETRAIN_STEPS, SFT_STEPS.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/runs/quickstart"
bin="${BUILD_DIR:-$root/build}/tools"
config="$root/configs/small.json"
pretrain_steps=${PRETRAIN_STEPS:-150}
# The spec's load-balance weight (5e-4) let this short run collapse onto two experts per layer
# (expert_load ~[0.5, 0, 0.5, 0]); 0.01 keeps every expert in use at no cost in CE (80 steps: CE
# 6.87 vs 6.89, balance 12.2 vs 22.0 where 12 = L x k is perfect), which is what offloading needs.
balance=0.01
sft_steps=${SFT_STEPS:-40}

step() { printf '\n==> %s\n' "$*"; }

step "Installing missing build dependencies"
bash "$root/tools/setup_deps.sh"
if [ ! -d /usr/share/games/fortunes ] || [ ! -f /usr/share/games/fortunes/tang300 ]; then
  echo "quickstart: installing the text corpus (Debian packages fortunes, fortunes-zh)"
  sudo=(); [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq fortunes fortunes-zh >/dev/null
fi

step "Building Chronos (Release)"
bash "$root/tools/build.sh"

rm -rf "$out"
mkdir -p "$out/data"
step "Corpus: English and Chinese fortunes -> JSONL"
mapfile -t files < <(find /usr/share/games/fortunes -maxdepth 1 -type f ! -name '*.dat' ! -name '*.u8' | sort)
python3 "$root/tools/fortunes_to_jsonl.py" --out "$out/data/corpus.jsonl" --sft "$out/data/sft.jsonl" \
  --prompts "$out/data/bench_prompts.jsonl" --intent-prompts "$out/data/intent_prompts.jsonl" "${files[@]}"

step "Tokenizer: byte-level BPE, 6400 tokens"
"$bin/chronos-train" tokenizer --data "$out/data/corpus.jsonl" --vocab-size 6400 --out "$out/tokenizer"

step "Model: the small preset ($config)"
"$bin/chronos-train" init --config "$config" --out "$out/init" --tokenizer "$out/tokenizer/tokenizer.json" --seed 0 --log-level warn

step "Pretraining: $pretrain_steps steps of 8 x 256 tokens"
"$bin/chronos-train" pretrain --from "$out/init" --data "$out/data/corpus.jsonl" --out "$out/pretrain" \
  --steps "$pretrain_steps" --batch-size 8 --grad-accum 1 --max-seq-len 256 --lr 2e-3 --log-every 10 \
  --lambda-balance "$balance" --save-every 50 --keep 1 --log-jsonl "$out/pretrain.jsonl"

step "SFT: $sft_steps steps on conversations built from the corpus"
"$bin/chronos-train" sft --from "$out/pretrain" --data "$out/data/sft.jsonl" --out "$out/model" \
  --steps "$sft_steps" --batch-size 4 --max-seq-len 256 --lr 5e-4 --lambda-balance "$balance" --log-every 10 \
  --log-jsonl "$out/sft.jsonl"

step "Generating with the trained model"
"$bin/chronos-generate" --model "$out/model" --chat --prompt "Tell me a saying about computers." \
  --max-new-tokens 48 --temperature 0.8 --top-p 0.9 --seed 1 --stats --log-level warn

step "Offloading: experts packed by co-activation, served from disk with 25% of them in the compute tier"
"$bin/chronos-pack" --model "$out/model" --data "$out/data/corpus.jsonl" --max-tokens 16384 --log-level warn
"$bin/chronos-train" intent --model "$out/model" --data "$out/data/intent_prompts.jsonl" --max-prompts 120 --max-new-tokens 32 \
  --steps 200 --log-level warn
"$bin/chronos-generate" --model "$out/model" --offload "$out/model/expert_cache" --ram-budget 50% --compute-budget 25% \
  --chat --prompt "Tell me a saying about computers." --max-new-tokens 48 --temperature 0.8 --top-p 0.9 --seed 1 --stats --log-level warn

step "Offload benchmark: resident vs reactive vs predictive decode (8 held-out prompts, SSD throttled to 1 GB/s)"
"$bin/chronos-bench" offload --model "$out/model" --prompts "$out/data/bench_prompts.jsonl" --num-prompts 8 --max-new-tokens 32 \
  --ssd-mbps 1000 --log-level warn

step "Done"
cat <<MSG
What this run did:
  - built the library, tools and tests in ${BUILD_DIR:-$root/build}
  - converted $(wc -l <"$out/data/corpus.jsonl") fortunes into $out/data/{corpus,sft}.jsonl
  - trained a tokenizer: $out/tokenizer
  - pretrained the small model ($out/pretrain, log $out/pretrain.jsonl) and fine-tuned it ($out/sft.jsonl)
  - final model directory: $out/model, with its routed experts packed into $out/model/expert_cache
    and its intent classifier (intent_classifier.safetensors)
Try: $bin/chronos-generate --model $out/model --chat      (a REPL on a terminal)
     $bin/chronos-generate --model $out/model --chat --offload $out/model/expert_cache --stats
     $bin/chronos-bench offload --model $out/model --prompts $out/data/bench_prompts.jsonl --ssd-ms 30
Tests: tools/test.sh
MSG
