// Training checkpoints (DESIGN.md): DIR/checkpoints/step_NNNNNNNN/ is a model directory plus
// optimizer.safetensors (AdamW moments, the RNG state), trainer_state.json (step, schedule, data
// position) and, for a run with a router control, router_control.json. A checkpoint is written
// into a temporary folder and renamed into place, so a crash never leaves half of one; only the
// newest `keep` are kept.
#pragma once

#include <torch/optim/adamw.h>

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

#include "chronos/model/causal_lm.h"

namespace chronos {

struct TrainerState {
  std::string stage;
  int64_t step = 0;         // optimizer steps done
  int64_t total_steps = 0;  // the run's planned optimizer steps (the schedule's T)
  uint64_t seed = 0;
  nlohmann::json data = nlohmann::json::object();     // the stage's data_state()
  nlohmann::json metrics = nlohmann::json::object();  // last logged values (informational)
  nlohmann::json router_control;                      // RouterControl::state() (router_control.json); null: none
  // A data-parallel run: its ranks, each rank's data_state() (rank_data[r]; `data` is rank 0's) and
  // each rank's CPU generator state (rank_rng[r], written to rng.safetensors as "cpu" and "cpu.rankR").
  int64_t world_size = 1;
  nlohmann::json rank_data = nlohmann::json::array();
  std::vector<at::Tensor> rank_rng;
};

// Writes a checkpoint for state.step under out_dir/checkpoints and prunes old ones; returns its path.
std::string save_checkpoint(const std::string& out_dir, ChronosForCausalLMImpl& model, torch::optim::AdamW& optimizer,
                            const TrainerState& state, int64_t keep);

// The newest complete checkpoint under dir/checkpoints (or dir itself when it is one), if any.
std::optional<std::string> latest_checkpoint(const std::string& dir);

// Reads trainer_state.json of a checkpoint; throws FormatError naming the file when malformed.
TrainerState read_trainer_state(const std::string& checkpoint);

// Restores the optimizer moments and the global RNG from a checkpoint (the weights come from
// load_pretrained on the same folder): rank `rank`'s generator state of a data-parallel run. Returns
// false when the checkpoint has no generator state for that rank (it was written by fewer ranks).
bool restore_optimizer_and_rng(const std::string& checkpoint, ChronosForCausalLMImpl& model, torch::optim::AdamW& optimizer,
                               int64_t rank = 0);

}  // namespace chronos
