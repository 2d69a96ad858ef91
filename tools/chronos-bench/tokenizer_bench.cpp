// chronos-bench tokenizer: single-threaded encode speed of a whole text file. The first pass runs on
// an empty word cache (reported as cold); the median of the repeats after the warm-up is the figure.
#include <nlohmann/json.hpp>

#include <iomanip>
#include <iostream>
#include <memory>

#include "chronos-bench/bench_common.h"
#include "chronos-bench/modes.h"
#include "chronos/core/error.h"
#include "chronos/core/timing.h"
#include "chronos/io/regular_file.h"
#include "chronos/tokenizer/tokenizer.h"

namespace chronos::bench {
namespace {

struct TokenizerFlags {
  std::string tokenizer;
  std::string text;
  CommonFlags common;
};

std::string read_text(const std::string& path) { return read_regular_file(path); }

int64_t count_characters(const std::string& text) {
  int64_t n = 0;
  for (unsigned char c : text) n += (c & 0xC0) != 0x80;  // every byte but continuation bytes starts one
  return n;
}

int run_tokenizer(const TokenizerFlags& flags) {
  tools::apply_runtime_flags(flags.common.runtime);
  const Tokenizer tokenizer = Tokenizer::from_file(flags.tokenizer);
  const std::string text = read_text(flags.text);
  if (text.empty()) throw InvalidArgument(cat(flags.text, ": the text file is empty"));
  const double mb = static_cast<double>(text.size()) / 1e6;

  std::vector<TokenId> ids;
  ids.reserve(text.size() / 2);
  Stopwatch cold;
  tokenizer.encode_into(text, ids);
  const double cold_seconds = cold.seconds();
  const size_t tokens = ids.size();
  for (int i = 0; i < flags.common.warmup; ++i) {
    ids.clear();
    tokenizer.encode_into(text, ids);
  }
  std::vector<double> seconds;
  for (int i = 0; i < flags.common.repeat; ++i) {
    ids.clear();
    Stopwatch watch;
    tokenizer.encode_into(text, ids);
    seconds.push_back(watch.seconds());
    if (ids.size() != tokens) throw Error("tokenizer bench: encoding the same text twice gave different lengths");
  }
  const double s = median(seconds);
  const bool round_trip = tokenizer.decode(ids) == text;
  const double chars_per_token = static_cast<double>(count_characters(text)) / static_cast<double>(tokens);

  const nlohmann::json result = {{"mode", "tokenizer"},
                                 {"tokenizer", flags.tokenizer},
                                 {"text", flags.text},
                                 {"bytes", text.size()},
                                 {"tokens", tokens},
                                 {"chars_per_token", chars_per_token},
                                 {"bytes_per_token", static_cast<double>(text.size()) / static_cast<double>(tokens)},
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
              << static_cast<double>(text.size()) / static_cast<double>(tokens) << " bytes/token)\n"
              << "  round trip      " << (round_trip ? "exact" : "DIFFERENT") << "\n";
  }
  if (!round_trip) throw Error(cat("tokenizer bench: decode(encode(", flags.text, ")) differs from the text"));
  return 0;
}

}  // namespace

tools::Subcommand add_tokenizer_mode(CLI::App& app) {
  auto flags = std::make_shared<TokenizerFlags>();
  CLI::App* cmd = app.add_subcommand("tokenizer", "Single-threaded tokenizer encode speed (MB/s) on a text file");
  cmd->add_option("--tokenizer", flags->tokenizer, "tokenizer.json, or a folder holding one")->required();
  cmd->add_option("--text", flags->text, "Text file to encode as a whole")->required();
  add_common_flags(*cmd, flags->common);
  return {cmd, [flags] { return run_tokenizer(*flags); }};
}

}  // namespace chronos::bench
