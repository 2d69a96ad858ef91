// chronos-bench tokenizer: single-threaded encode speed of a text file, as one text or (--jsonl) record
// by record. The first pass runs on an empty word cache (reported as cold); the median of the repeats
// after the warm-up is the figure.
#include <nlohmann/json.hpp>

#include <iomanip>
#include <iostream>
#include <memory>
#include <string_view>

#include "chronos-bench/bench_common.h"
#include "chronos-bench/modes.h"
#include "chronos/core/error.h"
#include "chronos/core/timing.h"
#include "chronos/io/json_text.h"
#include "chronos/io/regular_file.h"
#include "chronos/tokenizer/tokenizer.h"

namespace chronos::bench {
namespace {

struct TokenizerFlags {
  std::string tokenizer;
  std::string text;
  bool jsonl = false;
  CommonFlags common;
};

// The texts to encode: the whole file, or with --jsonl each line's string (or its "text" field).
std::vector<std::string> read_texts(const TokenizerFlags& flags) {
  std::string whole = read_regular_file(flags.text);
  if (!flags.jsonl) return {std::move(whole)};
  std::vector<std::string> texts;
  size_t from = 0, line = 0;
  while (from < whole.size()) {
    size_t end = whole.find('\n', from);
    if (end == std::string::npos) end = whole.size();
    ++line;
    const std::string_view record(whole.data() + from, end - from);
    if (record.find_first_not_of(" \t\r") != std::string_view::npos) {
      const nlohmann::json value = parse_json(record, flags.text, line);
      if (value.is_string()) {
        texts.push_back(value.get<std::string>());
      } else if (value.is_object() && value.contains("text") && value["text"].is_string()) {
        texts.push_back(value["text"].get<std::string>());
      } else {
        throw FormatError(cat(flags.text, ":", line, ": expected a string or an object with a \"text\" string"));
      }
    }
    from = end + 1;
  }
  return texts;
}

int64_t count_characters(const std::string& text) {
  int64_t n = 0;
  for (unsigned char c : text) n += (c & 0xC0) != 0x80;  // every byte but continuation bytes starts one
  return n;
}

int run_tokenizer(const TokenizerFlags& flags) {
  tools::apply_runtime_flags(flags.common.runtime);
  const Tokenizer tokenizer = Tokenizer::from_file(flags.tokenizer);
  const std::vector<std::string> texts = read_texts(flags);
  size_t bytes = 0;
  int64_t characters = 0;
  for (const std::string& t : texts) {
    bytes += t.size();
    characters += count_characters(t);
  }
  if (bytes == 0) throw InvalidArgument(cat(flags.text, ": there is no text to encode"));
  const double mb = static_cast<double>(bytes) / 1e6;

  std::vector<TokenId> ids;
  ids.reserve(bytes / 2);
  const auto encode_all = [&] {
    ids.clear();
    for (const std::string& t : texts) tokenizer.encode_into(t, ids);
  };
  Stopwatch cold;
  encode_all();
  const double cold_seconds = cold.seconds();
  const size_t tokens = ids.size();
  for (int i = 0; i < flags.common.warmup; ++i) encode_all();
  std::vector<double> seconds;
  for (int i = 0; i < flags.common.repeat; ++i) {
    Stopwatch watch;
    encode_all();
    seconds.push_back(watch.seconds());
    if (ids.size() != tokens) throw Error("tokenizer bench: encoding the same text twice gave different lengths");
  }
  const double s = median(seconds);
  // A byte-level tokenizer gives its input back exactly; others may not (Llama's decoder drops the
  // space its normalizer prepends), so there the round trip is only reported.
  bool round_trip = true;
  for (const std::string& t : texts) round_trip = round_trip && tokenizer.decode(tokenizer.encode(t)) == t;
  const double chars_per_token = static_cast<double>(characters) / static_cast<double>(tokens);
  const std::string text = flags.text;

  const nlohmann::json result = {{"mode", "tokenizer"},
                                 {"tokenizer", flags.tokenizer},
                                 {"text", flags.text},
                                 {"bytes", bytes},
                                 {"records", texts.size()},
                                 {"tokens", tokens},
                                 {"chars_per_token", chars_per_token},
                                 {"bytes_per_token", static_cast<double>(bytes) / static_cast<double>(tokens)},
                                 {"mb_per_s", mb / s},
                                 {"tokens_per_s", static_cast<double>(tokens) / s},
                                 {"cold_mb_per_s", mb / cold_seconds},
                                 {"round_trip", round_trip},
                                 {"threads", 1},
                                 {"repeat", flags.common.repeat}};
  if (flags.common.json) {
    std::cout << result.dump() << std::endl;
  } else {
    std::cout << std::fixed << std::setprecision(2) << "tokenizer  " << flags.tokenizer << " on " << flags.text << " (" << mb
              << " MB, 1 thread)\n"
              << "  mb_per_s        " << mb / s << "  (median of " << flags.common.repeat << ", word cache warm)\n"
              << "  cold mb_per_s   " << mb / cold_seconds << "  (first pass, empty word cache)\n"
              << "  tokens_per_s    " << static_cast<double>(tokens) / s << "\n"
              << "  tokens          " << tokens << "  (" << chars_per_token << " characters/token, "
              << static_cast<double>(bytes) / static_cast<double>(tokens) << " bytes/token)\n"
              << "  round trip      " << (round_trip ? "exact" : "DIFFERENT") << "\n";
  }
  if (!round_trip && tokenizer.decodes_by_token())
    throw Error(cat("tokenizer bench: decode(encode(", flags.text, ")) differs from the text"));
  return 0;
}

}  // namespace

tools::Subcommand add_tokenizer_mode(CLI::App& app) {
  auto flags = std::make_shared<TokenizerFlags>();
  CLI::App* cmd = app.add_subcommand("tokenizer", "Single-threaded tokenizer encode speed (MB/s) on a text file");
  cmd->add_option("--tokenizer", flags->tokenizer, "tokenizer.json, or a folder holding one")->required();
  cmd->add_option("--text", flags->text, "Text file to encode as a whole (or record by record with --jsonl)")->required();
  cmd->add_flag("--jsonl", flags->jsonl, "The text file is JSONL: each line a string or a {\"text\": ...} record, encoded on its own");
  add_common_flags(*cmd, flags->common);
  return {cmd, [flags] { return run_tokenizer(*flags); }};
}

}  // namespace chronos::bench
