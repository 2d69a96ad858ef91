#!/usr/bin/env bash
# End-to-end checks of the executables: good input works; bad input gives exactly one line on
# stderr naming the culprit and a non-zero exit. Usage: cli_test.sh TOOLS_DIR SOURCE_DIR
set -u
bin=$1 src=$2
train=$bin/chronos-train bench=$bin/chronos-bench generate=$bin/chronos-generate
minimind="$src/tests/data/minimind/tokenizer.json"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
. "$(dirname "$0")/cli_lib.sh"
[ -f "$minimind" ] || { echo "SKIP: the MiniMind tokenizer fixture is missing ($minimind)"; exit 77; }

printf '{"hidden_size": 64,\n "num_experts": }\n' >"$work/bad.json"
printf '{"num_experts": 2, "num_experts_per_tok": 3}\n' >"$work/rule.json"
printf '{"hidden_size": "wide"}\n' >"$work/type.json"

expect_ok init_tiny "$train" init --config "$src/configs/tiny.json" --out "$work/tiny" --seed 1 --log-level warn
[ -f "$work/tiny/config.json" ] && [ -f "$work/tiny/model.safetensors" ] || fail "init wrote no model"
expect_error malformed_config "$work/bad.json:2:" "$train" init --config "$work/bad.json" --out "$work/x"
expect_error broken_rule "num_experts_per_tok" "$train" init --config "$work/rule.json" --out "$work/x"
expect_error wrong_type "key 'hidden_size' must be an integer" "$train" init --config "$work/type.json" --out "$work/x"
expect_error missing_config "$work/none.json" "$train" init --config "$work/none.json" --out "$work/x"
mkfifo "$work/fifo.json"  # no writer: a plain open() would block forever
expect_error fifo_config "$work/fifo.json: is a FIFO" "$train" init --config "$work/fifo.json" --out "$work/x"
expect_error unknown_flag "--bogus" "$train" init --config "$src/configs/tiny.json" --out "$work/x" --bogus
expect_error bad_device "--device" "$train" init --config "$src/configs/tiny.json" --out "$work/x" --device tpu
expect_error no_subcommand "subcommand" "$train"
expect_error bench_bad_config "$work/bad.json" "$bench" forward --config "$work/bad.json"
expect_error bench_bad_dtype "dtype" "$bench" forward --config "$src/configs/tiny.json" --dtype fp8
expect_ok bench_json "$bench" forward --config "$src/configs/tiny.json" --seq-len 16 --batch 1 --repeat 1 --warmup 0 --matmul-size 64 --json --log-level warn
grep -q '"mfu"' "$work/out" && grep -q '"tokens_per_s"' "$work/out" || { fail "bench_json keys"; cat "$work/out"; }
[ -d "$work/x" ] && fail "a failed run left output behind"

