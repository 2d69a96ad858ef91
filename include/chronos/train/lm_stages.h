// The language-modelling stages: pretrain (packed text, CE) and SFT (conversations, CE on the
// assistant answers), each plus the shared Chronos router regulariser; SFT also anchors the router to
// the starting model's routing on the same batch.
#pragma once

#include <memory>
#include <string>

#include "chronos/model/causal_lm.h"
#include "chronos/train/chronos_losses.h"
#include "chronos/train/data.h"
#include "chronos/train/stage.h"

namespace chronos {

struct LmStageOptions {
  std::string data_path;
  int64_t batch_size = 16;
  uint64_t seed = 42;
  bool skip_bad_lines = false;
  RouterLossWeights weights;
};

// CE + regulariser for one padded batch. `reference` (frozen, eval) feeds the anchor when set;
// `router_bias` (null: none) steers the trained model's routers, not the reference's.
MicroStep language_model_step(ChronosForCausalLMImpl& model, const Batch& batch, const RouterLossWeights& weights,
                              ChronosForCausalLMImpl* reference, const RouterBias* router_bias = nullptr);

class PretrainStage : public TrainingStage {
 public:
  PretrainStage(const Tokenizer& tokenizer, const EncoderOptions& encoder, LmStageOptions options);
  std::string name() const override { return "pretrain"; }
  MicroStep micro_step(ChronosForCausalLMImpl& model) override;
  int64_t micro_batches_per_epoch() override;  // one tokenising pass over the file
  nlohmann::json data_state() const override;
  void restore_data_state(const nlohmann::json& state) override;
  void set_data_shard(const DataShard& shard) override { records_.set_shard(shard); }

 private:
  LmStageOptions options_;
  ExampleEncoder encoder_;
  RecordStream records_;
  PackedTextStream packed_;
  int64_t vocab_size_;  // bound of the token ids a resumed carry may hold
};

class SftStage : public TrainingStage {
 public:
  // `reference`: the frozen starting model, used when weights.router_anchor > 0 (may be null otherwise).
  SftStage(const Tokenizer& tokenizer, const EncoderOptions& encoder, LmStageOptions options,
           std::shared_ptr<ChronosForCausalLMImpl> reference);
  std::string name() const override { return "sft"; }
  MicroStep micro_step(ChronosForCausalLMImpl& model) override;
  int64_t micro_batches_per_epoch() override;
  nlohmann::json data_state() const override;
  void restore_data_state(const nlohmann::json& state) override;
  void set_data_shard(const DataShard& shard) override { records_.set_shard(shard); }

 private:
  LmStageOptions options_;
  ExampleEncoder encoder_;
  RecordStream records_;
  std::shared_ptr<ChronosForCausalLMImpl> reference_;
  int64_t without_targets_ = 0;  // records dropped because truncation left no supervised token (B9)
};

}  // namespace chronos
