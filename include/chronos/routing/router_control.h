// Who steers the routers during a run (docs/chronovisor.md): nobody, the Chronovisor, or
// DeepSeek-V3's auxiliary-loss-free balancer. The trainer and the decode loop hold one RouterControl:
// before each forward they hand its bias() to the model (ForwardOptions::router_bias), after it they
// tick() it with the tokens' top-k choices. Its state goes into checkpoints and model directories
// (router_control.json) so a resumed run continues exactly.
#pragma once

#include <ATen/Tensor.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "chronos/model/router_bias.h"
#include "chronos/routing/chronovisor.h"

namespace chronos {

enum class RouterControlKind { none, chronovisor, aux_free };
RouterControlKind parse_router_control_kind(const std::string& name);  // "none" | "chronovisor" | "aux_free"; InvalidArgument otherwise
std::string to_string(RouterControlKind kind);

struct RouterControlOptions {
  RouterControlKind kind = RouterControlKind::none;
  ChronovisorConfig chronovisor;  // with kind chronovisor
  double aux_free_step = 1e-3;    // with kind aux_free: the bias step per tick (DeepSeek-V3's gamma)
  // Throws ConfigError naming the field.
  void validate() const;
};

// Choice counts [L, E] (float32, on the choices' device, no host sync): per layer, how many of the
// top-k slots of the tokens `mask` keeps ([B, S], nonzero = keep; undefined: every token) went to
// each expert. `selected` holds one [B, S, k] tensor per MoE layer (ForwardOutput::selected); a
// model without MoE layers has none, and gets an undefined tensor.
at::Tensor expert_choice_counts(const std::vector<at::Tensor>& selected, const at::Tensor& mask, int64_t experts);
// The same per sequence: [B, L, E].
at::Tensor expert_choice_counts_per_sequence(const std::vector<at::Tensor>& selected, const at::Tensor& mask, int64_t experts);

class RouterControl {
 public:
  RouterControl(RouterControlOptions options, int64_t layers, int64_t experts);
  RouterControl(RouterControl&&) = default;
  RouterControl& operator=(RouterControl&&) = default;
  RouterControl(const RouterControl&) = delete;
  RouterControl& operator=(const RouterControl&) = delete;

  RouterControlKind kind() const { return options_.kind; }
  const RouterControlOptions& options() const { return options_; }
  // The bias for the next forward passes, or null while there is none (ask again after each tick:
  // a controller with nothing to say yet leaves the routers bit for bit unchanged).
  const RouterBias* bias() const { return has_bias_ ? &bias_ : nullptr; }

  // One tick with the choice counts [L, E] (any device; one small copy to the host). Returns the
  // tick's record for the JSONL log: the Chronovisor's TickRecord as JSON, or {"tick", "bias"} of
  // the aux-free balancer; null with kind none or once frozen.
  nlohmann::json tick(const at::Tensor& counts);
  // Called by tick() with each record (unset: none), e.g. to append it to a JSONL log.
  std::function<void(const nlohmann::json& record)> on_tick;
  // From now on tick() changes nothing: the bias stays as trained (an aux-free bias at inference).
  void freeze() { frozen_ = true; }
  bool frozen() const { return frozen_; }
  int64_t ticks() const { return ticks_; }
  // The shape it steers (0, 0 with kind none).
  int64_t num_layers() const;
  int64_t num_experts() const;

  const Chronovisor* chronovisor() const { return chronovisor_ ? &*chronovisor_ : nullptr; }
  const AuxFreeBalancer* aux_free() const { return aux_free_ ? &*aux_free_ : nullptr; }

  // {"kind", "ticks", "chronovisor" | "aux_free": that controller's exact state}.
  nlohmann::json state() const;
  // Throws FormatError naming `source` and the field when the state is malformed.
  static RouterControl from_state(const nlohmann::json& state, const std::string& source = "router control state");

 private:
  RouterControlOptions options_;
  std::optional<Chronovisor> chronovisor_;
  std::optional<AuxFreeBalancer> aux_free_;
  RouterBias bias_;
  bool has_bias_ = false;
  bool frozen_ = false;
  int64_t ticks_ = 0;
  void refresh_bias();
};

// The file a controlled run leaves in its model directories and checkpoints.
inline constexpr const char* kRouterControlFile = "router_control.json";
// Writes `control`'s state to dir/router_control.json (atomically).
void save_router_control(const RouterControl& control, const std::string& dir);
// The controller saved in `dir`, or nothing when the directory has no router_control.json; throws
// FormatError naming the file when it is malformed.
std::optional<RouterControl> load_router_control(const std::string& dir);

}  // namespace chronos
