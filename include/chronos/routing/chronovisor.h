// Chronovisor (docs/chronovisor.md): a routing-pressure controller. It watches how each MoE layer
// routes and feeds a bias back into that layer's router, closing the loop
//   routing -> statistics -> coherence -> lens -> pressure -> routing.
// Per MoE layer it keeps
//  - usage: the share of top-k choices each expert got in a tick (one forward pass or decode step);
//  - coherence c = 1 - H(usage) / log(E) (0: uniform use, 1: one expert takes everything) and its
//    change since the previous tick;
//  - a lens: a distribution over the experts, the usage the controller steers towards (uniform at
//    the start);
//  - a pressure: the bias added to the router's logits, pressure = scale * (lens - usage), with the
//    usage averaged over the micro window.
// Three clocks: fast (every tick: statistics), micro (every micro_period ticks: the pressure from the
// window's mean usage) and macro (every macro_period ticks: the lens moves towards the window's mean
// usage by gamma * sigmoid(gate_sharpness * dc) of the way, dc being how much the window's coherence
// rose since the previous macro tick: routing that grows more coherent is followed, routing that
// falls apart is not). With pressure_scale 0 the pressure stays 0 and the controller changes nothing.
// Also here: the auxiliary-loss-free balancing of DeepSeek-V3 (Liu et al., 2024, section 2.1.2), the
// baseline it is compared with.
#pragma once

#include <ATen/Tensor.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "chronos/model/router_bias.h"

namespace chronos {

struct ChronovisorConfig {
  double pressure_scale = 0.1;  // >= 0; 0 turns the pressure off
  int64_t micro_period = 5;     // >= 1 ticks between pressure updates
  int64_t macro_period = 20;    // >= micro_period ticks between lens moves
  double gamma = 0.1;           // in [0, 1]: the lens's adaptation rate
  double gate_sharpness = 5.0;  // > 0: the macro gate is sigmoid(gate_sharpness * dc)
  BiasTarget target = BiasTarget::selection;
  // Throws ConfigError naming the field (chronovisor.pressure_scale, ...).
  void validate() const;
};

// One layer's figures at a tick, for the JSONL log.
struct LayerTick {
  double coherence = 0;
  double delta_coherence = 0;  // since the previous tick (0 at the first)
  std::vector<double> usage;   // this tick's share of top-k choices per expert
  std::vector<double> pressure;
  std::vector<double> lens;
};

struct TickRecord {
  int64_t tick = 0;  // 1 for the first
  bool micro = false;  // the pressure was recomputed at this tick
  bool macro = false;  // the lens moved at this tick
  std::vector<LayerTick> layers;
};
// {"tick", "micro", "macro", "coherence": [...], "delta_coherence": [...], "pressure": [[...]], "lens": [[...]]}
nlohmann::json to_json(const TickRecord& record);

// 1 - H(p) / log(E) of a distribution over E >= 2 experts (zeros allowed).
double coherence(const std::vector<double>& distribution);

class Chronovisor {
 public:
  Chronovisor(ChronovisorConfig config, int64_t layers, int64_t experts);

  // The fast clock: one tick with every MoE layer's top-k choices, `selected[l]` of any shape whose
  // last dimension is k (ids in [0, E)). Runs the micro and macro clocks when they are due.
  TickRecord tick(const std::vector<at::Tensor>& selected);
  // The same from per-layer choice counts (length E each), for callers that counted already.
  TickRecord tick_counts(const std::vector<std::vector<double>>& counts);

  // Layer `layer`'s router bias [E] (float32, CPU): the current pressure.
  at::Tensor bias(int64_t layer) const;
  // Every layer's bias with the configured target, for ForwardOptions::router_bias.
  RouterBias router_bias() const;
  const std::vector<double>& pressure(int64_t layer) const { return layers_.at(static_cast<size_t>(layer)).pressure; }
  const std::vector<double>& lens(int64_t layer) const { return layers_.at(static_cast<size_t>(layer)).lens; }
  int64_t ticks() const { return ticks_; }
  int64_t num_layers() const { return static_cast<int64_t>(layers_.size()); }
  int64_t num_experts() const { return experts_; }
  const ChronovisorConfig& config() const { return config_; }

  // Everything the controller holds (config, clocks, windows, lens, pressure), exactly: a
  // controller restored from it ticks on as this one would.
  nlohmann::json state() const;
  // Throws FormatError naming `source` and the field when the state is malformed or is for
  // another shape (layers, experts).
  static Chronovisor from_state(const nlohmann::json& state, const std::string& source = "chronovisor state");

 private:
  struct Layer {
    std::vector<double> lens, pressure;
    std::vector<double> micro_sum, macro_sum;  // summed usage over the windows in progress
    double last_coherence = 0;                 // of the previous tick
    double last_macro_coherence = 0;           // of the previous macro window's mean usage
    bool seen_tick = false, seen_macro = false;
  };
  ChronovisorConfig config_;
  int64_t experts_;
  int64_t ticks_ = 0;
  std::vector<Layer> layers_;
};

// DeepSeek-V3's auxiliary-loss-free load balancing: a per-expert bias, used for selection only,
// moved after every step by `step_size` towards balance: b_i += step_size * sign(mean load - load_i).
class AuxFreeBalancer {
 public:
  AuxFreeBalancer(int64_t layers, int64_t experts, double step_size = 1e-3);
  // One training step's choices per layer (last dimension k), as Chronovisor::tick.
  void update(const std::vector<at::Tensor>& selected);
  void update_counts(const std::vector<std::vector<double>>& counts);
  at::Tensor bias(int64_t layer) const;
  const std::vector<double>& bias_values(int64_t layer) const { return bias_.at(static_cast<size_t>(layer)); }
  int64_t num_layers() const { return static_cast<int64_t>(bias_.size()); }
  int64_t num_experts() const { return experts_; }
  double step_size() const { return step_size_; }
  nlohmann::json state() const;
  static AuxFreeBalancer from_state(const nlohmann::json& state, const std::string& source = "aux-free balancer state");

 private:
  int64_t experts_;
  double step_size_;
  std::vector<std::vector<double>> bias_;
};

// Choice counts per expert [E] of one layer's top-k ids (any shape, ids in [0, experts)).
std::vector<double> choice_counts(const at::Tensor& selected, int64_t experts);

}  // namespace chronos
