#include "chronos/routing/chronovisor.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>

#include "chronos/core/error.h"

namespace chronos {

using json = nlohmann::json;

void ChronovisorConfig::validate() const {
  if (!(pressure_scale >= 0) || !std::isfinite(pressure_scale))
    throw ConfigError(cat("chronovisor.pressure_scale must be a finite number >= 0 (got ", pressure_scale, ")"));
  if (micro_period < 1) throw ConfigError(cat("chronovisor.micro_period must be >= 1 (got ", micro_period, ")"));
  if (macro_period < micro_period)
    throw ConfigError(cat("chronovisor.macro_period must be >= micro_period (got ", macro_period, " < ", micro_period, ")"));
  if (!(gamma >= 0 && gamma <= 1)) throw ConfigError(cat("chronovisor.gamma must be in [0, 1] (got ", gamma, ")"));
  if (!(gate_sharpness > 0) || !std::isfinite(gate_sharpness))
    throw ConfigError(cat("chronovisor.gate_sharpness must be a finite number > 0 (got ", gate_sharpness, ")"));
}

double coherence(const std::vector<double>& p) {
  if (p.size() < 2) throw InvalidArgument(cat("coherence needs at least 2 experts (got ", p.size(), ")"));
  double total = 0;
  for (const double v : p) total += v;
  if (!(total > 0)) return 0;  // nothing routed: no structure
  double entropy = 0;
  for (const double v : p)
    if (v > 0) entropy -= (v / total) * std::log(v / total);
  return 1.0 - entropy / std::log(static_cast<double>(p.size()));
}

std::vector<double> choice_counts(const at::Tensor& selected, int64_t experts) {
  const at::Tensor ids = selected.reshape({-1}).to(at::kCPU, at::kLong);
  if (ids.numel() > 0) {
    const int64_t lo = ids.min().item<int64_t>(), hi = ids.max().item<int64_t>();
    if (lo < 0 || hi >= experts) throw InvalidArgument(cat("expert id ", lo < 0 ? lo : hi, " outside [0, ", experts, ")"));
  }
  const at::Tensor counts = at::bincount(ids, /*weights=*/{}, experts).to(at::kDouble).contiguous();
  return std::vector<double>(counts.data_ptr<double>(), counts.data_ptr<double>() + experts);
}

namespace {

std::vector<double> normalised(const std::vector<double>& counts) {
  double total = 0;
  for (const double c : counts) total += c;
  std::vector<double> out(counts.size(), total > 0 ? 0.0 : 1.0 / static_cast<double>(counts.size()));
  if (total > 0)
    for (size_t i = 0; i < counts.size(); ++i) out[i] = counts[i] / total;
  return out;
}

at::Tensor as_bias(const std::vector<double>& values) {
  return at::tensor(values, at::kDouble).to(at::kFloat);
}

std::vector<std::vector<double>> counts_of(const std::vector<at::Tensor>& selected, int64_t experts) {
  std::vector<std::vector<double>> out;
  out.reserve(selected.size());
  for (const at::Tensor& s : selected) out.push_back(choice_counts(s, experts));
  return out;
}

std::vector<double> doubles(const json& value, size_t size, const std::string& source, const std::string& field) {
  if (!value.is_array() || value.size() != size) throw FormatError(cat(source, ": '", field, "' must be a list of ", size, " numbers"));
  std::vector<double> out;
  for (const json& v : value) {
    if (!v.is_number()) throw FormatError(cat(source, ": '", field, "' must be a list of ", size, " numbers"));
    out.push_back(v.get<double>());
  }
  return out;
}

// Runs `read`, turning what a malformed state throws (JSON type errors, broken rules) into one FormatError naming `source`.
template <typename Read>
auto read_state(const std::string& source, Read&& read) {
  try {
    return read();
  } catch (const json::exception& e) {
    throw FormatError(cat(source, ": ", e.what()));
  } catch (const ConfigError& e) {
    throw FormatError(cat(source, ": ", e.what()));
  } catch (const InvalidArgument& e) {
    throw FormatError(cat(source, ": ", e.what()));
  }
}

const json& member(const json& object, const char* name, const std::string& source) {
  if (!object.is_object() || !object.contains(name)) throw FormatError(cat(source, ": missing '", name, "'"));
  return object.at(name);
}

}  // namespace

json to_json(const TickRecord& record) {
  json out = {{"tick", record.tick}, {"micro", record.micro}, {"macro", record.macro}};
  json c = json::array(), d = json::array(), p = json::array(), l = json::array();
  for (const LayerTick& layer : record.layers) {
    c.push_back(layer.coherence);
    d.push_back(layer.delta_coherence);
    p.push_back(layer.pressure);
    l.push_back(layer.lens);
  }
  out["coherence"] = c;
  out["delta_coherence"] = d;
  out["pressure"] = p;
  out["lens"] = l;
  return out;
}

Chronovisor::Chronovisor(ChronovisorConfig config, int64_t layers, int64_t experts) : config_(config), experts_(experts) {
  config_.validate();
  if (layers < 1 || experts < 2) throw InvalidArgument(cat("Chronovisor needs >= 1 layer and >= 2 experts (got ", layers, ", ", experts, ")"));
  Layer layer;
  layer.lens.assign(static_cast<size_t>(experts), 1.0 / static_cast<double>(experts));
  layer.pressure.assign(static_cast<size_t>(experts), 0.0);
  layer.micro_sum.assign(static_cast<size_t>(experts), 0.0);
  layer.macro_sum.assign(static_cast<size_t>(experts), 0.0);
  layers_.assign(static_cast<size_t>(layers), layer);
}

TickRecord Chronovisor::tick(const std::vector<at::Tensor>& selected) { return tick_counts(counts_of(selected, experts_)); }

TickRecord Chronovisor::tick_counts(const std::vector<std::vector<double>>& counts) {
  if (counts.size() != layers_.size()) throw InvalidArgument(cat("Chronovisor::tick: ", counts.size(), " layers, expected ", layers_.size()));
  ++ticks_;
  TickRecord record;
  record.tick = ticks_;
  record.micro = ticks_ % config_.micro_period == 0;
  record.macro = ticks_ % config_.macro_period == 0;
  for (size_t l = 0; l < layers_.size(); ++l) {
    Layer& layer = layers_[l];
    if (counts[l].size() != static_cast<size_t>(experts_))
      throw InvalidArgument(cat("Chronovisor::tick: layer ", l, " has ", counts[l].size(), " counts, expected ", experts_));
    const std::vector<double> usage = normalised(counts[l]);
    LayerTick out;
    out.usage = usage;
    out.coherence = coherence(usage);
    out.delta_coherence = layer.seen_tick ? out.coherence - layer.last_coherence : 0.0;
    layer.last_coherence = out.coherence;
    layer.seen_tick = true;
    for (int64_t e = 0; e < experts_; ++e) {
      layer.micro_sum[static_cast<size_t>(e)] += usage[static_cast<size_t>(e)];
      layer.macro_sum[static_cast<size_t>(e)] += usage[static_cast<size_t>(e)];
    }
    if (record.macro) {
      // The lens moves first, so that the pressure of the same tick already aims at its new place.
      std::vector<double> mean(layer.macro_sum.size());
      for (size_t e = 0; e < mean.size(); ++e) mean[e] = layer.macro_sum[e] / static_cast<double>(config_.macro_period);
      const double window_coherence = coherence(mean);
      const double rise = layer.seen_macro ? window_coherence - layer.last_macro_coherence : 0.0;
      const double gate = 1.0 / (1.0 + std::exp(-config_.gate_sharpness * rise));
      for (size_t e = 0; e < mean.size(); ++e) layer.lens[e] += config_.gamma * gate * (mean[e] - layer.lens[e]);
      layer.last_macro_coherence = window_coherence;
      layer.seen_macro = true;
      std::fill(layer.macro_sum.begin(), layer.macro_sum.end(), 0.0);
    }
    if (record.micro) {
      for (size_t e = 0; e < layer.pressure.size(); ++e) {
        const double mean = layer.micro_sum[e] / static_cast<double>(config_.micro_period);
        layer.pressure[e] = config_.pressure_scale * (layer.lens[e] - mean);
      }
      std::fill(layer.micro_sum.begin(), layer.micro_sum.end(), 0.0);
    }
    out.pressure = layer.pressure;
    out.lens = layer.lens;
    record.layers.push_back(std::move(out));
  }
  return record;
}

at::Tensor Chronovisor::bias(int64_t layer) const { return as_bias(pressure(layer)); }

RouterBias Chronovisor::router_bias() const {
  RouterBias out;
  out.target = config_.target;
  // A layer whose pressure is all zero gets no bias at all, so that a controller with nothing to
  // say (pressure_scale 0, or before its first micro tick) leaves routing bit for bit unchanged.
  for (int64_t l = 0; l < num_layers(); ++l) {
    const std::vector<double>& p = pressure(l);
    const bool zero = std::all_of(p.begin(), p.end(), [](double v) { return v == 0.0; });
    out.per_layer.push_back(zero ? at::Tensor() : bias(l));
  }
  return out;
}

json Chronovisor::state() const {
  json layers = json::array();
  for (const Layer& l : layers_)
    layers.push_back({{"lens", l.lens}, {"pressure", l.pressure}, {"micro_sum", l.micro_sum}, {"macro_sum", l.macro_sum},
                      {"last_coherence", l.last_coherence}, {"last_macro_coherence", l.last_macro_coherence},
                      {"seen_tick", l.seen_tick}, {"seen_macro", l.seen_macro}});
  return {{"config", {{"pressure_scale", config_.pressure_scale}, {"micro_period", config_.micro_period},
                      {"macro_period", config_.macro_period}, {"gamma", config_.gamma},
                      {"gate_sharpness", config_.gate_sharpness}, {"target", to_string(config_.target)}}},
          {"experts", experts_},
          {"ticks", ticks_},
          {"layers", layers}};
}

Chronovisor Chronovisor::from_state(const json& state, const std::string& source) {
  return read_state(source, [&] {
    const json& c = member(state, "config", source);
    ChronovisorConfig config;
    config.pressure_scale = member(c, "pressure_scale", source).get<double>();
    config.micro_period = member(c, "micro_period", source).get<int64_t>();
    config.macro_period = member(c, "macro_period", source).get<int64_t>();
    config.gamma = member(c, "gamma", source).get<double>();
    config.gate_sharpness = member(c, "gate_sharpness", source).get<double>();
    config.target = parse_bias_target(member(c, "target", source).get<std::string>());
    const int64_t experts = member(state, "experts", source).get<int64_t>();
    const json& layers = member(state, "layers", source);
    if (!layers.is_array() || layers.empty()) throw FormatError(cat(source, ": 'layers' must be a non-empty list"));
    Chronovisor out(config, static_cast<int64_t>(layers.size()), experts);
    out.ticks_ = member(state, "ticks", source).get<int64_t>();
    if (out.ticks_ < 0) throw FormatError(cat(source, ": 'ticks' must be >= 0"));
    const size_t e = static_cast<size_t>(experts);
    for (size_t i = 0; i < layers.size(); ++i) {
      const json& in = layers[i];
      const std::string where = cat("layers[", i, "]");
      Layer& l = out.layers_[i];
      l.lens = doubles(member(in, "lens", source), e, source, where + ".lens");
      l.pressure = doubles(member(in, "pressure", source), e, source, where + ".pressure");
      l.micro_sum = doubles(member(in, "micro_sum", source), e, source, where + ".micro_sum");
      l.macro_sum = doubles(member(in, "macro_sum", source), e, source, where + ".macro_sum");
      l.last_coherence = member(in, "last_coherence", source).get<double>();
      l.last_macro_coherence = member(in, "last_macro_coherence", source).get<double>();
      l.seen_tick = member(in, "seen_tick", source).get<bool>();
      l.seen_macro = member(in, "seen_macro", source).get<bool>();
    }
    return out;
  });
}

AuxFreeBalancer::AuxFreeBalancer(int64_t layers, int64_t experts, double step_size) : experts_(experts), step_size_(step_size) {
  if (layers < 1 || experts < 2) throw InvalidArgument(cat("AuxFreeBalancer needs >= 1 layer and >= 2 experts (got ", layers, ", ", experts, ")"));
  if (!(step_size >= 0) || !std::isfinite(step_size)) throw ConfigError(cat("aux_free.step_size must be a finite number >= 0 (got ", step_size, ")"));
  bias_.assign(static_cast<size_t>(layers), std::vector<double>(static_cast<size_t>(experts), 0.0));
}

void AuxFreeBalancer::update(const std::vector<at::Tensor>& selected) { update_counts(counts_of(selected, experts_)); }

void AuxFreeBalancer::update_counts(const std::vector<std::vector<double>>& counts) {
  if (counts.size() != bias_.size()) throw InvalidArgument(cat("AuxFreeBalancer::update: ", counts.size(), " layers, expected ", bias_.size()));
  for (size_t l = 0; l < bias_.size(); ++l) {
    if (counts[l].size() != static_cast<size_t>(experts_))
      throw InvalidArgument(cat("AuxFreeBalancer::update: layer ", l, " has ", counts[l].size(), " counts, expected ", experts_));
    double mean = 0;
    for (const double c : counts[l]) mean += c;
    mean /= static_cast<double>(experts_);
    for (size_t e = 0; e < counts[l].size(); ++e) {
      const double gap = mean - counts[l][e];
      bias_[l][e] += step_size_ * static_cast<double>((gap > 0) - (gap < 0));
    }
  }
}

at::Tensor AuxFreeBalancer::bias(int64_t layer) const { return as_bias(bias_values(layer)); }

json AuxFreeBalancer::state() const { return {{"experts", experts_}, {"step_size", step_size_}, {"bias", bias_}}; }

AuxFreeBalancer AuxFreeBalancer::from_state(const json& state, const std::string& source) {
  return read_state(source, [&] {
    const int64_t experts = member(state, "experts", source).get<int64_t>();
    const json& bias = member(state, "bias", source);
    if (!bias.is_array() || bias.empty()) throw FormatError(cat(source, ": 'bias' must be a non-empty list"));
    AuxFreeBalancer out(static_cast<int64_t>(bias.size()), experts, member(state, "step_size", source).get<double>());
    for (size_t l = 0; l < bias.size(); ++l) out.bias_[l] = doubles(bias[l], static_cast<size_t>(experts), source, cat("bias[", l, "]"));
    return out;
  });
}

}  // namespace chronos
