// chronos-train tokenizer: a byte-level BPE vocabulary from a JSONL corpus, written as an HF
// tokenizer.json + tokenizer_config.json pair with the Chronos added tokens and chat template.

#include <filesystem>
#include <iostream>
#include <memory>

#include "chronos-train/modes.h"
#include "chronos/core/error.h"
#include "chronos/core/log.h"
#include "chronos/io/atomic_file.h"
#include "chronos/tokenizer/bpe_trainer.h"
#include "chronos/tokenizer/special_tokens.h"
#include "chronos/tokenizer/tokenizer_config.h"
#include "chronos/tokenizer/training_corpus.h"
#include "common/environment.h"
#include "common/flag_checks.h"
#include "common/progress_line.h"

namespace fs = std::filesystem;

namespace chronos::train_cli {
namespace {

struct TokenizerFlags {
  std::string data;
  std::string out;
  int64_t vocab_size = 6400;
  int64_t min_frequency = 1;
  std::string text_field;
  int64_t max_lines = 0;
  std::string log_level;
};

int run_tokenizer(const TokenizerFlags& flags) {
  tools::apply_log_level_from_env();
  if (!flags.log_level.empty()) log::set_level(log::parse_level(flags.log_level));
  const Stopwatch total;

  BpeTrainerConfig config;
  config.vocab_size = flags.vocab_size;
  config.min_frequency = flags.min_frequency;
  config.added_tokens = chronos_added_tokens();
  BpeTrainer trainer(config);  // validates the config before any reading

  TrainingCorpusOptions corpus;
  corpus.text_field = flags.text_field;
  corpus.max_lines = flags.max_lines;
  const TrainingCorpusStats stats = read_training_corpus(flags.data, corpus, [&](std::string_view text) { trainer.add_text(text); });
  if (stats.texts == 0)
    throw InvalidArgument(cat(flags.data, ": no record has text (", stats.records, " records; fields tried: ",
                              flags.text_field.empty() ? "text|content|story|passage|document|article, pairs, conversations|messages"
                                                       : flags.text_field,
                              ")"));
  const double read_seconds = total.seconds();
  // Logged once the corpus has read cleanly, so that a bad corpus gives its one error line alone.
  log::info(cat("read ", flags.data, ": ", stats.texts, " texts (", stats.bytes / 1e6, " MB, ", stats.skipped,
                " records without text) in ", read_seconds, " s, ", trainer.distinct_words(), " distinct words; training vocab_size ",
                flags.vocab_size, ", min_frequency ", flags.min_frequency));

  tools::ProgressLine progress;
  const Tokenizer tokenizer = trainer.train([&](int64_t done, int64_t target) { progress.update("merges", done, target); });
  progress.done();
  const int64_t merges = static_cast<int64_t>(tokenizer.merge_count());
  const int64_t wanted = flags.vocab_size - static_cast<int64_t>(config.added_tokens.size()) - 256;
  if (merges < wanted)
    log::warn(cat("only ", merges, " of ", wanted, " merges: no pair left that occurs ", std::max<int64_t>(flags.min_frequency, 1),
                  " times or more; the vocabulary has ", tokenizer.vocab_size(), " tokens"));

  make_directories(flags.out);
  const std::string tokenizer_path = (fs::path(flags.out) / "tokenizer.json").string();
  const std::string config_path = (fs::path(flags.out) / "tokenizer_config.json").string();
  tokenizer.save(tokenizer_path);
  TokenizerConfig::chronos_default().save(config_path, tokenizer);

  std::cout << "trained tokenizer: vocab " << tokenizer.vocab_size() << " (" << config.added_tokens.size() << " added + 256 bytes + "
            << merges << " merges) from " << stats.texts << " texts, " << stats.bytes / 1e6 << " MB, in " << total.seconds()
            << " s\n  " << tokenizer_path << "\n  " << config_path << "\n";
  return 0;
}

}  // namespace

tools::Subcommand add_tokenizer_mode(CLI::App& app) {
  auto flags = std::make_shared<TokenizerFlags>();
  CLI::App* cmd = app.add_subcommand("tokenizer", "Train a byte-level BPE tokenizer (HF tokenizer.json) on a JSONL corpus");
  cmd->add_option("--data", flags->data, "JSONL corpus, one JSON object per line")->required();
  cmd->add_option("--out", flags->out, "Output folder for tokenizer.json and tokenizer_config.json")->required();
  cmd->add_option("--vocab-size", flags->vocab_size, "Vocabulary size: 36 added tokens + 256 bytes + merges")
      ->capture_default_str()
      ->check(tools::number_in(292, 1 << 24, "in [292, 16777216]"));
  cmd->add_option("--min-frequency", flags->min_frequency, "Never merge a pair seen fewer times")->capture_default_str()->check(tools::non_negative());
  cmd->add_option("--text-field", flags->text_field, "Field holding the text (default: detect text|content|..., then conversations)");
  cmd->add_option("--max-lines", flags->max_lines, "Read only the first N records (0: all)")->capture_default_str()->check(tools::non_negative());
  cmd->add_option("--log-level", flags->log_level, "trace, debug, info, warn, error or off (default: CHRONOS_LOG_LEVEL or info)");
  return {cmd, [flags] { return run_tokenizer(*flags); }};
}

}  // namespace chronos::train_cli