# chronos-generate, on a tiny random model with the MiniMind tokenizer.
# A window of 8 tokens, so that 40 generated tokens run far past it.
sed 's/"sliding_window_size": [0-9]*/"sliding_window_size": 8/' "$src/configs/tiny.json" >"$work/window8.json"
expect_ok init_with_tokenizer "$train" init --config "$work/window8.json" --out "$work/gen" --tokenizer "$minimind" --log-level warn
grep -q '"sliding_window_size": 8' "$work/gen/config.json" || fail "window-8 config not applied"
args=(--model "$work/gen" --prompt "The cache 里的 experts" --greedy --max-new-tokens 40 --log-level warn)
expect_ok generate_cached "$generate" "${args[@]}" --json
cp "$work/out" "$work/cached.json"
expect_ok generate_recomputed "$generate" "${args[@]}" --json --no-kv-cache
python3 - "$work/cached.json" "$work/out" <<'PY' || fail "--no-kv-cache output differs from the cached path"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
sys.exit(0 if a["tokens"] == b["tokens"] and len(a["tokens"]) > 0 else 1)
PY
# --chat uses the model directory's Jinja chat template (init copied MiniMind's tokenizer_config.json).
expect_ok generate_chat "$generate" --model "$work/gen" --prompt "hi" --chat --greedy --max-new-tokens 3 --log-level info
grep -q "chat template: the chat_template of $work/gen/tokenizer_config.json" "$work/err" || { fail "--chat did not use the model's template"; cat "$work/err"; }
expect_ok generate_stats "$generate" --model "$work/gen" --prompt "hi" --max-new-tokens 3 --stats --seed 1 --log-level warn
grep -q "decode" "$work/err" || fail "--stats printed no figures"
head -c 3000 /dev/zero | tr '\0' 'a' | sed 's/a/a b /g' >"$work/long.txt"
expect_error generate_prompt_too_long "takes at most" "$generate" --model "$work/gen" --prompt-file "$work/long.txt"
expect_error generate_prompt_fifo "$work/fifo.json: is a FIFO" "$generate" --model "$work/gen" --prompt-file "$work/fifo.json"
expect_error generate_no_tokenizer "no tokenizer.json" "$generate" --model "$work/tiny" --prompt hi
expect_error generate_unknown_flag "--temp" "$generate" --model "$work/gen" --prompt hi --temp 3
expect_error generate_bad_top_p "--top-p: must be in (0, 1] (got 2)" "$generate" --model "$work/gen" --prompt hi --top-p 2
# --weights-dtype: the model's matrices in bf16, int8 or int4 (docs/decode.md "Weight formats").
for w in bf16 int8 int4; do
  expect_ok "generate_weights_$w" "$generate" "${args[@]}" --json --weights-dtype "$w"
  python3 -c 'import json,sys; sys.exit(0 if len(json.load(open(sys.argv[1]))["tokens"]) > 0 else 1)' "$work/out" || fail "--weights-dtype $w generated nothing"
done
expect_error generate_bad_weights "--weights-dtype: unknown weights format 'q4_0'" "$generate" --model "$work/gen" --prompt hi --weights-dtype q4_0
expect_error generate_weights_bf16_compute "are for float32 compute" "$generate" --model "$work/gen" --prompt hi --weights-dtype int8 --dtype bf16
# --kv-dtype bf16: the KV cache in bfloat16 (docs/decode.md "A bfloat16 KV cache").
expect_ok generate_kv_bf16 "$generate" "${args[@]}" --json --kv-dtype bf16 --weights-dtype int8
python3 -c 'import json,sys; sys.exit(0 if len(json.load(open(sys.argv[1]))["tokens"]) > 0 else 1)' "$work/out" || fail "--kv-dtype bf16 generated nothing"
expect_error generate_bad_kv_dtype "--kv-dtype: fp16 not in {fp32,bf16}" "$generate" --model "$work/gen" --prompt hi --kv-dtype fp16
printf '{"text": "the quick brown fox", "domain": "a"}\n{"text": "jumps over the lazy dog", "domain": "b"}\n' >"$work/heldout.jsonl"
expect_ok eval_weights_int8 "$train" eval --model "$work/gen" --data "$work/heldout.jsonl" --weights-dtype int8 --json --log-level warn
grep -q '"perplexity"' "$work/out" || { fail "eval --weights-dtype printed no perplexity"; cat "$work/out"; }
expect_ok bench_decode_int4 "$bench" decode --config "$src/configs/tiny.json" --prompt-tokens 8 --new-tokens 8 --repeat 1 --warmup 0 --json --weights-dtype int4 --log-level warn
grep -q '"weights_dtype":"int4"' "$work/out" || { fail "bench decode did not report its weights format"; cat "$work/out"; }
expect_ok bench_decode_kv_bf16 "$bench" decode --config "$src/configs/tiny.json" --prompt-tokens 8 --new-tokens 8 --repeat 1 --warmup 0 --json --kv-dtype bf16 --log-level warn
grep -q '"kv_dtype":"bf16"' "$work/out" || { fail "bench decode did not report its KV dtype"; cat "$work/out"; }
# Training: bad data is named by file and line; a good run trains and saves a model directory.
printf '{"text": "the quick brown fox"}\n{"text": "jumps over"}\n' >"$work/pre.jsonl"
printf '{"text": "fine"}\n{"text": broken\n' >"$work/bad.jsonl"
expect_ok pretrain_runs "$train" pretrain --from "$work/gen" --data "$work/pre.jsonl" --out "$work/pre" --steps 2 --batch-size 2 --max-seq-len 8 --log-level warn
[ -f "$work/pre/model.safetensors" ] && [ -f "$work/pre/tokenizer.json" ] || fail "pretrain wrote no model"
expect_error pretrain_bad_line "$work/bad.jsonl:2:10: invalid JSON" "$train" pretrain --from "$work/gen" --data "$work/bad.jsonl" --out "$work/x" --steps 2 --batch-size 2 --max-seq-len 8 --log-level warn
expect_error pretrain_missing_data "$work/none.jsonl" "$train" pretrain --from "$work/gen" --data "$work/none.jsonl" --out "$work/x" --steps 1 --log-level warn
expect_error sft_no_conversations "no 'conversations'" "$train" sft --from "$work/gen" --data "$work/pre.jsonl" --out "$work/x" --steps 1 --log-level warn
expect_error pretrain_no_steps "--steps" "$train" pretrain --from "$work/gen" --data "$work/pre.jsonl" --out "$work/x" --log-level warn
# Router controls: the Chronovisor's ticks go to the log and its state to the model directory; a
# Chronovisor at pressure 0 changes no generated token; its settings need --chronovisor.
expect_ok pretrain_chronovisor "$train" pretrain --from "$work/gen" --data "$work/pre.jsonl" --out "$work/cv" --steps 4 --save-every 2 --batch-size 2 --max-seq-len 8 \
  --chronovisor --pressure-scale 0.5 --micro-period 1 --macro-period 2 --log-jsonl "$work/cv.jsonl" --log-level warn
