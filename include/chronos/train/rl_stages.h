// The stages that learn from another model: GRPO (rollouts of the policy itself, scored by a
// RewardFunction, group-relative advantages, k3 KL to the frozen starting model, PPO clipped ratio)
// and distillation (forward KL to a frozen teacher of any size with the same vocabulary, mixed with CE).
#pragma once

#include <memory>
#include <string>

#include "chronos/model/causal_lm.h"
#include "chronos/tokenizer/tokenizer.h"
#include "chronos/train/distill_loss.h"
#include "chronos/train/lm_stages.h"
#include "chronos/train/rewards.h"
#include "chronos/train/rl_losses.h"

namespace chronos {

// A Chronos model directory as a reward: the length-normalised log-likelihood of the response
// under that model, given the chat-rendered prompt, clipped to [-clip, clip] (the reference clips
// external reward-model scores to +-3). Higher means the reward model finds the answer likelier.
class ModelReward final : public RewardFunction {
 public:
  explicit ModelReward(const std::string& model_dir, double clip = 3.0);
  float score(const std::string& prompt, const std::string& response) override;
  std::string name() const override { return "model"; }

 private:
  ChronosForCausalLM model_{nullptr};
  std::unique_ptr<Tokenizer> tokenizer_;
  double clip_;
};

// "toy" or "model:DIR"; throws InvalidArgument for anything else.
std::unique_ptr<RewardFunction> make_reward(const std::string& spec);

struct GrpoStageOptions {
  LmStageOptions data;            // batch_size is unused: one prompt per micro-step
  int64_t group_size = 4;         // G rollouts per prompt
  int64_t max_new_tokens = 24;    // rollout length
  double temperature = 1.0;       // rollout sampling temperature (no top-k/top-p)
  GrpoLossConfig loss;
};

class GrpoStage : public TrainingStage {
 public:
  GrpoStage(const Tokenizer& tokenizer, const EncoderOptions& encoder, GrpoStageOptions options,
            std::shared_ptr<ChronosForCausalLMImpl> reference, std::unique_ptr<RewardFunction> reward);
  std::string name() const override { return "grpo"; }
  MicroStep micro_step(ChronosForCausalLMImpl& model) override;
  int64_t micro_batches_per_epoch() override { return static_cast<int64_t>(records_.records()); }
  nlohmann::json data_state() const override;
  void restore_data_state(const nlohmann::json& state) override;
  void set_data_shard(const DataShard& shard) override { records_.set_shard(shard); }

 private:
  GrpoStageOptions options_;
  const Tokenizer& tokenizer_;
  ExampleEncoder encoder_;
  RecordStream records_;
  std::shared_ptr<ChronosForCausalLMImpl> reference_;
  std::unique_ptr<RewardFunction> reward_;
};

class DistillStage : public TrainingStage {
 public:
  // `teacher`: frozen, same vocabulary; `reference`: the starting student for the anchor (or null).
  DistillStage(const Tokenizer& tokenizer, const EncoderOptions& encoder, LmStageOptions options, DistillConfig config,
               std::shared_ptr<ChronosForCausalLMImpl> teacher, std::shared_ptr<ChronosForCausalLMImpl> reference);
  std::string name() const override { return "distill"; }
  MicroStep micro_step(ChronosForCausalLMImpl& model) override;
  int64_t micro_batches_per_epoch() override;
  nlohmann::json data_state() const override;
  void restore_data_state(const nlohmann::json& state) override;
  void set_data_shard(const DataShard& shard) override { records_.set_shard(shard); }

 private:
  LmStageOptions options_;
  DistillConfig config_;
  ExampleEncoder encoder_;
  RecordStream records_;
  std::shared_ptr<ChronosForCausalLMImpl> teacher_, reference_;
  int64_t without_targets_ = 0;  // records dropped because truncation left no supervised token (B9)
};

}  // namespace chronos
