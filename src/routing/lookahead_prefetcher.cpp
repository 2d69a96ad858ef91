#include "chronos/routing/lookahead_prefetcher.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "chronos/core/error.h"

namespace chronos {
namespace {

constexpr double kOlderTokenFactor = 0.6;  // recency score of each older token relative to the next

// The last position's rows of lookahead_probs ([B,S,K+1,E] or [B,S,K+1,L,E]), batch 0, as float
// [K+1, 1, E] (layer-averaged) or [K+1, L, E].
at::Tensor last_rows(const at::Tensor& lookahead_probs, int64_t num_layers, int64_t num_experts) {
  const bool per_layer = lookahead_probs.dim() == 5;
  if ((lookahead_probs.dim() != 4 && !per_layer) || lookahead_probs.size(-1) != num_experts || lookahead_probs.size(2) < 1 ||
      (per_layer && lookahead_probs.size(3) != num_layers))
    throw InvalidArgument(cat("LookaheadPrefetcher: lookahead_probs of shape ", lookahead_probs.sizes(), ", expected [B,S,K+1,",
                              num_experts, "] or [B,S,K+1,", num_layers, ",", num_experts, "]"));
  const at::Tensor rows = lookahead_probs.select(0, 0).select(0, lookahead_probs.size(1) - 1).detach().to(at::kCPU, at::kFloat);
  return (per_layer ? rows : rows.unsqueeze(1)).contiguous();
}

}  // namespace

void LookaheadConfig::validate() const {
  if (router_top_k < 0) throw ConfigError(cat("LookaheadConfig.router_top_k must be >= 0 (got ", router_top_k, ")"));
  if (!(router_floor >= 0)) throw ConfigError(cat("LookaheadConfig.router_floor must be >= 0 (got ", router_floor, ")"));
  if (history < 0) throw ConfigError(cat("LookaheadConfig.history must be >= 0 (got ", history, ")"));
  if (!(recency_score > 0 && recency_score <= 1))
    throw ConfigError(cat("LookaheadConfig.recency_score must be in (0, 1] (got ", recency_score, ")"));
  if (frequent < 0) throw ConfigError(cat("LookaheadConfig.frequent must be >= 0 (got ", frequent, ")"));
  if (compute_horizon < 0) throw ConfigError(cat("LookaheadConfig.compute_horizon must be >= 0 (got ", compute_horizon, ")"));
}

LookaheadPrefetcher::LookaheadPrefetcher(const ModelConfig& model, LookaheadConfig config, int64_t compute_slots, int64_t ram_slots)
    : num_layers_(model.num_hidden_layers),
      num_experts_(model.num_experts),
      lookahead_steps_(model.has_lookahead_router() ? model.lookahead_steps : 1),
      config_(config) {
  config_.validate();
  if (compute_slots < 0) throw InvalidArgument(cat("LookaheadPrefetcher: compute_slots must be >= 0 (got ", compute_slots, ")"));
  if (ram_slots < 0) throw InvalidArgument(cat("LookaheadPrefetcher: ram_slots must be >= 0 (got ", ram_slots, ")"));
  experts_per_token_ = model.num_experts_per_tok;
  top_k_ = std::min(config_.router_top_k > 0 ? config_.router_top_k : model.num_experts_per_tok, num_experts_);
  compute_limit_ = std::max<int64_t>(0, compute_slots - model.num_experts_per_tok);
  request_limit_ = ram_slots;
}

void LookaheadPrefetcher::observe(const std::vector<at::Tensor>& selected) {
  if (static_cast<int64_t>(selected.size()) != num_layers_)
    throw InvalidArgument(cat("LookaheadPrefetcher::observe: ", selected.size(), " layers of routing, expected ", num_layers_));
  std::vector<std::vector<int64_t>> used(static_cast<size_t>(num_layers_));
  for (int64_t l = 0; l < num_layers_; ++l) {
    // [B,S,k]: batch 0, the last position, read on the host (no copy when already CPU long).
    const at::Tensor ids = selected[static_cast<size_t>(l)].to(at::kCPU, at::kLong).contiguous();
    if (ids.dim() != 3) throw InvalidArgument(cat("LookaheadPrefetcher::observe: routing of layer ", l, " has shape ", ids.sizes(), ", expected [B,S,k]"));
    const int64_t k = ids.size(2);
    const int64_t* p = ids.data_ptr<int64_t>() + (ids.size(1) - 1) * k;
    for (int64_t i = 0; i < k; ++i) {
      if (p[i] < 0 || p[i] >= num_experts_) throw InvalidArgument(cat("LookaheadPrefetcher::observe: expert id ", p[i], " in layer ", l));
      used[static_cast<size_t>(l)].push_back(p[i]);
    }
  }
  recent_.push_front(std::move(used));
  while (static_cast<int64_t>(recent_.size()) > config_.history) recent_.pop_back();
}

void LookaheadPrefetcher::reset_history() { recent_.clear(); }

std::vector<std::vector<ScoredExpert>> LookaheadPrefetcher::router_pairs(const at::Tensor& lookahead_probs) const {
  if (!lookahead_probs.defined()) return std::vector<std::vector<ScoredExpert>>(static_cast<size_t>(lookahead_steps_));
  const at::Tensor rows = last_rows(lookahead_probs, num_layers_, num_experts_);
  const int64_t rows_per_step = rows.size(1);  // 1 (layer-averaged) or L
  const float* p = rows.data_ptr<float>();
  const int64_t K = std::min(rows.size(0) - 1, lookahead_steps_);
  std::vector<std::vector<ScoredExpert>> out(static_cast<size_t>(std::max<int64_t>(0, K)));
  std::vector<int64_t> ids(static_cast<size_t>(num_experts_));
  for (int64_t j = 1; j <= K; ++j)
    for (int64_t l = 0; l < num_layers_; ++l) {
      const float* row = p + (j * rows_per_step + (rows_per_step > 1 ? l : 0)) * num_experts_;
      std::iota(ids.begin(), ids.end(), 0);
      std::stable_sort(ids.begin(), ids.end(), [&](int64_t a, int64_t b) { return row[a] > row[b]; });
      for (int64_t i = 0; i < top_k_; ++i)
        out[static_cast<size_t>(j - 1)].push_back({{static_cast<int32_t>(l), static_cast<int32_t>(ids[static_cast<size_t>(i)])},
                                                    row[ids[static_cast<size_t>(i)]]});
    }
  return out;
}

std::vector<std::vector<ScoredExpert>> LookaheadPrefetcher::predict(const at::Tensor& lookahead_probs, const at::Tensor& frequency) const {
  at::Tensor freq;
  if (frequency.defined() && config_.frequent > 0) {
    if (frequency.dim() != 2 || frequency.size(0) != num_layers_ || frequency.size(1) != num_experts_)
      throw InvalidArgument(cat("LookaheadPrefetcher: frequency of shape ", frequency.sizes(), ", expected [", num_layers_, ", ",
                                num_experts_, "]"));
    freq = frequency.to(at::kCPU, at::kFloat).contiguous();
  }
  const std::vector<std::vector<ScoredExpert>> router = router_pairs(lookahead_probs);
  std::vector<std::vector<ScoredExpert>> out(router.size());
  std::vector<float> score(static_cast<size_t>(num_experts_));
  for (size_t jj = 0; jj < router.size(); ++jj) {
    for (int64_t l = 0; l < num_layers_; ++l) {
      std::fill(score.begin(), score.end(), 0.0f);
      for (const ScoredExpert& r : router[jj])
        if (r.key.layer == l && r.probability >= config_.router_floor) score[static_cast<size_t>(r.key.expert)] = r.probability;
      double recency = config_.recency_score;
      for (const auto& token : recent_) {
        for (int64_t e : token[static_cast<size_t>(l)]) score[static_cast<size_t>(e)] = std::max(score[static_cast<size_t>(e)], static_cast<float>(recency));
        recency *= kOlderTokenFactor;
      }
      if (freq.defined()) {
        const float* f = freq.data_ptr<float>() + l * num_experts_;
        std::vector<int64_t> ids(static_cast<size_t>(num_experts_));
        std::iota(ids.begin(), ids.end(), 0);
        std::stable_sort(ids.begin(), ids.end(), [&](int64_t a, int64_t b) { return f[a] > f[b]; });
        for (int64_t i = 0; i < std::min(config_.frequent, num_experts_); ++i) {
          const int64_t e = ids[static_cast<size_t>(i)];
          if (f[static_cast<size_t>(e)] > 0) score[static_cast<size_t>(e)] = std::max(score[static_cast<size_t>(e)], static_cast<float>(f[static_cast<size_t>(e)]));
        }
      }
      std::vector<ScoredExpert> layer;
      for (int64_t e = 0; e < num_experts_; ++e)
        if (score[static_cast<size_t>(e)] > 0) layer.push_back({{static_cast<int32_t>(l), static_cast<int32_t>(e)}, score[static_cast<size_t>(e)]});
      std::stable_sort(layer.begin(), layer.end(), [](const ScoredExpert& a, const ScoredExpert& b) { return a.probability > b.probability; });
      out[jj].insert(out[jj].end(), layer.begin(), layer.end());
    }
  }
  return out;
}

std::vector<PrefetchRequest> LookaheadPrefetcher::requests(const std::vector<std::vector<ScoredExpert>>& predicted, int64_t step) const {
  std::vector<PrefetchRequest> out;
  std::vector<bool> taken(static_cast<size_t>(num_layers_ * num_experts_), false);
  int64_t to_compute = 0;
  // Per offset, first each layer's num_experts_per_tok most likely (what the step will use, if the
  // prediction is right), then the rest.
  std::vector<std::pair<int64_t, ScoredExpert>> order;
  for (size_t jj = 0; jj < predicted.size(); ++jj) {
    std::vector<ScoredExpert> core, rest;
    std::vector<int64_t> in_layer(static_cast<size_t>(num_layers_), 0);
    for (const ScoredExpert& s : predicted[jj])
      (in_layer[static_cast<size_t>(s.key.layer)]++ < experts_per_token_ ? core : rest).push_back(s);
    for (const auto* part : {&core, &rest})
      for (const ScoredExpert& s : *part) order.emplace_back(static_cast<int64_t>(jj) + 1, s);
  }
  for (const auto& [j, s] : order) {
    if (static_cast<int64_t>(out.size()) >= request_limit_) return out;
    const size_t index = static_cast<size_t>(s.key.index(num_experts_));
    if (taken[index]) continue;  // asked for at an earlier offset
    taken[index] = true;
    PrefetchRequest r;
    r.key = s.key;
    r.deadline_step = step + j;
    r.probability = s.probability;
    r.target = Tier::ram;
    if (j <= config_.compute_horizon && to_compute < compute_limit_) {
      r.target = Tier::compute;
      ++to_compute;
    }
    out.push_back(r);
  }
  return out;
}

}  // namespace chronos