[ "$(grep -c '"chronovisor"' "$work/cv.jsonl")" = 4 ] || fail "pretrain --chronovisor did not log one tick per step"
grep -q '"kind": "chronovisor"' "$work/cv/router_control.json" || fail "pretrain --chronovisor left no router_control.json"
expect_error pressure_without_chronovisor "--pressure-scale requires --chronovisor" "$train" pretrain --from "$work/gen" --data "$work/pre.jsonl" --out "$work/x" --steps 1 --pressure-scale 0.1
expect_error chronovisor_and_aux_free "--chronovisor excludes --aux-free" "$train" pretrain --from "$work/gen" --data "$work/pre.jsonl" --out "$work/x" --steps 1 --chronovisor --aux-free
expect_error chronovisor_periods "--macro-period 2 must be >= --micro-period 5" "$train" pretrain --from "$work/gen" --data "$work/pre.jsonl" --out "$work/x" --steps 1 --chronovisor --micro-period 5 --macro-period 2
expect_error chronovisor_resume_mismatch "trained with router control chronovisor" "$train" pretrain --resume "$work/cv" --from "$work/gen" --data "$work/pre.jsonl" --out "$work/cv2" --steps 4 --save-every 2 --log-level warn
cv_args=(--model "$work/gen" --prompt "The cache 里的 experts" --greedy --max-new-tokens 12 --log-level warn --json)
expect_ok generate_plain_12 "$generate" "${cv_args[@]}"
cp "$work/out" "$work/plain12.json"
expect_ok generate_chronovisor_zero "$generate" "${cv_args[@]}" --chronovisor --pressure-scale 0 --micro-period 1 --macro-period 2 --chronovisor-log "$work/ticks.jsonl"
python3 - "$work/plain12.json" "$work/out" "$work/ticks.jsonl" <<'PY' || fail "generate --chronovisor --pressure-scale 0 changed the output or logged no ticks"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
ticks = [json.loads(line) for line in open(sys.argv[3])]
sys.exit(0 if a["tokens"] == b["tokens"] and b["router_control"]["ticks"] == 12 and len(ticks) == 12 and "lens" in ticks[0]["chronovisor"] else 1)
PY
expect_error chronovisor_log_alone "--chronovisor-log requires --chronovisor" "$generate" --model "$work/gen" --prompt hi --chronovisor-log "$work/x.jsonl"
# chronos-pack: packs the tiny model into a cache that covers every expert once; bad input is one line.
pack=$bin/chronos-pack
printf '{"text": "the quick brown fox jumps over the lazy dog"}\n{"conversations": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello there"}]}\n{"text": "experts that fire together are stored together"}\n' >"$work/calib.jsonl"
: >"$work/empty.jsonl"
# chronos-train intent: trains the intent classifier on the model's activation logs, saves it in the model directory.
cp -r "$work/gen" "$work/intent"
expect_ok intent_runs "$train" intent --model "$work/intent" --data "$work/calib.jsonl" --max-new-tokens 4 --steps 3 --batch-size 2 --val-fraction 0.34 --log-level warn
[ -f "$work/intent/intent_classifier.safetensors" ] && [ -f "$work/intent/intent_classifier.json" ] || fail "intent wrote no classifier"
grep -q "frequency" "$work/out" || fail "intent printed no baseline figures"
expect_error intent_empty_data "$work/empty.jsonl: no prompt records" "$train" intent --model "$work/intent" --data "$work/empty.jsonl"
expect_error intent_missing_model "$work/none: no such model directory" "$train" intent --model "$work/none" --data "$work/calib.jsonl"
expect_error intent_bad_steps "--steps: must be > 0 (got 0)" "$train" intent --model "$work/intent" --data "$work/calib.jsonl" --steps 0
expect_error intent_bad_flag "--val-fraction" "$train" intent --model "$work/intent" --data "$work/calib.jsonl" --val-fraction lots
expect_error intent_bad_record "$work/bad.jsonl:2:10: invalid JSON" "$train" intent --model "$work/intent" --data "$work/bad.jsonl" --log-level warn
expect_ok pack_runs "$pack" --model "$work/gen" --data "$work/calib.jsonl" --cluster-bytes 300K --seq-len 16 --seed 3 --log-level warn
grep -q "modularity" "$work/out" || { fail "pack printed no summary"; cat "$work/out"; }
python3 - "$work/gen/expert_cache" <<'PY' || fail "pack wrote no valid cache"
import json, os, sys
d = sys.argv[1]
m = json.load(open(os.path.join(d, "cluster_manifest.json")))
s = json.load(open(os.path.join(d, "cluster_build_summary.json")))
keys = sorted((e["layer"], e["expert"]) for c in m["clusters"] for e in c["experts"])
ok = keys == [(l, e) for l in range(4) for e in range(4)] and m["dtype"] == "F32"
ok = ok and all(os.path.getsize(os.path.join(d, c["file"])) == c["size_bytes"] for c in m["clusters"])
ok = ok and s["method"] == "louvain" and s["seed"] == 3 and max(s["cluster_bytes"]) <= 300 * 1024 and sum(s["cluster_sizes"]) == 16
sys.exit(0 if ok else 1)
PY
expect_ok pack_bf16_again "$pack" --model "$work/gen" --data "$work/calib.jsonl" --dtype bf16 --log-level warn
grep -q '"dtype": "BF16"' "$work/gen/expert_cache/cluster_manifest.json" || fail "pack --dtype bf16 not applied"
expect_error pack_missing_model "$work/none" "$pack" --model "$work/none" --data "$work/calib.jsonl" --out "$work/y"
expect_error pack_missing_data "$work/none.jsonl" "$pack" --model "$work/gen" --data "$work/none.jsonl" --out "$work/y"
expect_error pack_empty_data "$work/empty.jsonl: no calibration records" "$pack" --model "$work/gen" --data "$work/empty.jsonl" --out "$work/y"
expect_error pack_budget_too_small "at least one expert" "$pack" --model "$work/gen" --data "$work/calib.jsonl" --cluster-bytes 64K --out "$work/y"
expect_error pack_bad_size "--cluster-bytes" "$pack" --model "$work/gen" --data "$work/calib.jsonl" --cluster-bytes lots --out "$work/y"
expect_error pack_percent_size "is a percentage" "$pack" --model "$work/gen" --data "$work/calib.jsonl" --cluster-bytes 25% --out "$work/y"
expect_error pack_foreign_folder "not part of an expert cache" "$pack" --model "$work/gen" --data "$work/calib.jsonl" --out "$work/gen"
[ -d "$work/y" ] && fail "a failed pack left output behind"
# chronos-generate --offload: under `wait` the greedy tokens equal the resident model's.
expect_ok pack_fp32 "$pack" --model "$work/gen" --data "$work/calib.jsonl" --out "$work/cache32" --cluster-bytes 300K --seq-len 16 --log-level warn
offload=(--offload "$work/cache32" --compute-budget 25% --ram-budget 50%)
expect_ok generate_offload_wait "$generate" "${args[@]}" --json "${offload[@]}"
python3 - "$work/cached.json" "$work/out" <<'PY' || fail "--offload --miss-policy wait output differs from the resident model"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
o = b["stats"]["offload"]
sys.exit(0 if a["tokens"] == b["tokens"] and o["uses"] > 0 and o["fallbacks"] == 0 and o["compute_high_water_mb"] > 0 else 1)
PY
# int8 / int4 expert caches: quantized at pack time, in groups of four rows (the tiny widths are
# multiples of four), computed from the quantized bytes.
for q in int8 int4; do
  expect_ok "pack_$q" "$pack" --model "$work/gen" --data "$work/calib.jsonl" --out "$work/cache_$q" --dtype "$q" --seq-len 16 --log-level warn
  grep -q "\"dtype\": \"${q^^}_B32_G4\"" "$work/cache_$q/cluster_manifest.json" || fail "pack --dtype $q not applied"
  expect_ok "generate_offload_$q" "$generate" "${args[@]}" --json --offload "$work/cache_$q" --compute-budget 25% --ram-budget 50%
