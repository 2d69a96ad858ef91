#!/usr/bin/env bash
# End-to-end checks of the tokenizer front-ends: chronos-train tokenizer, chronos-tokenize and
# chronos-bench tokenizer. Good input works; bad input gives one stderr line naming the culprit and
# a non-zero exit. Usage: tokenizer_cli_test.sh TRAIN TOKENIZE BENCH SOURCE_DIR
set -u
train=$1 tokenize=$2 bench=$3 src=$4
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
. "$(dirname "$0")/cli_lib.sh"

# A small corpus in both record shapes: plain text and conversations.
for i in $(seq 1 300); do
  printf '{"text": "the router prefetches expert %d into the cache; 缓存命中 %d 次. it'"'"'s fast!"}\n' "$i" "$i"
  printf '{"conversations": [{"role": "user", "content": "what is expert %d?"}, {"role": "assistant", "content": "a sparse MoE layer"}]}\n' "$i"
done >"$work/corpus.jsonl"
printf '{"text": "fine"}\n{"text": broken}\n' >"$work/bad.jsonl"

expect_ok train_tokenizer "$train" tokenizer --data "$work/corpus.jsonl" --vocab-size 400 --out "$work/tok" --log-level warn
[ -f "$work/tok/tokenizer.json" ] && [ -f "$work/tok/tokenizer_config.json" ] || fail "train wrote no tokenizer files"
grep -q "vocab 400 (36 added + 256 bytes + 108 merges)" "$work/out" || { fail "train summary"; cat "$work/out"; }
grep -q '"chat_template"' "$work/tok/tokenizer_config.json" || fail "tokenizer_config.json has no chat_template"

expect_error train_malformed_line "$work/bad.jsonl:2:" "$train" tokenizer --data "$work/bad.jsonl" --vocab-size 400 --out "$work/x"
expect_error train_small_vocab "--vocab-size" "$train" tokenizer --data "$work/corpus.jsonl" --vocab-size 100 --out "$work/x"
expect_error train_missing_data "$work/none.jsonl" "$train" tokenizer --data "$work/none.jsonl" --out "$work/x"
expect_error train_no_text "no record has text" "$train" tokenizer --data "$work/corpus.jsonl" --text-field body --out "$work/x" --log-level warn
[ -d "$work/x" ] && fail "a failed run left output behind"

# Encode -> decode gives the input back, line for line.
printf 'the router prefetches\n<|im_start|>user\n缓存 😀 e\xcc\x81\n\n  spaces  \n' >"$work/text.txt"
"$tokenize" --tokenizer "$work/tok" <"$work/text.txt" >"$work/ids.txt" 2>"$work/err" || fail "tokenize encode"
"$tokenize" --tokenizer "$work/tok/tokenizer.json" --decode <"$work/ids.txt" >"$work/back.txt" 2>"$work/err" || fail "tokenize decode"
cmp -s "$work/text.txt" "$work/back.txt" && passed=$((passed + 1)) || fail "tokenize round trip"
[ "$(sed -n 2p "$work/ids.txt" | cut -d' ' -f1)" = "1" ] || fail "<|im_start|> is not id 1"
echo "1 2 3" | "$tokenize" --tokenizer "$work/tok" --decode --skip-special >"$work/out" && [ "$(cat "$work/out")" = "" ] || fail "skip-special"
echo "hello" | "$tokenize" --tokenizer "$work/tok" --json >"$work/out" && grep -q '"ids":\[' "$work/out" || fail "tokenize --json"
expect_error tokenize_bad_id "stdin:2: 'x' is not a token id" bash -c "printf '1\n1 x\n' | '$tokenize' --tokenizer '$work/tok' --decode"
expect_error tokenize_unknown_id "token id 400 is not in the vocabulary" bash -c "echo 400 | '$tokenize' --tokenizer '$work/tok' --decode"
expect_error tokenize_missing "$work/none.json" "$tokenize" --tokenizer "$work/none.json"
printf '{"model": {"type": "WordPiece", "vocab": {}}}' >"$work/wordpiece.json"
expect_error tokenize_unsupported "model.type \"WordPiece\" is not supported" "$tokenize" --tokenizer "$work/wordpiece.json"

expect_ok bench_json "$bench" tokenizer --tokenizer "$work/tok" --text "$work/text.txt" --repeat 2 --warmup 1 --json --log-level warn
for key in mb_per_s tokens_per_s tokens bytes chars_per_token; do
  grep -q "\"$key\"" "$work/out" || fail "bench_json has no $key"
done
expect_error bench_missing_text "$work/none.txt" "$bench" tokenizer --tokenizer "$work/tok" --text "$work/none.txt"

# MiniMind's tokenizer (tests/data/minimind): the ids Hugging Face tokenizers gives.
minimind="$src/tests/data/minimind"
printf '<|im_start|>assistant\n' | "$tokenize" --tokenizer "$minimind" >"$work/out" 2>&1
[ "$(cat "$work/out")" = "1 1388 570 811" ] && passed=$((passed + 1)) || fail "MiniMind ids: $(cat "$work/out")"

# Chat templates: the Jinja chat_template of the tokenizer_config.json beside the tokenizer.
printf '[{"role": "user", "content": "what is lookahead prefetch"}, {"role": "assistant", "content": "router cache expert"}]' >"$work/chat.json"
printf '<|im_start|>user\nwhat is lookahead prefetch<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nrouter cache expert<|im_end|>\n' >"$work/expected"
"$tokenize" --tokenizer "$minimind/tokenizer.json" --chat "$work/chat.json" >"$work/out" 2>"$work/err" || fail "tokenize --chat: $(cat "$work/err")"
cmp -s "$work/out" "$work/expected" && passed=$((passed + 1)) || fail "chat rendering: $(cat "$work/out")"
"$tokenize" --tokenizer "$minimind" --chat "$work/chat.json" --add-generation-prompt --ids >"$work/out" 2>"$work/err" || fail "tokenize --chat --ids"
[ "$(cut -d' ' -f1 "$work/out")" = "1" ] && [ "$(awk '{print $NF}' "$work/out")" != "2" ] && passed=$((passed + 1)) || fail "chat ids: $(cat "$work/out")"
mkdir -p "$work/mixtral"
cp "$minimind/tokenizer.json" "$work/mixtral/"
python3 -c 'import json,sys; json.dump({"bos_token": "<|im_start|>", "eos_token": "<|im_end|>", "chat_template": open(sys.argv[1]).read()}, open(sys.argv[2], "w"))' \
  "$src/tests/data/chat/mixtral_instruct.jinja" "$work/mixtral/tokenizer_config.json"
printf '[{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]' >"$work/twice.json"
expect_error chat_refused "the template refused its input: Conversation roles must alternate" "$tokenize" --tokenizer "$work/mixtral" --chat "$work/twice.json"
printf '{"messages": 3}' >"$work/notalist.json"
expect_error chat_not_a_list "$work/notalist.json: \"messages\" must be a list" "$tokenize" --tokenizer "$minimind" --chat "$work/notalist.json"
printf '[{"role": "user",' >"$work/badchat.json"
expect_error chat_bad_json "$work/badchat.json:1:" "$tokenize" --tokenizer "$minimind" --chat "$work/badchat.json"
printf '{"chat_template": "{%% if x %%}never closed"}' >"$work/mixtral/tokenizer_config.json"
expect_error chat_bad_template "tokenizer_config.json chat_template:1: {% if %} is never closed" "$tokenize" --tokenizer "$work/mixtral" --chat "$work/chat.json"

echo "$passed passed, $failures failed"
[ $failures -eq 0 ]
