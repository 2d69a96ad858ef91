#include "chronos/train/stage_recipe.h"

#include "chronos/core/error.h"
#include "chronos/train/lm_stages.h"
#include "chronos/train/preference_stages.h"
#include "chronos/train/rl_stages.h"

namespace chronos {

const StageDefaults& stage_defaults(TrainStage stage) {
  // {lr, batch_size, grad_accum, max_seq_len, router_anchor, fallback_mask_prob, beta, temperature}
  static const StageDefaults kPretrain{5e-4, 16, 8, 512, 0.00, 0.08, 0.0, 0.0};
  static const StageDefaults kSft{5e-5, 2, 1, 128, 0.01, 0.04, 0.0, 0.0};
  static const StageDefaults kDpo{5e-6, 2, 1, 128, 0.10, 0.02, 0.1, 0.0};
  static const StageDefaults kOrpo{5e-6, 2, 1, 128, 0.10, 0.02, 0.1, 0.0};
  static const StageDefaults kGrpo{5e-6, 1, 1, 96, 0.10, 0.02, 0.04, 1.0};
  static const StageDefaults kDistill{5e-5, 2, 1, 96, 0.05, 0.02, 0.0, 4.0};
  switch (stage) {
    case TrainStage::Pretrain: return kPretrain;
    case TrainStage::Sft: return kSft;
    case TrainStage::Dpo: return kDpo;
    case TrainStage::Orpo: return kOrpo;
    case TrainStage::Grpo: return kGrpo;
    case TrainStage::Distill: return kDistill;
  }
  throw ConfigError("stage_defaults: unknown stage");
}

RouterLossWeights stage_router_weights(TrainStage stage, const ModelConfig& config, const RouterWeightOverrides& overrides) {
  RouterLossWeights w = RouterLossWeights::from_config(config);
  w.router_anchor = stage_defaults(stage).router_anchor;
  // A model without a LookaheadRouter has no lookahead loss, whatever its config's lambdas say; only
  // an explicit weight for it is a mistake.
  if (!config.has_lookahead_router()) w.lookahead = w.lookahead_topk = w.lookahead_union = 0;
  auto set = [](double& field, const std::optional<double>& value) {
    if (value) field = *value;
  };
  set(w.balance, overrides.balance);
  set(w.temporal, overrides.temporal);
  set(w.router_locality, overrides.locality);
  set(w.lookahead, overrides.lookahead);
  set(w.lookahead_topk, overrides.lookahead_topk);
  set(w.lookahead_union, overrides.lookahead_union);
  set(w.router_anchor, overrides.anchor);
  w.validate();
  if (!config.has_lookahead_router())
    for (const auto& [name, value] : {std::pair<const char*, double>{"lambda_lookahead", w.lookahead},
                                      {"lambda_lookahead_topk", w.lookahead_topk},
                                      {"lambda_lookahead_union", w.lookahead_union}})
      if (value > 0 && (name == std::string("lambda_lookahead") || w.lookahead > 0))
        throw ConfigError(cat(name, " must be 0: this model has no LookaheadRouter (model_type ", config.model_type,
                              config.is_chronos() ? ", lookahead_router false" : "", "; got ", value, ")"));
  return w;
}

double stage_fallback_mask_prob(TrainStage stage, const ModelConfig& config) {
  return config.is_chronos() ? stage_defaults(stage).fallback_mask_prob : config.fallback_mask_prob;
}

PolicyObjective parse_policy_objective(const std::string& name) {
  if (name == "clip") return PolicyObjective::ClippedRatio;
  if (name == "reinforce") return PolicyObjective::Reinforce;
  throw InvalidArgument(cat("policy_objective '", name, "': expected clip or reinforce"));
}

bool stage_needs_reference(const StageRecipe& recipe) {
  return recipe.weights.router_anchor > 0 || recipe.stage == TrainStage::Dpo || recipe.stage == TrainStage::Grpo;
}

std::unique_ptr<TrainingStage> make_training_stage(const StageRecipe& recipe, const Tokenizer& tokenizer,
                                                   const EncoderOptions& encoder, int64_t student_vocab_size,
                                                   std::shared_ptr<ChronosForCausalLMImpl> reference,
                                                   std::shared_ptr<ChronosForCausalLMImpl> teacher) {
  const StageDefaults& d = stage_defaults(recipe.stage);
  const LmStageOptions options{recipe.data, recipe.batch_size.value_or(d.batch_size), recipe.seed, recipe.skip_bad_lines,
                               recipe.weights};
  if (recipe.stage != TrainStage::Pretrain && stage_needs_reference(recipe) && !reference)
    throw InvalidArgument(cat(train_stage_name(recipe.stage), " needs the frozen starting model as its reference"));
  switch (recipe.stage) {
    case TrainStage::Pretrain: return std::make_unique<PretrainStage>(tokenizer, encoder, options);
    case TrainStage::Sft: return std::make_unique<SftStage>(tokenizer, encoder, options, reference);
    case TrainStage::Dpo:
    case TrainStage::Orpo: {
      const double beta = recipe.beta.value_or(d.beta);
      const PreferenceStageOptions preference{options, recipe.stage == TrainStage::Orpo, DpoConfig{beta},
                                              OrpoConfig{beta, recipe.lambda_or}};
      return std::make_unique<PreferenceStage>(tokenizer, encoder, preference, reference);
    }
    case TrainStage::Grpo: {
      GrpoStageOptions grpo;
      grpo.data = options;
      grpo.group_size = recipe.group_size;
      grpo.max_new_tokens = recipe.max_new_tokens;
      grpo.temperature = recipe.temperature.value_or(d.temperature);
      grpo.loss.beta = recipe.beta.value_or(d.beta);
      grpo.loss.clip_eps = recipe.clip_eps;
      grpo.loss.objective = recipe.objective;
      return std::make_unique<GrpoStage>(tokenizer, encoder, grpo, reference, make_reward(recipe.reward));
    }
    case TrainStage::Distill: {
      if (!teacher) throw InvalidArgument("distill needs a teacher model");
      if (teacher->config().vocab_size != student_vocab_size)
        throw ConfigError(cat("the teacher's vocab_size ", teacher->config().vocab_size, " differs from the student's ",
                              student_vocab_size, " (they must share a tokenizer)"));
      const DistillConfig config{recipe.temperature.value_or(d.temperature), recipe.alpha};
      return std::make_unique<DistillStage>(tokenizer, encoder, options, config, teacher, reference);
    }
  }
  throw ConfigError("make_training_stage: unknown stage");
}

}  // namespace chronos