done
expect_error pack_bad_dtype "--dtype: unknown expert storage 'int3'" "$pack" --model "$work/gen" --data "$work/calib.jsonl" --out "$work/y" --dtype int3
# chronos-train eval: held-out CE per group, resident and from the int8 / int4 caches, in one run.
printf '{"text": "the lazy dog", "domain": "en"}\n{"text": "fox and dog", "domain": "en"}\n{"text": "der Hund", "domain": "de"}\n' >"$work/heldout.jsonl"
expect_ok eval_runs "$train" eval --model "$work/gen" --data "$work/heldout.jsonl" --expert-cache "$work/cache_int8" --expert-cache "$work/cache_int4" --json --log-level warn
python3 - "$work/out" <<'PY' || fail "eval JSON lacks a run, a group or a finite cross-entropy"
import json, math, sys
o = json.load(open(sys.argv[1]))["runs"]
ok = set(o) == {"resident", "cache_int8 (int8)", "cache_int4 (int4)"}
ok = ok and all(set(r["groups"]) == {"en", "de"} and r["total"]["records"] == 3 and math.isfinite(r["total"]["cross_entropy"]) for r in o.values())
sys.exit(0 if ok else 1)
PY
expect_error eval_missing_data "$work/none.jsonl: evaluation data not found" "$train" eval --model "$work/gen" --data "$work/none.jsonl"
expect_error eval_bad_record "$work/bad.jsonl:2" "$train" eval --model "$work/gen" --data "$work/bad.jsonl" --log-level warn
expect_error eval_not_a_cache "not an expert cache" "$train" eval --model "$work/gen" --data "$work/heldout.jsonl" --expert-cache "$work/none"
expect_ok generate_offload_fallback "$generate" --model "$work/gen" --prompt "hi" --max-new-tokens 5 --stats "${offload[@]}" --miss-policy fallback --log-level warn
grep -q "hit rate" "$work/err" || fail "--offload --stats printed no hit rate"
# --predict: prediction only moves experts earlier; under wait the greedy tokens do not change.
expect_ok generate_predict_none "$generate" "${args[@]}" --json "${offload[@]}" --predict none
cp "$work/out" "$work/predict_none.json"
expect_ok generate_predict_both "$generate" "${args[@]}" --json "${offload[@]}" --predict both --metrics-jsonl "$work/metrics.jsonl"
python3 - "$work/predict_none.json" "$work/out" "$work/metrics.jsonl" <<'PY' || fail "--predict none and both differ, or --metrics-jsonl is wrong"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
lines = [json.loads(l) for l in open(sys.argv[3])]
keys = {"step", "hits", "warm", "cold", "fallbacks", "stall_ms", "ssd_bytes", "copy_bytes", "prefetch_lead_ms", "lookahead_recall", "lookahead_precision"}
ok = a["tokens"] == b["tokens"] and len(lines) == len(b["tokens"]) and all(keys <= set(l) for l in lines)
ok = ok and [l["step"] for l in lines] == list(range(len(lines))) and b["stats"]["offload"]["predict"] == "both"
sys.exit(0 if ok else 1)
PY
expect_ok generate_predict_stats "$generate" --model "$work/gen" --prompt "hi" --max-new-tokens 5 --stats "${offload[@]}" --predict lookahead --log-level warn
grep -q "lookahead@t+1 recall" "$work/err" || fail "--offload --stats printed no lookahead recall"
# chronos-bench offload: every mode in one run; under wait every fp32 mode reproduces the resident tokens
# (the int8 / int4 ones compute with other weights).
expect_ok bench_offload "$bench" offload --model "$work/gen" --prompts "$work/calib.jsonl" --max-new-tokens 4 --json --log-level warn
python3 - "$work/out" <<'PY' || fail "bench offload JSON lacks a mode or a key, or wait changed the tokens"
import json, sys
o = json.load(open(sys.argv[1]))
modes = o["modes"]
keys = {"tokens_per_s", "hit_rate", "stall_ms_per_token", "ssd_mb_per_token"}
fp32 = {"resident", "reactive", "lookahead", "lookahead_intent"}
ok = set(modes) == fp32 | {"lookahead_intent_int8", "lookahead_intent_int4"} and all(keys <= set(m) for m in modes.values())
ok = ok and all(modes[m]["same_tokens_as_resident"] == 1.0 for m in fp32) and modes["resident"]["hit_rate"] == 1.0
ok = ok and "lookahead_recall_t1" in o and o["setup"]["prompts"] == 3 and len(o["layer_ahead_recall"]) == 2
ok = ok and o["best_predictive_mode"] in modes and set(o["dd_direct_mb_per_s"]) == {"expert_cache", "expert_cache_int8", "expert_cache_int4"}
sys.exit(0 if ok else 1)
PY
# Under fallback it teacher-forces the resident tokens; a model without a cache is packed first.
mkdir -p "$work/benchpack" && cp "$work/gen"/*.json "$work/gen/model.safetensors" "$work/benchpack/"
expect_ok bench_offload_fallback "$bench" offload --model "$work/benchpack" --prompts "$work/calib.jsonl" --max-new-tokens 4 --miss-policy fallback --modes reactive --log-level warn
grep -q "greedy agreement" "$work/out" && grep -q "| reactive |" "$work/out" || fail "bench offload --miss-policy fallback printed no agreement table"
[ -f "$work/benchpack/expert_cache/cluster_manifest.json" ] || fail "bench offload did not pack the missing cache"
expect_error bench_offload_bad_mode "--modes" "$bench" offload --model "$work/gen" --prompts "$work/calib.jsonl" --modes fast
expect_error bench_offload_missing_prompts "$work/none.jsonl" "$bench" offload --model "$work/gen" --prompts "$work/none.jsonl"
expect_error bench_offload_bad_prompts "$work/bad.jsonl:2" "$bench" offload --model "$work/gen" --prompts "$work/bad.jsonl" --log-level warn
expect_error offload_bad_predict "--predict" "$generate" --model "$work/gen" --prompt hi --offload "$work/cache32" --predict sometimes
expect_error offload_missing_cache "$work/none/cluster_manifest.json" "$generate" --model "$work/gen" --prompt hi --offload "$work/none"
expect_error offload_bad_budget "--ram-budget" "$generate" --model "$work/gen" --prompt hi --offload "$work/cache32" --ram-budget lots
expect_error offload_tiny_budget "compute" "$generate" --model "$work/gen" --prompt hi --offload "$work/cache32" --compute-budget 1K
expect_error offload_bad_policy "sometimes" "$generate" --model "$work/gen" --prompt hi --offload "$work/cache32" --miss-policy sometimes
sed 's/"num_experts": [0-9]*/"num_experts": 8/' "$work/window8.json" >"$work/experts8.json"
expect_ok init_experts8 "$train" init --config "$work/experts8.json" --out "$work/gen8" --tokenizer "$minimind" --log-level warn
expect_ok pack_experts8 "$pack" --model "$work/gen8" --data "$work/calib.jsonl" --out "$work/cache8" --seq-len 16 --log-level warn
expect_error offload_other_model "num_experts is 8" "$generate" --model "$work/gen" --prompt hi --offload "$work/cache8"

