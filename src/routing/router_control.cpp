#include "chronos/routing/router_control.h"

#include <ATen/ATen.h>

#include <cmath>
#include <filesystem>

#include "chronos/core/error.h"
#include "chronos/io/json_file.h"

namespace chronos {

using json = nlohmann::json;

RouterControlKind parse_router_control_kind(const std::string& name) {
  if (name == "none") return RouterControlKind::none;
  if (name == "chronovisor") return RouterControlKind::chronovisor;
  if (name == "aux_free") return RouterControlKind::aux_free;
  throw InvalidArgument(cat("unknown router control '", name, "' (expected none, chronovisor or aux_free)"));
}

std::string to_string(RouterControlKind kind) {
  switch (kind) {
    case RouterControlKind::none: return "none";
    case RouterControlKind::chronovisor: return "chronovisor";
    case RouterControlKind::aux_free: return "aux_free";
  }
  return "none";
}

void RouterControlOptions::validate() const {
  if (kind == RouterControlKind::chronovisor) chronovisor.validate();
  if (kind == RouterControlKind::aux_free && (!(aux_free_step >= 0) || !std::isfinite(aux_free_step)))
    throw ConfigError(cat("router_control.aux_free_step must be a finite number >= 0 (got ", aux_free_step, ")"));
}

at::Tensor expert_choice_counts_per_sequence(const std::vector<at::Tensor>& selected, const at::Tensor& mask, int64_t experts) {
  if (selected.empty()) return {};
  // One index_add for every sequence and layer: row (b, l) of the output starts at (b * L + l) * E
  // (no bincount, which syncs to size its output).
  const at::Tensor ids = at::stack(selected, 1).to(at::kLong);  // [B, L, S, k]
  const int64_t B = ids.size(0), L = ids.size(1);
  const at::Tensor rows = (at::arange(B * L, ids.options()) * experts).view({B, L, 1, 1});
  at::Tensor weights = at::ones_like(ids, ids.options().dtype(at::kFloat));
  if (mask.defined()) weights = weights * mask.to(ids.device(), at::kFloat).view({B, 1, mask.size(1), 1});
  return at::zeros({B * L * experts}, weights.options()).index_add_(0, (ids + rows).reshape({-1}), weights.reshape({-1})).view({B, L, experts});
}

at::Tensor expert_choice_counts(const std::vector<at::Tensor>& selected, const at::Tensor& mask, int64_t experts) {
  const at::Tensor per_sequence = expert_choice_counts_per_sequence(selected, mask, experts);
  return per_sequence.defined() ? per_sequence.sum(0) : per_sequence;
}

RouterControl::RouterControl(RouterControlOptions options, int64_t layers, int64_t experts) : options_(std::move(options)) {
  options_.validate();
  if (options_.kind == RouterControlKind::chronovisor) chronovisor_.emplace(options_.chronovisor, layers, experts);
  if (options_.kind == RouterControlKind::aux_free) aux_free_.emplace(layers, experts, options_.aux_free_step);
  refresh_bias();
}

void RouterControl::refresh_bias() {
  if (chronovisor_) {
    bias_ = chronovisor_->router_bias();
  } else if (aux_free_) {
    bias_.target = BiasTarget::selection;  // the balancer's bias picks experts, never weighs them
    bias_.per_layer.clear();
    for (int64_t l = 0; l < aux_free_->num_layers(); ++l) bias_.per_layer.push_back(aux_free_->bias(l));
  } else {
    bias_.per_layer.clear();
  }
  has_bias_ = false;
  for (const at::Tensor& b : bias_.per_layer) has_bias_ |= b.defined();
}

int64_t RouterControl::num_layers() const {
  return chronovisor_ ? chronovisor_->num_layers() : aux_free_ ? aux_free_->num_layers() : 0;
}

int64_t RouterControl::num_experts() const {
  return chronovisor_ ? chronovisor_->num_experts() : aux_free_ ? aux_free_->num_experts() : 0;
}

json RouterControl::tick(const at::Tensor& counts) {
  if (options_.kind == RouterControlKind::none || frozen_) return nullptr;
  const int64_t layers = num_layers(), experts = num_experts();
  if (counts.dim() != 2 || counts.size(0) != layers || counts.size(1) != experts)
    throw InvalidArgument(cat("RouterControl::tick: counts of shape ", counts.sizes(), ", expected [", layers, ", ", experts, "]"));
  const at::Tensor host = counts.to(at::kCPU, at::kDouble).contiguous();
  std::vector<std::vector<double>> rows;
  for (int64_t l = 0; l < layers; ++l) rows.emplace_back(host[l].data_ptr<double>(), host[l].data_ptr<double>() + experts);
  ++ticks_;
  json record;
  if (chronovisor_) {
    const TickRecord r = chronovisor_->tick_counts(rows);
    if (r.micro) refresh_bias();  // the pressure only moves on micro ticks
    record = to_json(r);
  } else {
    aux_free_->update_counts(rows);
    refresh_bias();
    json bias = json::array();
    for (int64_t l = 0; l < layers; ++l) bias.push_back(aux_free_->bias_values(l));
    record = {{"tick", ticks_}, {"bias", bias}};
  }
  if (on_tick) on_tick(record);
  return record;
}

json RouterControl::state() const {
  json out = {{"kind", to_string(options_.kind)}, {"ticks", ticks_}};
  if (chronovisor_) out["chronovisor"] = chronovisor_->state();
  if (aux_free_) out["aux_free"] = aux_free_->state();
  return out;
}

RouterControl RouterControl::from_state(const json& state, const std::string& source) {
  if (!state.is_object() || !state.contains("kind") || !state.at("kind").is_string())
    throw FormatError(cat(source, ": expected an object with a 'kind' (none, chronovisor or aux_free)"));
  RouterControlOptions options;
  try {
    options.kind = parse_router_control_kind(state.at("kind").get<std::string>());
  } catch (const InvalidArgument& e) {
    throw FormatError(cat(source, ": ", e.what()));
  }
  const json ticks = state.value("ticks", json());
  if (!ticks.is_number_integer() || ticks.get<int64_t>() < 0) throw FormatError(cat(source, ": 'ticks' must be an integer >= 0"));
  RouterControl out(RouterControlOptions{}, 1, 2);
  out.options_ = options;
  if (options.kind == RouterControlKind::chronovisor) {
    if (!state.contains("chronovisor")) throw FormatError(cat(source, ": 'chronovisor' is missing"));
    out.chronovisor_.emplace(Chronovisor::from_state(state.at("chronovisor"), cat(source, ": chronovisor")));
    out.options_.chronovisor = out.chronovisor_->config();
  } else if (options.kind == RouterControlKind::aux_free) {
    if (!state.contains("aux_free")) throw FormatError(cat(source, ": 'aux_free' is missing"));
    out.aux_free_.emplace(AuxFreeBalancer::from_state(state.at("aux_free"), cat(source, ": aux_free")));
    out.options_.aux_free_step = out.aux_free_->step_size();
  }
  out.ticks_ = ticks.get<int64_t>();
  out.refresh_bias();
  return out;
}

void save_router_control(const RouterControl& control, const std::string& dir) {
  write_json_file((std::filesystem::path(dir) / kRouterControlFile).string(), control.state());
}

std::optional<RouterControl> load_router_control(const std::string& dir) {
  const std::string path = (std::filesystem::path(dir) / kRouterControlFile).string();
  if (!std::filesystem::exists(path)) return std::nullopt;
  return RouterControl::from_state(read_json_file(path), path);
}

}  // namespace chronos
