#include "chronos/eval/perplexity.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include "chronos/core/error.h"
#include "chronos/model/causal_lm.h"
#include "chronos/routing/router_control.h"
#include "chronos/train/data.h"
#include "chronos/train/jsonl.h"

namespace chronos {

void PerplexityOptions::validate() const {
  if (max_seq_len < 2) throw ConfigError(cat("perplexity.max_seq_len must be >= 2 (got ", max_seq_len, ")"));
  if (batch_size < 1) throw ConfigError(cat("perplexity.batch_size must be >= 1 (got ", batch_size, ")"));
  if (max_records < 0) throw ConfigError(cat("perplexity.max_records must be >= 0 (got ", max_records, ")"));
}

double GroupLoss::cross_entropy() const {
  return tokens > 0 ? nll_sum / static_cast<double>(tokens) : std::numeric_limits<double>::quiet_NaN();
}

double GroupLoss::perplexity() const { return std::exp(cross_entropy()); }

namespace {

struct Scored {
  std::vector<int64_t> ids;
  std::string group;
};

struct BatchScores {
  std::vector<double> nll;  // per sequence
  at::Tensor expert_counts; // [B, L, E] double on the CPU; undefined without MoE layers
};

// Summed NLL of each sequence's tokens 1..n-1 given the ones before, one forward for the batch.
BatchScores score_batch(ChronosForCausalLMImpl& model, const std::vector<Scored>& batch, const PerplexityOptions& scoring) {
  int64_t longest = 0;
  for (const Scored& s : batch) longest = std::max<int64_t>(longest, static_cast<int64_t>(s.ids.size()));
  const int64_t B = static_cast<int64_t>(batch.size());
  at::Tensor ids = at::zeros({B, longest}, at::kLong), mask = at::zeros({B, longest}, at::kLong);
  for (int64_t b = 0; b < B; ++b) {
    const auto& row = batch[static_cast<size_t>(b)].ids;
    const int64_t n = static_cast<int64_t>(row.size());
    ids[b].narrow(0, 0, n).copy_(at::tensor(row, at::kLong));
    mask[b].narrow(0, 0, n).fill_(1);
  }
  const c10::Device device = model.lm_head_weight().device();
  ForwardOptions options;
  options.attention_mask = mask.to(device);
  options.expert_source = scoring.expert_source;
  options.router_bias = scoring.router_bias;
  const ForwardOutput out = model.forward(ids.to(device), options);
  const at::Tensor logits = out.logits.to(at::kFloat);  // [B,S,V]
  const at::Tensor logp = at::log_softmax(logits.narrow(1, 0, longest - 1), -1);
  const at::Tensor target = ids.narrow(1, 1, longest - 1).to(device);
  const at::Tensor token_nll = -logp.gather(2, target.unsqueeze(2)).squeeze(2) * mask.narrow(1, 1, longest - 1).to(device, at::kFloat);
  const at::Tensor sums = token_nll.sum(1).to(at::kCPU, at::kDouble).contiguous();
  BatchScores scores;
  scores.nll.assign(sums.data_ptr<double>(), sums.data_ptr<double>() + B);
  const at::Tensor counts = expert_choice_counts_per_sequence(out.selected, options.attention_mask, model.config().num_experts);
  if (counts.defined()) scores.expert_counts = counts.to(at::kCPU, at::kDouble).contiguous();
  return scores;
}

void add_counts(std::vector<std::vector<double>>& into, const at::Tensor& counts) {  // counts [L, E]
  if (into.empty()) into.assign(static_cast<size_t>(counts.size(0)), std::vector<double>(static_cast<size_t>(counts.size(1)), 0.0));
  const auto c = counts.accessor<double, 2>();
  for (int64_t l = 0; l < counts.size(0); ++l)
    for (int64_t e = 0; e < counts.size(1); ++e) into[static_cast<size_t>(l)][static_cast<size_t>(e)] += c[l][e];
}

}  // namespace

PerplexityReport evaluate_perplexity(ChronosForCausalLMImpl& model, const Tokenizer& tokenizer, const std::string& jsonl_path,
                                     const PerplexityOptions& options) {
  options.validate();
  const JsonlFile file(jsonl_path);
  EncoderOptions encoder_options;
  encoder_options.max_seq_len = std::min(options.max_seq_len, model.config().max_position_embeddings);
  encoder_options.bos_id = model.config().bos_token_id;
  encoder_options.eos_id = model.config().eos_token_id;
  const ExampleEncoder encoder(tokenizer, encoder_options);
  size_t records = file.size();
  if (options.max_records > 0) records = std::min(records, static_cast<size_t>(options.max_records));

  std::map<std::string, GroupLoss> groups;
  PerplexityReport report;
  at::NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  std::vector<Scored> batch;
  const auto flush = [&] {
    if (batch.empty()) return;
    const BatchScores scores = score_batch(model, batch, options);
    for (size_t i = 0; i < batch.size(); ++i) {
      const int64_t tokens = static_cast<int64_t>(batch[i].ids.size()) - 1;
      for (GroupLoss* g : {&groups[batch[i].group], &report.total}) {
        ++g->records;
        g->tokens += tokens;
        g->nll_sum += scores.nll[i];
        if (scores.expert_counts.defined()) add_counts(g->expert_counts, scores.expert_counts[static_cast<int64_t>(i)]);
      }
    }
    batch.clear();
  };
  for (size_t r = 0; r < records; ++r) {
    const nlohmann::json record = file.parse(r);
    Scored s;
    s.ids = encoder.pretrain_tokens(record, file.where(r));
    if (static_cast<int64_t>(s.ids.size()) > encoder_options.max_seq_len) s.ids.resize(static_cast<size_t>(encoder_options.max_seq_len));
    if (!options.group_key.empty() && record.contains(options.group_key)) {
      const nlohmann::json& g = record[options.group_key];
      if (!g.is_string()) throw FormatError(cat(file.where(r), ": field \"", options.group_key, "\" must be a string"));
      s.group = g.get<std::string>();
    }
    batch.push_back(std::move(s));
    if (static_cast<int64_t>(batch.size()) == options.batch_size) flush();
  }
  flush();
  model.train(was_training);
  for (auto& [name, loss] : groups) {
    loss.group = name;
    report.groups.push_back(loss);
  }
  return report;
}

}  // namespace chronos