# Hostile input, one case per class (tests/fuzz covers the parsers more widely).
# A cache packed from another checkpoint of the same shapes is refused by its fingerprint.
expect_ok init_same_shapes "$train" init --config "$work/window8.json" --out "$work/gen_b" --tokenizer "$minimind" --seed 2 --log-level warn
expect_error offload_other_weights "packed from another checkpoint" "$generate" --model "$work/gen_b" --prompt hi --offload "$work/cache32"
# Nesting is bounded at parse time: 100k levels of '[' give one line, not a stack overflow.
python3 -c 'print("{\"hidden_size\": " + "[" * 100000 + "]" * 100000 + "}")' >"$work/deep.json"
expect_error deep_config "nests deeper than 128" "$train" init --config "$work/deep.json" --out "$work/x"
python3 -c 'print("{\"text\": " + "[" * 100000 + "]" * 100000 + "}")' >"$work/deep.jsonl"
expect_error deep_record "$work/deep.jsonl:1:" "$train" pretrain --from "$work/gen" --data "$work/deep.jsonl" --out "$work/x" --steps 2 --batch-size 2 --max-seq-len 8 --log-level warn
# Shard names are confined to the model folder.
mkdir -p "$work/escape" && cp "$work/gen/config.json" "$work/gen/tokenizer.json" "$work/escape/"
printf '{"weight_map": {"model.embed_tokens.weight": "../gen/model.safetensors"}}\n' >"$work/escape/model.safetensors.index.json"
expect_error escaping_shard "not a path inside the model directory" "$generate" --model "$work/escape" --prompt hi
# Nonsense flag values are refused with one short line (not replaced by a default, not 300 digits).
stage=(pretrain --from "$work/gen" --data "$work/pre.jsonl" --out "$work/x" --log-level warn)
expect_error negative_batch "--batch-size: must be > 0" "$train" "${stage[@]}" --steps 2 --batch-size -3
expect_error zero_steps "--steps: must be > 0" "$train" "${stage[@]}" --steps 0
expect_error huge_steps "--steps: must be at most" "$train" "${stage[@]}" --steps 1e30
expect_error negative_lr "--lr: must be > 0" "$train" "${stage[@]}" --steps 2 --lr -1
expect_error negative_clip "--grad-clip" "$train" "${stage[@]}" --steps 2 --grad-clip -1
expect_error seq_beyond_context "beyond the model's context of 512" "$train" "${stage[@]}" --steps 2 --max-seq-len 100000
expect_error infinite_temperature "--temperature: must be a finite number" "$generate" --model "$work/gen" --prompt hi --temperature inf
expect_error thousands_of_threads "--threads" "$generate" --model "$work/gen" --prompt hi --threads 5000
[ "$(wc -c <"$work/err")" -lt 200 ] || fail "thousands_of_threads: the message is $(wc -c <"$work/err") bytes long"
expect_error negative_ssd_ms "--ssd-ms" "$generate" --model "$work/gen" --prompt hi --offload "$work/cache32" --ssd-ms -1
[ "$(wc -c <"$work/err")" -lt 200 ] || fail "negative_ssd_ms: the message is $(wc -c <"$work/err") bytes long"
expect_error budget_beyond_cache "is more than the" "$generate" --model "$work/gen" --prompt hi --offload "$work/cache32" --ram-budget 1T
# The simulated SSD from the environment (read by the tools, not the library).
expect_ok sim_ssd_env env CHRONOS_SIM_SSD_MS=2.5 CHRONOS_SIM_SSD_MBPS=800 "$generate" --model "$work/gen" --prompt hi --max-new-tokens 2 --greedy --offload "$work/cache32" --log-level info
grep -q "simulated SSD 2.5 ms + 800.0 MB/s" "$work/err" || fail "sim_ssd_env: the environment's throttle was not applied"
expect_error sim_ssd_env_bad "CHRONOS_SIM_SSD_MS must be a non-negative number (got 'fast')" env CHRONOS_SIM_SSD_MS=fast "$generate" --model "$work/gen" --prompt hi --offload "$work/cache32"
# The message names the real cause: a missing model folder is not a missing tokenizer.
expect_error missing_model "$work/nowhere: no such model directory" "$generate" --model "$work/nowhere" --prompt hi
# Writes are checked: a log or an output on a full disk fails the run.
if [ -w /dev/full ]; then
  expect_error log_full_disk "/dev/full: write failed" "$train" "${stage[@]}" --steps 2 --batch-size 2 --max-seq-len 8 --log-every 1 --log-jsonl /dev/full
  expect_error stdout_full_disk "cannot write to standard output" sh -c "exec \"\$0\" \"\$@\" >/dev/full" "$generate" --model "$work/gen" --prompt hi --max-new-tokens 2 --greedy --json --log-level warn
