// libFuzzer target: any byte string given as one line of a JSONL data file goes through every
// record reader (pretraining text, SFT conversations, preference pairs, GRPO prompts, intent
// prompts, tokenizer-training text). Each must either return a well-formed result (ids inside the
// vocabulary, labels aligned with ids, within --max-seq-len) or raise a chronos::Error.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "chronos/core/error.h"
#include "chronos/io/json_text.h"
#include "chronos/tokenizer/training_corpus.h"
#include "chronos/train/data.h"
#include "chronos/train/intent_data.h"

#ifndef CHRONOS_SOURCE_DIR
#error "CHRONOS_SOURCE_DIR must name the source tree (the fuzzer reads tests/data/minimind/tokenizer.json)"
#endif

namespace {

constexpr int64_t kMaxSeqLen = 48;

const chronos::Tokenizer& tokenizer() {
  static const chronos::Tokenizer t = chronos::Tokenizer::from_file(CHRONOS_SOURCE_DIR "/tests/data/minimind/tokenizer.json");
  return t;
}

void check_ids(const std::vector<int64_t>& ids) {
  for (const int64_t id : ids)
    if (id < 0 || id >= tokenizer().vocab_size()) std::abort();
}

void check_example(const chronos::Example& e) {
  if (e.ids.size() != e.labels.size() || static_cast<int64_t>(e.ids.size()) > kMaxSeqLen) std::abort();
  check_ids(e.ids);
  for (const int64_t label : e.labels)
    if (label != -100 && (label < 0 || label >= tokenizer().vocab_size())) std::abort();
}

template <typename Body>
void attempt(Body body) {
  try {
    body();
  } catch (const chronos::Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const chronos::EncoderOptions options{kMaxSeqLen, 1, 2};
  static const chronos::ExampleEncoder encoder(tokenizer(), options);
  nlohmann::json record;
  try {
    record = chronos::parse_json(std::string_view(reinterpret_cast<const char*>(data), size), "data.jsonl", 7);
  } catch (const chronos::Error&) {
    return 0;
  }
  const std::string where = "data.jsonl:7";
  attempt([&] { check_ids(encoder.pretrain_tokens(record, where)); });
  attempt([&] { check_example(encoder.sft(record, where)); });
  attempt([&] {
    const chronos::PreferenceExample pair = encoder.preference(record, where);
    check_example(pair.chosen);
    check_example(pair.rejected);
  });
  attempt([&] {
    const auto prompt = encoder.prompt(record, where);
    check_ids(prompt.first);
    if (static_cast<int64_t>(prompt.first.size()) > kMaxSeqLen) std::abort();
  });
  attempt([&] {
    const std::vector<int64_t> ids = chronos::intent_prompt_ids(tokenizer(), record, where, kMaxSeqLen);
    check_ids(ids);
    if (static_cast<int64_t>(ids.size()) > kMaxSeqLen) std::abort();
  });
  attempt([&] { (void)chronos::record_text(record); });
  return 0;
}
