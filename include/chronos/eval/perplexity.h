// Held-out cross-entropy of a language model, teacher-forced, per group of records (e.g. a corpus's
// domains): each JSONL record's text is scored on its own as [bos] text [eos] (as pretraining encodes
// it), cut to max_seq_len tokens, every predicted token counted once. The experts may come from an
// ExpertSource (an expert store over a quantized cache), so one report compares storages. Each group
// also counts its expert choices per layer, so a report shows how each domain routes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "chronos/model/expert_source.h"
#include "chronos/model/router_bias.h"
#include "chronos/tokenizer/tokenizer.h"

namespace chronos {

class ChronosForCausalLMImpl;

struct PerplexityOptions {
  int64_t max_seq_len = 256;      // tokens per record scored, [bos] and [eos] included
  int64_t batch_size = 8;         // records per forward
  int64_t max_records = 0;        // the first N records (0: all)
  std::string group_key = "domain";  // records are grouped by this string field ("": one group)
  ExpertSource* expert_source = nullptr;  // null: the model's own experts
  const RouterBias* router_bias = nullptr;  // a bias on the routers (a trained router control's); null: none
  // Throws ConfigError naming the field.
  void validate() const;
};

struct GroupLoss {
  std::string group;       // the group_key value ("" when the record has none)
  int64_t records = 0;
  int64_t tokens = 0;      // tokens predicted
  double nll_sum = 0;      // summed negative log-likelihood (nats)
  // Per MoE layer, how many of the group's top-k routing slots went to each expert ([L][E], every
  // real token of its records; empty for a model without MoE layers): how a domain routes.
  std::vector<std::vector<double>> expert_counts;
  double cross_entropy() const;  // nll_sum / tokens (NaN when no token)
  double perplexity() const;     // exp(cross_entropy())
};

struct PerplexityReport {
  std::vector<GroupLoss> groups;  // sorted by group name
  GroupLoss total;                // all records
};

// Scores the records of `jsonl_path`. Throws IoError for a missing file and FormatError "FILE:LINE:
// ..." for a record that is not JSON, has no text or a non-string group field.
PerplexityReport evaluate_perplexity(ChronosForCausalLMImpl& model, const Tokenizer& tokenizer, const std::string& jsonl_path,
                                     const PerplexityOptions& options = {});

}  // namespace chronos