fi

# chronos-compare on the tiny preset: both sides trained and measured, the result written; bad stages
# and missing files are one line. chronos-tune refuses what it cannot run before asking Optuna anything.
compare=$bin/chronos-compare tune=$bin/chronos-tune
cmp=(--config "$src/configs/tiny.json" --data "$work/pre.jsonl" --tokenizer "$minimind" --heldout "$work/pre.jsonl" --prompts "$work/pre.jsonl"
     --steps 2 --batch-size 2 --max-seq-len 8 --max-new-tokens 4 --eval-seq-len 16 --log-level warn)
expect_ok compare_runs "$compare" "${cmp[@]}" --out "$work/cmp" --json
grep -q '"identical_data_order":true' "$work/out" && [ -f "$work/cmp/compare.json" ] && [ -f "$work/cmp/compare.md" ] || fail "compare wrote no result"
grep -q '"offload_tokens_per_s"' "$work/cmp/compare.json" || fail "compare.json lacks offload_tokens_per_s"
expect_error compare_stage_without_data "give its data with --stage-data sft=FILE" "$compare" "${cmp[@]}" --out "$work/refused" --stages pretrain,sft
expect_error compare_unknown_stage "pretrian" "$compare" "${cmp[@]}" --out "$work/refused" --stages pretrian
expect_error compare_bad_stage_steps "--stage-steps sft=many: not a number" "$compare" "${cmp[@]}" --out "$work/refused" --stages pretrain,sft \
  --stage-data "sft=$work/pre.jsonl" --stage-steps sft=many
