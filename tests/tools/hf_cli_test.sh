#!/usr/bin/env bash
# The tools on Hugging Face MoE checkpoints (docs/hf-checkpoints.md), random weights written by
# `chronos-bench checkpoint` with a Llama-style tokenizer fixture: generation (plain and --chat, with
# prompt_ids), decode and offload benchmarks, fine-tuning saved in the family's own layout, packing a
# checkpoint larger than its --ram-budget with the peak RSS checked, refusals as one line.
# Usage: hf_cli_test.sh TOOLS_DIR SOURCE_DIR
set -u
bin=$1 src=$2
train=$bin/chronos-train bench=$bin/chronos-bench generate=$bin/chronos-generate pack=$bin/chronos-pack
tokenizer="$src/tests/data/tokenizer/pipeline_sentencepiece.json"
template="$src/tests/data/chat/mixtral_instruct.jinja"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
. "$(dirname "$0")/cli_lib.sh"
[ -f "$tokenizer" ] && [ -f "$template" ] || { echo "SKIP: tokenizer fixtures missing"; exit 77; }

# mixtral_config HIDDEN INTERMEDIATE LAYERS EXPERTS: a Mixtral config.json as the release writes it.
mixtral_config() {
  cat <<EOF
{"architectures": ["MixtralForCausalLM"], "model_type": "mixtral", "vocab_size": 320, "hidden_size": $1,
 "intermediate_size": $2, "num_hidden_layers": $3, "num_attention_heads": 4, "num_key_value_heads": 2,
 "hidden_act": "silu", "max_position_embeddings": 256, "rms_norm_eps": 1e-05, "rope_theta": 1000000.0,
 "sliding_window": null, "num_local_experts": $4, "num_experts_per_tok": 2, "router_aux_loss_coef": 0.02,
 "router_jitter_noise": 0.0, "attention_dropout": 0.0, "tie_word_embeddings": false, "bos_token_id": 1,
 "eos_token_id": 2, "torch_dtype": "bfloat16", "transformers_version": "4.46.0"}
EOF
}
# add_tokenizer DIR: the tokenizer files a Hugging Face model directory holds.
add_tokenizer() {
  cp "$tokenizer" "$1/tokenizer.json"
  python3 - "$template" "$1/tokenizer_config.json" <<'PY'
import json, sys
json.dump({"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "chat_template": open(sys.argv[1]).read()},
          open(sys.argv[2], "w"))
PY
}

mixtral_config 64 96 2 4 >"$work/tiny.json"
expect_ok checkpoint_tiny "$bench" checkpoint --config "$work/tiny.json" --out "$work/mixtral" --shard-size 64K --log-level warn
[ -f "$work/mixtral/model.safetensors.index.json" ] || fail "no shard index"
add_tokenizer "$work/mixtral"
expect_error checkpoint_not_empty "not empty" "$bench" checkpoint --config "$work/tiny.json" --out "$work/mixtral"

# Generation: a plain prompt gets the tokenizer's BOS, a chat prompt the template's (once).
expect_ok generate_plain "$generate" --model "$work/mixtral" --prompt "hello world" --greedy --max-new-tokens 4 --json --log-level warn
python3 - "$work/out" <<'PY' || fail "generate --json: prompt_ids/tokens"
import json, sys
out = json.load(open(sys.argv[1]))
ids = out["prompt_ids"]
assert ids[0] == 1 and ids.count(1) == 1, ids   # <s> once
assert 1 <= len(out["tokens"]) <= 4, out["tokens"]
PY
expect_ok generate_chat "$generate" --model "$work/mixtral" --prompt "hi" --chat --greedy --max-new-tokens 3 --json --log-level warn
python3 - "$work/out" <<'PY' || fail "generate --chat: one BOS from the template"
import json, sys
ids = json.load(open(sys.argv[1]))["prompt_ids"]
assert ids[0] == 1 and ids.count(1) == 1, ids
PY
expect_ok bench_decode "$bench" decode --model "$work/mixtral" --prompt-tokens 8 --new-tokens 8 --repeat 1 --warmup 0 --json --log-level warn
grep -q '"tokens_per_s"\|"decode_tokens_per_s"' "$work/out" || { fail "bench decode printed no rate"; cat "$work/out"; }

# Fine-tuning saves the family's layout: config keys, tensor names, dtype.
printf '{"conversations": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello there"}]}\n%.0s' 1 2 3 4 >"$work/sft.jsonl"
expect_ok sft_mixtral "$train" sft --from "$work/mixtral" --data "$work/sft.jsonl" --out "$work/tuned" --steps 2 --batch-size 2 --max-seq-len 128 --log-level warn
python3 - "$work/tuned" <<'PY' || fail "sft did not save a Mixtral-layout model"
import json, struct, sys, os
d = sys.argv[1]
config = json.load(open(os.path.join(d, "config.json")))
assert config["model_type"] == "mixtral" and config["num_local_experts"] == 4, config
assert "lambda_balance" not in config and "use_hybrid_attention" not in config, config
with open(os.path.join(d, "model.safetensors"), "rb") as f:
    header = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
names = [n for n in header if n != "__metadata__"]
assert "model.layers.1.block_sparse_moe.experts.3.w2.weight" in names, names[:5]
assert "lm_head.weight" in names and not any(".mlp." in n for n in names), names
assert all(header[n]["dtype"] == "BF16" for n in names)
PY
# The other stages on the family's template: preference pairs, GRPO's prompts, distillation from itself.
printf '{"chosen": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}], "rejected": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "go away"}]}\n%.0s' 1 2 >"$work/pairs.jsonl"
for stage in dpo orpo; do
  expect_ok "${stage}_mixtral" "$train" "$stage" --from "$work/mixtral" --data "$work/pairs.jsonl" --out "$work/$stage" --steps 1 --batch-size 2 --max-seq-len 128 --log-level warn
  grep -q '"model_type": "mixtral"' "$work/$stage/config.json" || fail "$stage saved another layout"
done
expect_ok grpo_mixtral "$train" grpo --from "$work/mixtral" --data "$work/sft.jsonl" --out "$work/grpo" --steps 1 --batch-size 2 --max-seq-len 64 --log-level warn
expect_ok distill_mixtral "$train" distill --from "$work/mixtral" --teacher "$work/mixtral" --data "$work/sft.jsonl" --out "$work/distill" --steps 1 --batch-size 2 --max-seq-len 128 --log-level warn
expect_error sft_lookahead_refused "lambda_lookahead must be 0: this model has no LookaheadRouter (model_type mixtral" \
  "$train" sft --from "$work/mixtral" --data "$work/sft.jsonl" --out "$work/x" --steps 1 --lambda-lookahead 0.1 --log-level warn

# Refusals: one line naming the key and the value.
python3 - "$work/tiny.json" "$work/rope.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); c["rope_scaling"] = {"type": "yarn", "factor": 4.0}; json.dump(c, open(sys.argv[2], "w"))
PY
mkdir -p "$work/rope" && cp "$work/rope.json" "$work/rope/config.json" && cp "$work/mixtral"/*.safetensors* "$work/rope/" && add_tokenizer "$work/rope"
expect_error refused_rope_scaling 'rope_scaling = {"factor":4.0,"type":"yarn"} is not implemented' "$generate" --model "$work/rope" --prompt hi
sed 's/"mixtral"/"deepseek_v2"/' "$work/tiny.json" >"$work/rope/config.json"
expect_error refused_model_type 'model_type "deepseek_v2" is not supported' "$generate" --model "$work/rope" --prompt hi

# Packing in bounded memory: 192 MiB of bf16 experts (384 MiB in float32) through an 8 MiB budget.
mixtral_config 256 512 16 16 >"$work/big.json"
expect_ok checkpoint_big "$bench" checkpoint --config "$work/big.json" --out "$work/big" --log-level warn
add_tokenizer "$work/big"
printf '{"text": "the quick brown fox jumps over the lazy dog again and again"}\n%.0s' 1 2 3 4 5 6 >"$work/calib.jsonl"
expect_ok pack_bounded "$pack" --model "$work/big" --data "$work/calib.jsonl" --ram-budget 8M --seq-len 32 --log-level warn
python3 - "$work/out" "$work/big/expert_cache" <<'PY' || { fail "pack --ram-budget: peak RSS or cache"; cat "$work/out"; }
import json, re, sys, os
text = open(sys.argv[1]).read()
m = re.search(r"peak RSS ([0-9.]+) MiB \(([0-9.]+) MiB before packing; dense weights ([0-9.]+) MiB in float32; "
              r"routed experts ([0-9.]+) MiB in bf16, budget ([0-9.]+) MiB\)", text)
assert m, text
peak, start, dense, experts, budget = map(float, m.groups())
# Above the start: the experts' budget, the dense weights (loaded through a float32 copy: twice),
# activations and allocator slack; far below the experts themselves. AddressSanitizer's shadow
# memory and quarantine change every figure: under it only the cache is checked.
if not os.environ.get("ASAN_OPTIONS"):
    assert peak - start < budget + 2 * dense + 24, (peak, start, dense, budget)
    assert experts > 3 * (peak - start), (experts, peak, start)
manifest = json.load(open(os.path.join(sys.argv[2], "cluster_manifest.json")))
members = sum(len(c["experts"]) for c in manifest["clusters"])
assert members == 16 * 16, members
PY
expect_error pack_budget_too_small "ram_budget_bytes must hold at least four experts" \
  "$pack" --model "$work/big" --data "$work/calib.jsonl" --ram-budget 1M --out "$work/small_cache" --log-level warn
expect_ok offload_generate "$generate" --model "$work/big" --prompt "the quick" --greedy --max-new-tokens 4 --offload "$work/big/expert_cache" --ram-budget 50% --compute-budget 25% --json --log-level warn
grep -q '"offload"' "$work/out" || { fail "offloaded generation printed no offload stats"; cat "$work/out"; }

echo "passed $passed, failed $failures"
[ "$failures" -eq 0 ]
