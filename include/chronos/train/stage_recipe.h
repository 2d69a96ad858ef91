// What each training stage defaults to (one table), and the one place a TrainingStage is built from
// what a caller asked for: chronos-train's flags, a test, or another program linking libchronos.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "chronos/model/causal_lm.h"
#include "chronos/tokenizer/tokenizer.h"
#include "chronos/train/chronos_losses.h"
#include "chronos/train/data.h"
#include "chronos/train/rl_losses.h"
#include "chronos/train/stage.h"

namespace chronos {

struct StageDefaults {
  double lr;                  // peak learning rate
  int64_t batch_size;         // sequences per micro-batch (GRPO: one prompt, times group_size rollouts)
  int64_t grad_accum;         // micro-batches per optimizer step
  int64_t max_seq_len;        // tokens per sequence
  double router_anchor;       // lambda_router_anchor (the other lambdas come from the checkpoint)
  double fallback_mask_prob;  // simulated expert-miss rate while training
  double beta;                // DPO/ORPO inverse temperature, GRPO KL weight; 0 where the stage has none
  double temperature;         // GRPO rollout sampling, distillation softening; 0 where the stage has none
};
// The reference's per-stage values (docs/training_losses.md, docs/cli.md).
const StageDefaults& stage_defaults(TrainStage stage);

// Router-loss weights a caller sets; unset ones keep the checkpoint's value (the anchor: the stage's).
struct RouterWeightOverrides {
  std::optional<double> balance, temporal, locality, lookahead, lookahead_topk, lookahead_union, anchor;
};
// The weights one stage trains with; throws ConfigError naming the lambda_* field that is invalid,
// or a lookahead weight > 0 for a model without a LookaheadRouter (the Hugging Face families).
RouterLossWeights stage_router_weights(TrainStage stage, const ModelConfig& config, const RouterWeightOverrides& overrides);

// The simulated expert-miss rate a stage trains with unless set: the stage's for a Chronos model,
// the config's (0) for a Hugging Face family, which is fine-tuned as it was trained.
double stage_fallback_mask_prob(TrainStage stage, const ModelConfig& config);

// "clip" or "reinforce"; throws InvalidArgument naming policy_objective otherwise.
PolicyObjective parse_policy_objective(const std::string& name);

// One stage as asked for; unset optionals take stage_defaults(stage).
struct StageRecipe {
  TrainStage stage = TrainStage::Pretrain;
  std::string data;  // JSONL file
  std::optional<int64_t> batch_size;
  uint64_t seed = 42;
  bool skip_bad_lines = false;
  RouterLossWeights weights;          // from stage_router_weights
  std::optional<double> beta;         // DPO, ORPO, GRPO
  double lambda_or = 0.1;             // ORPO: weight of the odds-ratio term
  std::string reward = "toy";         // GRPO: "toy" or "model:DIR" (make_reward)
  int64_t group_size = 4;             // GRPO: rollouts per prompt
  int64_t max_new_tokens = 24;        // GRPO: tokens per rollout
  std::optional<double> temperature;  // GRPO rollouts, distillation
  double clip_eps = 0.2;              // GRPO: PPO ratio clip
  PolicyObjective objective = PolicyObjective::ClippedRatio;
  double alpha = 0.7;                 // distillation: KD weight (CE gets 1 - alpha)
};

// Whether the stage needs the frozen starting model: DPO and GRPO as their reference, every stage whose
// router anchor is on as the anchor's target.
bool stage_needs_reference(const StageRecipe& recipe);

// Builds the stage. `reference`: the frozen starting model (required when stage_needs_reference);
// `teacher`: distillation's frozen teacher (required there, same vocab_size as `student_vocab_size`).
// Throws InvalidArgument / ConfigError naming what is missing or inconsistent.
std::unique_ptr<TrainingStage> make_training_stage(const StageRecipe& recipe, const Tokenizer& tokenizer,
                                                   const EncoderOptions& encoder, int64_t student_vocab_size,
                                                   std::shared_ptr<ChronosForCausalLMImpl> reference,
                                                   std::shared_ptr<ChronosForCausalLMImpl> teacher = nullptr);

}  // namespace chronos
