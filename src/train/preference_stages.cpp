#include "chronos/train/preference_stages.h"

#include <ATen/ATen.h>

#include "chronos/core/error.h"
#include "chronos/routing/router_control.h"
#include "chronos/train/sequence_log_probs.h"

namespace chronos {

PreferenceStage::PreferenceStage(const Tokenizer& tokenizer, const EncoderOptions& encoder, PreferenceStageOptions options,
                                 std::shared_ptr<ChronosForCausalLMImpl> reference)
    : options_(std::move(options)),
      encoder_(tokenizer, encoder),
      records_(options_.data.data_path, options_.data.seed, /*shuffle=*/true, options_.data.skip_bad_lines),
      reference_(std::move(reference)) {
  if (!options_.orpo && !reference_) throw InvalidArgument("dpo needs the frozen reference model (the starting model)");
  options_.dpo.validate();
  options_.orpo_config.validate();
}

MicroStep PreferenceStage::micro_step(ChronosForCausalLMImpl& model) {
  // Rows 0..B-1 chosen, B..2B-1 rejected, padded together so one forward scores both.
  std::vector<Example> rows(static_cast<size_t>(2 * options_.data.batch_size));
  const int64_t B = options_.data.batch_size;
  int64_t misses_in_a_row = 0;
  for (int64_t i = 0; i < B;) {
    PreferenceExample pair = records_.next([&](const nlohmann::json& r, const std::string& w) { return encoder_.preference(r, w); });
    if (!pair.chosen.has_targets() || !pair.rejected.has_targets()) {  // an answer truncated away (B9)
      if (++misses_in_a_row >= static_cast<int64_t>(records_.records_per_epoch()))
        throw FormatError(cat(options_.data.data_path, ": no pair keeps both answers within max_seq_len ", encoder_.options().max_seq_len));
      continue;
    }
    misses_in_a_row = 0;
    rows[static_cast<size_t>(i)] = std::move(pair.chosen);
    rows[static_cast<size_t>(B + i)] = std::move(pair.rejected);
    ++i;
  }
  const Batch batch = make_batch(rows, 0);
  const c10::Device device = model.lm_head_weight().device();
  const at::Tensor ids = batch.input_ids.to(device), labels = batch.labels.to(device);
  const at::Tensor scored = labels >= 0;  // the answers' tokens
  ForwardOptions forward;
  forward.attention_mask = batch.attention_mask.to(device);
  ForwardOptions trained = forward;
  trained.router_bias = router_bias_;
  const ForwardOutput out = model.forward(ids, trained);
  const SequenceLogProbs policy = sequence_log_probs(out.logits, ids, scored);

  RouterLossInputs inputs = RouterLossInputs::from_forward(out, model.config().num_experts_per_tok, forward.attention_mask);
  at::Tensor reference_sum;
  if (reference_) {
    at::NoGradGuard no_grad;
    const ForwardOutput ref = reference_->forward(ids, forward);
    reference_sum = sequence_log_probs(ref.logits, ids, scored).sum;
    inputs.reference_router_probs = mean_router_probs(ref.router_probs);
  }
  const RouterLossTerms terms = chronos_router_losses(inputs, options_.data.weights);

  MicroStep step;
  step.tokens = batch.tokens();
  step.routing_counts = expert_choice_counts(out.selected, forward.attention_mask, model.config().num_experts);
  step.log = {{"balance", terms.balance}, {"la", terms.lookahead}, {"temporal", terms.temporal}};
  if (terms.anchor_active) step.log["anchor"] = terms.anchor;
  if (options_.orpo) {
    const OrpoOutput o = orpo_loss(policy.mean.narrow(0, 0, B), policy.mean.narrow(0, B, B), options_.orpo_config);
    step.loss = o.loss + terms.total;
    step.log.insert({{"nll", o.nll}, {"or", o.odds_ratio_loss}, {"log_odds_ratio", o.log_odds_ratio}, {"accuracy", o.accuracy}});
  } else {
    const DpoOutput d = dpo_loss(policy.sum.narrow(0, 0, B), policy.sum.narrow(0, B, B), reference_sum.narrow(0, 0, B),
                                 reference_sum.narrow(0, B, B), options_.dpo);
    step.loss = d.loss + terms.total;
    step.log.insert({{"dpo", d.loss}, {"reward_margin", d.reward_margin}, {"reward_accuracy", d.reward_accuracy}});
  }
  return step;
}

int64_t PreferenceStage::micro_batches_per_epoch() {
  return (static_cast<int64_t>(records_.records_per_epoch()) + options_.data.batch_size - 1) / options_.data.batch_size;
}

nlohmann::json PreferenceStage::data_state() const { return cursor_to_json(records_.cursor()); }

void PreferenceStage::restore_data_state(const nlohmann::json& state) { records_.seek(cursor_from_json(state)); }

}  // namespace chronos
