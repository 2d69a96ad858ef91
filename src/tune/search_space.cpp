#include "chronos/tune/search_space.h"

#include <algorithm>
#include <map>

#include "chronos/core/error.h"

namespace chronos {
namespace {

nlohmann::json float_range(double low, double high, bool log) {
  return {{"name", "FloatDistribution"}, {"attributes", {{"low", low}, {"high", high}, {"log", log}, {"step", nullptr}}}};
}
nlohmann::json int_range(int64_t low, int64_t high) {
  return {{"name", "IntDistribution"}, {"attributes", {{"low", low}, {"high", high}, {"log", false}, {"step", 1}}}};
}
nlohmann::json choices(std::vector<int64_t> values) {
  return {{"name", "CategoricalDistribution"}, {"attributes", {{"choices", values}}}};
}

// Ranges around the fine preset: the loss weights over two decades each side of their defaults,
// sizes that keep a trial of the small scale within minutes on two cores.
const std::map<std::string, nlohmann::json>& distributions() {
  static const std::map<std::string, nlohmann::json> d = {
      {"lambda_balance", float_range(1e-4, 5e-2, true)},
      {"lambda_temporal", float_range(1e-4, 3e-2, true)},
      {"lambda_lookahead", float_range(1e-3, 1.0, true)},
      {"lookahead_steps", int_range(1, 4)},
      {"hidden_size", choices({128, 192, 256})},
      {"num_experts", choices({8, 16, 32})},
      {"num_shared_experts", int_range(0, 2)},
      {"kv_latent_dim", choices({32, 64, 128})},
  };
  return d;
}

}  // namespace

const std::vector<std::string>& tunable_parameters() {
  static const std::vector<std::string> names = {"lambda_balance", "lambda_temporal",    "lambda_lookahead", "lookahead_steps",
                                                 "hidden_size",    "num_experts", "num_shared_experts", "kv_latent_dim"};
  return names;
}

nlohmann::json optuna_search_space(const std::vector<std::string>& names) {
  nlohmann::json space = nlohmann::json::object();
  for (const std::string& name : names) {
    const auto it = distributions().find(name);
    if (it == distributions().end()) {
      std::string known;
      for (const std::string& n : tunable_parameters()) known += (known.empty() ? "" : ", ") + n;
      throw InvalidArgument(cat("search space: unknown parameter '", name, "' (expected one of ", known, ")"));
    }
    if (space.contains(name)) throw InvalidArgument(cat("search space: '", name, "' is given twice"));
    space[name] = it->second;
  }
  if (space.empty()) throw InvalidArgument("search space: no parameter to tune");
  return space;
}

ModelConfig apply_trial_params(const ModelConfig& base, const nlohmann::json& params) {
  if (!params.is_object()) throw ConfigError("trial parameters must be a JSON object");
  ModelConfig c = base;
  for (const auto& [name, value] : params.items()) {
    if (!value.is_number()) throw ConfigError(cat("trial parameter '", name, "' must be a number (got ", value.dump(), ")"));
    const auto integer = [&] {
      const double v = value.get<double>();
      if (v != static_cast<double>(static_cast<int64_t>(v))) throw ConfigError(cat("trial parameter '", name, "' must be an integer (got ", v, ")"));
      return static_cast<int64_t>(v);
    };
    if (name == "lambda_balance") c.lambda_balance = value.get<double>();
    else if (name == "lambda_temporal") c.lambda_temporal = value.get<double>();
    else if (name == "lambda_lookahead") c.lambda_lookahead = value.get<double>();
    else if (name == "lookahead_steps") c.lookahead_steps = integer();
    else if (name == "hidden_size") c.hidden_size = integer();
    else if (name == "num_experts") c.num_experts = integer();
    else if (name == "num_shared_experts") c.num_shared_experts = integer();
    else if (name == "kv_latent_dim") c.kv_latent_dim = integer();
    else throw ConfigError(cat("trial parameter '", name, "' is not tunable"));
  }
  // A derived head width follows the hidden size; the MLA rope width keeps its share of it (even, at
  // least 2), since a rope as wide as a narrower head breaks the rope-width rule.
  if (params.contains("hidden_size") && base.head_dim == 0 && base.resolved_head_dim() != c.resolved_head_dim()) {
    const int64_t scaled = base.rope_dim * c.resolved_head_dim() / base.resolved_head_dim();
    c.rope_dim = std::max<int64_t>(2, scaled - scaled % 2);
  }
  c.validate();
  return c;
}

}  // namespace chronos
