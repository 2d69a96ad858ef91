#include "chronos/train/lm_stages.h"

#include <algorithm>

#include <ATen/ATen.h>

#include "chronos/core/error.h"
#include "chronos/core/log.h"
#include "chronos/routing/router_control.h"
#include "chronos/train/global_batch.h"
#include "chronos/train/sequence_log_probs.h"

namespace chronos {
namespace {

// Share of routed slots per expert, per layer, over the real tokens: [L, E].
// In a data-parallel step, the rank's share: the ranks' values add up to the global batch's load.
at::Tensor expert_load(const at::Tensor& counts) { return (counts / sum_over_ranks(counts.sum(1, true)).clamp_min(1)).detach(); }

}  // namespace

MicroStep language_model_step(ChronosForCausalLMImpl& model, const Batch& batch, const RouterLossWeights& weights,
                              ChronosForCausalLMImpl* reference, const RouterBias* router_bias) {
  const c10::Device device = model.lm_head_weight().device();
  ForwardOptions forward;
  forward.attention_mask = batch.attention_mask.to(device);
  const at::Tensor ids = batch.input_ids.to(device);
  ForwardOptions trained = forward;
  trained.router_bias = router_bias;
  const ForwardOutput out = model.forward(ids, trained);

  RouterLossInputs inputs = RouterLossInputs::from_forward(out, model.config().num_experts_per_tok, forward.attention_mask);
  if (reference && weights.router_anchor > 0) {
    at::NoGradGuard no_grad;
    ForwardOptions plain;
    plain.attention_mask = forward.attention_mask;
    inputs.reference_router_probs = mean_router_probs(reference->forward(ids, plain).router_probs);
  }
  const RouterLossTerms terms = chronos_router_losses(inputs, weights);
  // A batch whose labels are all ignored has no CE (B9): its loss is the regulariser alone.
  const at::Tensor ce = causal_lm_loss(out.logits, batch.labels.to(device));
  MicroStep step;
  step.loss = ce + terms.total;
  step.tokens = batch.tokens();
  step.routing_counts = expert_choice_counts(out.selected, forward.attention_mask, model.config().num_experts);
  step.log = {{"ce", ce}, {"balance", terms.balance}, {"temporal", terms.temporal}, {"locality", terms.locality},
              {"la", terms.lookahead}, {"la_topk", terms.lookahead_topk}, {"la_union", terms.lookahead_union}};
  if (step.routing_counts.defined()) step.log["expert_load"] = expert_load(step.routing_counts);
  if (terms.anchor_active) step.log["anchor"] = terms.anchor;
  return step;
}

// ---- pretrain ----

PretrainStage::PretrainStage(const Tokenizer& tokenizer, const EncoderOptions& encoder, LmStageOptions options)
    : options_(std::move(options)),
      encoder_(tokenizer, encoder),
      records_(options_.data_path, options_.seed, /*shuffle=*/true, options_.skip_bad_lines),
      packed_(records_, encoder_),
      vocab_size_(static_cast<int64_t>(tokenizer.vocab_size())) {}

MicroStep PretrainStage::micro_step(ChronosForCausalLMImpl& model) {
  std::vector<Example> examples;
  for (int64_t i = 0; i < options_.batch_size; ++i) examples.push_back(packed_.next());
  return language_model_step(model, make_batch(examples, 0), options_.weights, nullptr, router_bias_);
}

int64_t PretrainStage::micro_batches_per_epoch() {
  log::info(cat(options_.data_path, ": counting tokens to size the epochs"));
  RecordStream pass(options_.data_path, options_.seed, /*shuffle=*/false, options_.skip_bad_lines);
  int64_t tokens = 0;
  for (size_t i = 0; i < pass.records(); ++i)
    tokens += static_cast<int64_t>(pass.next([&](const nlohmann::json& r, const std::string& w) { return encoder_.pretrain_tokens(r, w); }).size());
  const int64_t per_batch = encoder_.options().max_seq_len * options_.batch_size;
  // A data-parallel rank packs only its share of the records.
  const auto share = static_cast<double>(records_.records_per_epoch()) / static_cast<double>(records_.records());
  return std::max<int64_t>(1, static_cast<int64_t>(static_cast<double>(tokens) * share) / per_batch);
}

nlohmann::json PretrainStage::data_state() const {
  nlohmann::json state = cursor_to_json(records_.cursor());
  state["carry"] = packed_.carry();
  return state;
}

void PretrainStage::restore_data_state(const nlohmann::json& state) {
  records_.seek(cursor_from_json(state));
  std::vector<int64_t> carry;
  if (const auto it = state.find("carry"); it != state.end()) {
    const bool ids = it->is_array() && std::all_of(it->begin(), it->end(), [&](const nlohmann::json& id) {
      return id.is_number_integer() && id.get<int64_t>() >= 0 && id.get<int64_t>() < vocab_size_;
    });
    if (!ids) throw FormatError(cat("trainer_state.json: data.carry must be a list of token ids below ", vocab_size_));
    carry = it->get<std::vector<int64_t>>();
  }
  packed_.set_carry(std::move(carry));
}

// ---- SFT ----

SftStage::SftStage(const Tokenizer& tokenizer, const EncoderOptions& encoder, LmStageOptions options,
                   std::shared_ptr<ChronosForCausalLMImpl> reference)
    : options_(std::move(options)),
      encoder_(tokenizer, encoder),
      records_(options_.data_path, options_.seed, /*shuffle=*/true, options_.skip_bad_lines),
      reference_(std::move(reference)) {}

MicroStep SftStage::micro_step(ChronosForCausalLMImpl& model) {
  const std::vector<Example> examples = next_supervised_batch(records_, encoder_, options_.batch_size, without_targets_);
  return language_model_step(model, make_batch(examples, 0), options_.weights, reference_.get(), router_bias_);
}

int64_t SftStage::micro_batches_per_epoch() {
  return (static_cast<int64_t>(records_.records_per_epoch()) + options_.batch_size - 1) / options_.batch_size;
}

nlohmann::json SftStage::data_state() const {
  nlohmann::json state = cursor_to_json(records_.cursor());
  state["without_targets"] = without_targets_;
  return state;
}

void SftStage::restore_data_state(const nlohmann::json& state) {
  records_.seek(cursor_from_json(state));
  without_targets_ = optional_state_count(state, "without_targets");
}

}  // namespace chronos
