#include "common/compare_flags.h"

#include <map>
#include <sstream>

#include "chronos/core/error.h"
#include "common/flag_checks.h"

namespace chronos::tools {
namespace {

// "sft=FILE" -> {"sft", "FILE"}, the key a stage name.
std::map<std::string, std::string> stage_map(const std::vector<std::string>& items, const char* flag) {
  std::map<std::string, std::string> out;
  for (const std::string& item : items) {
    const size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == item.size())
      throw InvalidArgument(cat(flag, ": expected STAGE=VALUE (got \"", item, "\")"));
    const std::string stage = item.substr(0, eq);
    parse_train_stage(stage);  // names the valid stages when it is not one
    out[stage] = item.substr(eq + 1);
  }
  return out;
}

std::vector<CompareStage> parse_stages(const CompareFlags& f) {
  const std::map<std::string, std::string> data = stage_map(f.stage_data, "--stage-data");
  const std::map<std::string, std::string> steps = stage_map(f.stage_steps, "--stage-steps");
  std::vector<CompareStage> stages;
  std::stringstream in(f.stages);
  for (std::string name; std::getline(in, name, ',');) {
    CompareStage s;
    s.stage = parse_train_stage(name);
    if (s.stage == TrainStage::Pretrain) {
      s.data = data.count(name) ? data.at(name) : f.data;
      s.steps = f.steps;
      s.batch_size = f.batch_size;
      s.max_seq_len = f.max_seq_len;
      s.lr = f.lr;
    } else {
      if (!data.count(name)) throw InvalidArgument(cat("--stages names ", name, ": give its data with --stage-data ", name, "=FILE"));
      s.data = data.at(name);
      s.steps = std::max<int64_t>(1, f.steps / 6);
      s.max_seq_len = f.max_seq_len;
    }
    if (steps.count(name)) {
      const std::string& text = steps.at(name);
      size_t used = 0;
      try {
        s.steps = std::stoll(text, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used == 0 || used != text.size()) throw InvalidArgument(cat("--stage-steps ", name, "=", text, ": not a number"));
    }
    stages.push_back(s);
  }
  if (stages.empty()) throw InvalidArgument("--stages: no stage given");
  return stages;
}

}  // namespace

void add_compare_flags(CLI::App& app, CompareFlags& f, bool required) {
  app.add_option("--config", f.config, "Chronos model config.json (chronos-compare derives the vanilla model from it)")->required(required);
  app.add_option("--data", f.data, "Pretraining corpus (JSONL text records)")->required(required);
  app.add_option("--tokenizer", f.tokenizer, "tokenizer.json of the models")->required(required);
  app.add_option("--heldout", f.measure.heldout, "Held-out JSONL text records (perplexity, per \"domain\" where they carry one)")->required(required);
  app.add_option("--prompts", f.measure.prompts, "JSONL prompts for decoding: {\"text\": ...} or chat records")->required(required);
  app.add_option("--out", f.out, "Output folder")->required(required);
  app.add_option("--steps", f.steps, "Pretraining steps (later stages default to a sixth of it)")->required(required)->check(positive(1e9));
  app.add_option("--stages", f.stages, "Comma-separated stages in order: pretrain, sft, dpo, orpo, grpo")->capture_default_str();
  app.add_option("--stage-data", f.stage_data, "STAGE=FILE: the data of a stage after pretraining (repeat per stage)");
  app.add_option("--stage-steps", f.stage_steps, "STAGE=N: the steps of a stage (repeat per stage)");
  app.add_option("--batch-size", f.batch_size, "Pretraining sequences per micro-batch")->capture_default_str()->check(positive(1 << 16));
  app.add_option("--max-seq-len", f.max_seq_len, "Tokens per training sequence")->capture_default_str()->check(positive(1 << 24));
  app.add_option("--lr", f.lr, "Pretraining peak learning rate (later stages take their defaults)")->capture_default_str()->check(positive(10));
  app.add_option("--seed", f.seed, "Seed of the initialisation, data order and dropout (both models)")->capture_default_str();
  app.add_option("--grad-accum", f.grad_accum, "Micro-batches per optimizer step")->capture_default_str()->check(positive(1 << 16));
  app.add_option("--log-every", f.log_every, "Optimizer steps between log lines (0: a twentieth of the stage)")->capture_default_str()->check(non_negative(1e9));
  app.add_option("--lambda-balance", f.lambdas.balance, "Load-balance weight (both models)")->check(non_negative(1e6));
  app.add_option("--lambda-temporal", f.lambdas.temporal, "Temporal smoothness weight (Chronos)")->check(non_negative(1e6));
  app.add_option("--lambda-locality", f.lambdas.locality, "Router locality weight (Chronos)")->check(non_negative(1e6));
  app.add_option("--lambda-lookahead", f.lambdas.lookahead, "Lookahead soft-CE weight (Chronos)")->check(non_negative(1e6));
  app.add_option("--eval-records", f.measure.eval_records, "Held-out records scored (0: all)")->capture_default_str()->check(non_negative(1e9));
  app.add_option("--eval-seq-len", f.measure.eval_seq_len, "Tokens per held-out record scored")->capture_default_str()->check(number_in(2, 1 << 24, "in [2, 2^24]"));
  app.add_option("--num-prompts", f.measure.num_prompts, "Prompts decoded (0: all)")->capture_default_str()->check(non_negative(1e9));
  app.add_option("--max-prompt-tokens", f.measure.max_prompt_tokens, "Keep the last this many tokens of each prompt")->capture_default_str()->check(positive(1 << 24));
  app.add_option("--max-new-tokens", f.measure.max_new_tokens, "Greedy tokens per prompt")->capture_default_str()->check(number_in(2, 1 << 24, "in [2, 2^24]"));
  app.add_option("--ram-budget", f.measure.ram_budget, "Offloaded decode: RAM tier, a share of all routed experts (25%) or a size (512M)")->capture_default_str();
  app.add_option("--compute-budget", f.measure.compute_budget, "Offloaded decode: compute tier, as --ram-budget")->capture_default_str();
  app.add_option("--ssd-ms", f.measure.throttle.latency_ms, "Offloaded decode: simulated SSD latency per read in ms (0: the real disk)")->capture_default_str()->check(non_negative(1e5));
  app.add_option("--ssd-mbps", f.measure.throttle.mbps, "Offloaded decode: simulated SSD bandwidth in MB/s (0: the real disk)")->capture_default_str()->check(non_negative(1e7));
  app.add_option("--io-threads", f.measure.io_threads, "Offloaded decode: SSD reader threads")->capture_default_str()->check(number_in(1, 64, "in [1, 64]"));
}

CompareOptions compare_options(const CompareFlags& f) {
  CompareOptions o;
  o.config = ModelConfig::load(f.config);
  o.tokenizer = f.tokenizer;
  o.stages = parse_stages(f);
  o.out_dir = f.out;
  o.seed = f.seed;
  o.grad_accum = f.grad_accum;
  o.lambdas = f.lambdas;
  o.log_every = f.log_every;
  o.measure = f.measure;
  return o;
}

}  // namespace chronos::tools
