// chronos-bench weights: what each weight format (chronos/model/weight_format.h) costs in quality,
// against float32 in one run: held-out cross-entropy and perplexity, teacher-forced, and greedy
// agreement with float32's tokens over --new-tokens from prompts cut from the held-out records.
#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <memory>
#include <vector>

#include "chronos-bench/bench_common.h"
#include "chronos-bench/modes.h"
#include "chronos/core/error.h"
#include "chronos/eval/perplexity.h"
#include "chronos/eval/token_agreement.h"
#include "chronos/model/flops.h"
#include "chronos/model/pretrained.h"
#include "chronos/runtime/generation.h"
#include "chronos/tokenizer/tokenizer.h"
#include "chronos/train/jsonl.h"
#include "common/flag_checks.h"

namespace chronos::bench {
namespace {

namespace fs = std::filesystem;

struct WeightsFlags {
  std::string model, data;
  std::vector<std::string> formats = {"bf16", "int8", "int4"};
  int64_t prompts = 8;
  int64_t prompt_tokens = 32;
  int64_t new_tokens = 256;
  PerplexityOptions perplexity;
  bool json = false;
  tools::RuntimeFlags runtime;
};

// The first `count` records' texts, cut to their first `tokens` ids (records shorter than 4 ids are skipped).
std::vector<std::vector<int64_t>> cut_prompts(const std::string& path, const Tokenizer& tokenizer, int64_t count, int64_t tokens) {
  const JsonlFile file(path);
  std::vector<std::vector<int64_t>> prompts;
  for (size_t i = 0; i < file.size() && static_cast<int64_t>(prompts.size()) < count; ++i) {
    const nlohmann::json record = file.parse(i);
    if (!record.contains("text") || !record["text"].is_string()) throw FormatError(cat(file.where(i), ": no string field 'text'"));
    const std::vector<TokenId> encoded = tokenizer.encode(record["text"].get<std::string>(), true, true);
    std::vector<int64_t> ids(encoded.begin(), encoded.end());
    if (static_cast<int64_t>(ids.size()) < 4) continue;
    if (static_cast<int64_t>(ids.size()) > tokens) ids.resize(static_cast<size_t>(tokens));
    prompts.push_back(std::move(ids));
  }
  if (prompts.empty()) throw InvalidArgument(cat(path, ": no record has 4 tokens or more to prompt with"));
  return prompts;
}

struct FormatResult {
  std::string format;
  double bytes = 0;
  PerplexityReport perplexity;
  TokenAgreement agreement;
  std::vector<std::vector<int64_t>> generations;
};

int run_weights(const WeightsFlags& flags) {
  const tools::Runtime rt = tools::apply_runtime_flags(flags.runtime);
  flags.perplexity.validate();
  require_model_directory(flags.model);
  const std::string tokenizer_path = (fs::path(flags.model) / "tokenizer.json").string();
  if (!fs::is_regular_file(tokenizer_path)) throw IoError(cat(flags.model, ": no tokenizer.json in the model directory"));
  const Tokenizer tokenizer = Tokenizer::from_file(tokenizer_path);
  const std::vector<std::vector<int64_t>> prompts = cut_prompts(flags.data, tokenizer, flags.prompts, flags.prompt_tokens);
  std::vector<std::string> formats = {"fp32"};
  for (const std::string& f : flags.formats) formats.push_back(to_string(*tools::parse_weights_dtype(f)));

  std::vector<FormatResult> results;
  for (const std::string& format : formats) {
    LoadOptions load = tools::load_options(rt, at::kFloat);
    load.weights_format = parse_weight_format(format);
    ChronosForCausalLM model = load_pretrained(flags.model, load);
    FormatResult r;
    r.format = format;
    r.bytes = decode_weight_bytes(*model);
    r.perplexity = evaluate_perplexity(*model, tokenizer, flags.data, flags.perplexity);
    GenerationOptions options;
    options.sampling.greedy = true;
    for (const std::vector<int64_t>& prompt : prompts) {
      options.max_new_tokens = std::min<int64_t>(flags.new_tokens, model->config().max_position_embeddings - static_cast<int64_t>(prompt.size()) - 1);
      r.generations.push_back(generate(*model, prompt, options).tokens);
    }
    if (!results.empty())
      for (size_t i = 0; i < prompts.size(); ++i) r.agreement += token_agreement(results.front().generations[i], r.generations[i]);
    if (!flags.json)
      std::cerr << "weights: " << format << " done (" << r.perplexity.total.tokens << " tokens scored, " << prompts.size() << " prompts)\n";
    results.push_back(std::move(r));
  }

  const double reference = results.front().perplexity.total.perplexity();
  nlohmann::json rows = nlohmann::json::array();
  for (const FormatResult& r : results) {
    const double ppl = r.perplexity.total.perplexity();
    rows.push_back({{"weights_dtype", r.format},
                    {"weight_mb_per_token", r.bytes / 1e6},
                    {"cross_entropy", r.perplexity.total.cross_entropy()},
                    {"perplexity", ppl},
                    {"perplexity_change", ppl / reference - 1},
                    {"greedy_agreement", r.agreement.rate()},
                    {"greedy_common_prefix", static_cast<double>(r.agreement.common_prefix) / static_cast<double>(prompts.size())},
                    {"greedy_tokens_compared", r.agreement.compared}});
  }
  if (flags.json) {
    std::cout << nlohmann::json{{"mode", "weights"},
                                {"model", flags.model},
                                {"data", flags.data},
                                {"scored_tokens", results.front().perplexity.total.tokens},
                                {"prompts", prompts.size()},
                                {"new_tokens", flags.new_tokens},
                                {"formats", rows}}
                     .dump()
              << std::endl;
    return 0;
  }
  std::cout << "weights  " << flags.model << "  held-out " << flags.data << " (" << results.front().perplexity.total.tokens
            << " tokens), greedy over " << flags.new_tokens << " tokens from " << prompts.size() << " prompts\n"
            << "  format  MB/token  cross-entropy  perplexity  vs fp32   greedy agreement  common prefix\n";
  for (const auto& row : rows)
    std::cout << std::fixed << "  " << std::left << std::setw(6) << row["weights_dtype"].get<std::string>() << std::right << std::setprecision(2)
              << std::setw(10) << row["weight_mb_per_token"].get<double>() << std::setprecision(4) << std::setw(15)
              << row["cross_entropy"].get<double>() << std::setprecision(3) << std::setw(12) << row["perplexity"].get<double>()
              << std::setprecision(2) << std::setw(8) << 100 * row["perplexity_change"].get<double>() << "%" << std::setw(18)
              << 100 * row["greedy_agreement"].get<double>() << "%" << std::setprecision(1) << std::setw(15)
              << row["greedy_common_prefix"].get<double>() << "\n";
  return 0;
}

}  // namespace

tools::Subcommand add_weights_mode(CLI::App& app) {
  auto flags = std::make_shared<WeightsFlags>();
  CLI::App* cmd = app.add_subcommand("weights", "Quality of each weight format against fp32: held-out perplexity and greedy agreement");
  cmd->add_option("--model", flags->model, "Model directory (with tokenizer.json)")->required();
  cmd->add_option("--data", flags->data, "Held-out JSONL ({\"text\": ...} records): scored, and cut into prompts")->required();
  cmd->add_option("--formats", flags->formats, "Formats compared with fp32")->capture_default_str();
  cmd->add_option("--prompts", flags->prompts, "Prompts for the greedy agreement (the first records)")->capture_default_str()->check(tools::positive(1 << 20));
  cmd->add_option("--prompt-tokens", flags->prompt_tokens, "Tokens per prompt")->capture_default_str()->check(tools::positive(1 << 20));
  cmd->add_option("--new-tokens", flags->new_tokens, "Greedy tokens compared per prompt")->capture_default_str()->check(tools::positive(1 << 20));
  cmd->add_option("--max-seq-len", flags->perplexity.max_seq_len, "Tokens scored per record")->capture_default_str()->check(tools::positive(1 << 24));
  cmd->add_option("--max-records", flags->perplexity.max_records, "Score the first N records (0: all)")->capture_default_str()->check(tools::non_negative(1e12));
  cmd->add_flag("--json", flags->json, "Print one JSON object");
  tools::add_runtime_flags(*cmd, flags->runtime, /*with_dtype=*/false);
  return {cmd, [flags] { return run_weights(*flags); }};
}

}  // namespace chronos::bench
