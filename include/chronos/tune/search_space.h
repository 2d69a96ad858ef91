// chronos-tune's search space: the eight knobs the reference tuned (docs/results.md "Tuning"), each
// with its range as an Optuna distribution, and how a trial's values become a model config.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "chronos/model/config.h"

namespace chronos {

// lambda_balance, lambda_temporal, lambda_lookahead, lookahead_steps, hidden_size, num_experts,
// num_shared_experts, kv_latent_dim.
const std::vector<std::string>& tunable_parameters();

// The --search-space JSON of `optuna ask` for these names ({name: distribution_to_json}). Throws
// InvalidArgument naming an unknown parameter (and listing the known ones) or a repeated one.
nlohmann::json optuna_search_space(const std::vector<std::string>& names);

// `base` with a trial's values set; validated. Throws ConfigError naming the parameter when a
// value has the wrong type or the resulting config breaks a rule (e.g. hidden_size vs heads).
ModelConfig apply_trial_params(const ModelConfig& base, const nlohmann::json& params);

}  // namespace chronos
