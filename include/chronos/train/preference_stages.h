// The preference stages on chosen/rejected conversation pairs: DPO (against the frozen starting
// model, which also anchors the router on the same batch) and ORPO (reference-free, length-normalised
// odds ratio plus NLL of the chosen answer). Chosen and rejected go through one 2B-row forward.
#pragma once

#include <memory>

#include "chronos/model/causal_lm.h"
#include "chronos/train/lm_stages.h"
#include "chronos/train/preference_losses.h"

namespace chronos {

struct PreferenceStageOptions {
  LmStageOptions data;
  bool orpo = false;  // false: DPO
  DpoConfig dpo;
  OrpoConfig orpo_config;
};

class PreferenceStage : public TrainingStage {
 public:
  // `reference`: the frozen starting model; required for DPO, used by either for the anchor.
  PreferenceStage(const Tokenizer& tokenizer, const EncoderOptions& encoder, PreferenceStageOptions options,
                  std::shared_ptr<ChronosForCausalLMImpl> reference);
  std::string name() const override { return options_.orpo ? "orpo" : "dpo"; }
  MicroStep micro_step(ChronosForCausalLMImpl& model) override;
  int64_t micro_batches_per_epoch() override;
  nlohmann::json data_state() const override;
  void restore_data_state(const nlohmann::json& state) override;
  void set_data_shard(const DataShard& shard) override { records_.set_shard(shard); }

 private:
  PreferenceStageOptions options_;
  ExampleEncoder encoder_;
  RecordStream records_;
  std::shared_ptr<ChronosForCausalLMImpl> reference_;
};

}  // namespace chronos