expect_error compare_missing_heldout "$work/none.jsonl: the heldout file was not found" "$compare" --config "$src/configs/tiny.json" \
  --data "$work/pre.jsonl" --tokenizer "$minimind" --heldout "$work/none.jsonl" --prompts "$work/pre.jsonl" --steps 2 --out "$work/refused"
expect_error tune_no_study "no study.db" "$tune" --out "$work/nostudy" --apply-best knee
expect_error tune_bad_space "unknown parameter 'bogus'" "$tune" "${cmp[@]}" --out "$work/refused" --space lambda_balance,bogus
expect_error tune_bad_objective "--objective" "$tune" "${cmp[@]}" --out "$work/refused" --objective speed
expect_error tune_without_data "give --data" "$tune" --config "$src/configs/tiny.json" --out "$work/refused"
[ -e "$work/refused" ] && fail "a refused compare or tune left output behind"

truncate -s -4096 "$work/cache32/cluster_000.ctsr"
expect_error offload_truncated "cluster_000.ctsr" "$generate" --model "$work/gen" --prompt hi --offload "$work/cache32"
printf '{"hidden_size": 64,,}' >"$work/gen/config.json"
expect_error generate_bad_config "$work/gen/config.json:1:" "$generate" --model "$work/gen" --prompt hi

echo "$passed passed, $failures failed"
[ $failures -eq 0 ]
