// A training stage as the loop sees it: it draws its own micro-batches, computes a differentiable
// loss with the terms to log, and can save and restore where its data stands so a resumed run
// continues exactly.
#pragma once

#include <ATen/Tensor.h>
#include <nlohmann/json.hpp>

#include <map>
#include <string>

#include "chronos/model/router_bias.h"
#include "chronos/train/data.h"

namespace chronos {

class ChronosForCausalLMImpl;

struct MicroStep {
  at::Tensor loss;                        // scalar, differentiable
  std::map<std::string, at::Tensor> log;  // 0-dim values to report (read only on log steps)
  int64_t tokens = 0;                     // real tokens processed (for tokens/s)
  // [L, E] top-k choices per expert over the real tokens of the trained model's forward
  // (routing/router_control.h expert_choice_counts), for a router control; undefined: not reported.
  at::Tensor routing_counts;
};

class TrainingStage {
 public:
  virtual ~TrainingStage() = default;
  virtual std::string name() const = 0;
  // One micro-batch: forward, loss. The model is in train mode.
  virtual MicroStep micro_step(ChronosForCausalLMImpl& model) = 0;
  // Micro-batches in one pass over the data, when the stage can tell (for --epochs); 0 if unknown.
  virtual int64_t micro_batches_per_epoch() = 0;
  // Where the data stands, as JSON, and its inverse.
  virtual nlohmann::json data_state() const = 0;
  virtual void restore_data_state(const nlohmann::json& state) = 0;
  // Reads only this rank's part of the data from now on (data-parallel training; before the first step).
  virtual void set_data_shard(const DataShard& shard) = 0;

  // The bias a router control sets on the trained model's routers (null: none), set by the trainer
  // before each step. The stage hands it to every forward of the trained model, never to a
  // reference's or a teacher's.
  void set_router_bias(const RouterBias* bias) { router_bias_ = bias; }

 protected:
  const RouterBias* router_bias_ = nullptr;
};

}  // namespace chronos
