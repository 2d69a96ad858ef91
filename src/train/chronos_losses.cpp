#include "chronos/train/chronos_losses.h"

#include <algorithm>
#include <cmath>

#include "chronos/core/error.h"
#include "chronos/model/causal_lm.h"
#include "chronos/model/config.h"
#include "chronos/train/global_batch.h"
#include "train/loss_utils.h"

namespace chronos {

using losses::check_config;
using losses::masked_mean;
using losses::require;
using losses::shape_of;
using losses::topk_set;
using losses::upcast;
using losses::valid_mask;

namespace {

constexpr double kProbFloor = 1e-9;  // the reference's clamp before every log

void require_probs(const at::Tensor& p, const char* what) {
  require(p.defined() && p.dim() == 3, cat(what, ": expected router probabilities [B,S,E] (got ", shape_of(p), ")"));
}

void require_mask(const at::Tensor& mask, int64_t B, int64_t S, const char* what) {
  if (!mask.defined()) return;
  require(mask.dim() == 2 && mask.size(0) == B && mask.size(1) == S,
          cat(what, ": mask must be [", B, ",", S, "] (got ", shape_of(mask), ")"));
}

void require_lookahead(const at::Tensor& q, const at::Tensor& teacher, const char* what) {
  require_probs(teacher, what);
  require(q.defined() && q.dim() == 4 && q.size(0) == teacher.size(0) && q.size(1) == teacher.size(1) &&
              q.size(3) == teacher.size(2) && q.size(2) >= 1,
          cat(what, ": lookahead probabilities must be [B,S,K+1,E] matching the router's ", shape_of(teacher),
              " (got ", shape_of(q), ")"));
}

int64_t clamp_k(int64_t k, int64_t E) { return std::max<int64_t>(1, std::min(k, E)); }

at::Tensor zero_like_scalar(const at::Tensor& t) { return at::zeros({}, t.options().dtype(losses::compute_dtype(t))); }

// Shared loop of the per-step lookahead terms: `per_token(q_j, t_j)` gives the [B,S-j] loss of step
// j; steps with no valid pair are left out of the average (the masked analogue of "skip j >= S").
template <typename PerToken>
at::Tensor average_over_steps(const at::Tensor& lookahead, const at::Tensor& teacher, const at::Tensor& mask,
                              PerToken per_token) {
  const int64_t B = teacher.size(0), S = teacher.size(1), K = lookahead.size(2) - 1;
  const at::Tensor q = upcast(lookahead);
  const at::Tensor t = teacher.detach().to(q.scalar_type());
  const at::Tensor valid = valid_mask(mask, {B, S}, q.device());
  std::vector<at::Tensor> sums, counts;
  for (int64_t j = 1; j <= K && j < S; ++j) {
    const at::Tensor q_j = q.narrow(1, 0, S - j).select(2, j);  // [B,S-j,E], predicted at t for t+j
    const at::Tensor t_j = t.narrow(1, j, S - j);                // [B,S-j,E], routing that happened at t+j
    const at::Tensor pair = valid.narrow(1, 0, S - j).logical_and(valid.narrow(1, j, S - j));
    sums.push_back(at::where(pair, per_token(q_j, t_j), at::zeros({}, q.options())).sum());
    counts.push_back(pair.sum().to(q.scalar_type()));
  }
  if (sums.empty()) return at::zeros({}, q.options());
  // Every step's pair count over the whole (data-parallel) batch, in one reduction.
  const at::Tensor total = sum_over_ranks(at::stack(counts));
  const at::Tensor steps = (total > 0).sum().to(q.scalar_type());
  return (at::stack(sums) / total.clamp_min(1)).sum() / steps.clamp_min(1);
}

}  // namespace

// ---- weights and stage defaults --------------------------------------------------------------------

RouterLossWeights RouterLossWeights::from_config(const ModelConfig& config) {
  RouterLossWeights w;
  w.balance = config.lambda_balance;
  w.temporal = config.lambda_temporal;
  w.router_locality = config.lambda_router_locality;
  w.lookahead = config.lambda_lookahead;
  w.lookahead_topk = config.lambda_lookahead_topk;
  w.lookahead_union = config.lambda_lookahead_union;
  w.router_anchor = config.lambda_router_anchor;
  return w;
}

void RouterLossWeights::validate() const {
  const std::pair<const char*, double> fields[] = {
      {"lambda_balance", balance},         {"lambda_temporal", temporal},
      {"lambda_router_locality", router_locality}, {"lambda_lookahead", lookahead},
      {"lambda_lookahead_topk", lookahead_topk},   {"lambda_lookahead_union", lookahead_union},
      {"lambda_router_anchor", router_anchor}};
  for (const auto& [name, value] : fields) check_config(std::isfinite(value) && value >= 0, name, "finite and >= 0", value);
}

const char* train_stage_name(TrainStage stage) {
  switch (stage) {
    case TrainStage::Pretrain: return "pretrain";
    case TrainStage::Sft: return "sft";
    case TrainStage::Dpo: return "dpo";
    case TrainStage::Orpo: return "orpo";
    case TrainStage::Grpo: return "grpo";
    case TrainStage::Distill: return "distill";
  }
  return "unknown";
}

TrainStage parse_train_stage(const std::string& name) {
  for (TrainStage s : {TrainStage::Pretrain, TrainStage::Sft, TrainStage::Dpo, TrainStage::Orpo, TrainStage::Grpo,
                       TrainStage::Distill})
    if (name == train_stage_name(s)) return s;
  throw ConfigError(cat("stage must be one of pretrain, sft, dpo, orpo, grpo, distill (got '", name, "')"));
}

RouterLossInputs RouterLossInputs::from_forward(const ForwardOutput& out, int64_t top_k, const at::Tensor& mask) {
  RouterLossInputs in;
  in.router_probs = out.router_probs;
  in.selected = out.selected;
  in.aux_raw = out.aux_raw;
  in.lookahead_probs = out.lookahead_probs;
  in.mask = mask;
  in.top_k = top_k;
  return in;
}

// ---- the terms -------------------------------------------------------------------------------------

at::Tensor temporal_loss(const at::Tensor& p_bar, const at::Tensor& mask) {
  require_probs(p_bar, "temporal_loss");
  const int64_t B = p_bar.size(0), S = p_bar.size(1);
  require_mask(mask, B, S, "temporal_loss");
  if (S < 2) return zero_like_scalar(p_bar);
  const at::Tensor p = upcast(p_bar);
  const at::Tensor valid = valid_mask(mask, {B, S}, p.device());
  const at::Tensor pair = valid.narrow(1, 1, S - 1).logical_and(valid.narrow(1, 0, S - 1));
  const at::Tensor step = p.narrow(1, 1, S - 1) - p.narrow(1, 0, S - 1);
  return masked_mean(step.pow(2).sum(-1), pair);
}

at::Tensor router_locality_loss(const at::Tensor& p_bar, int64_t k, const at::Tensor& mask) {
  require_probs(p_bar, "router_locality_loss");
  const int64_t B = p_bar.size(0), S = p_bar.size(1), E = p_bar.size(2);
  require_mask(mask, B, S, "router_locality_loss");
  if (S < 2) return zero_like_scalar(p_bar);
  k = clamp_k(k, E);
  const at::Tensor p = upcast(p_bar);
  const at::Tensor valid = valid_mask(mask, {B, S}, p.device());
  const at::Tensor pair = valid.narrow(1, 1, S - 1).logical_and(valid.narrow(1, 0, S - 1));
  const at::Tensor previous_set = topk_set(p.narrow(1, 0, S - 1).detach(), k);
  const at::Tensor mass = (p.narrow(1, 1, S - 1) * previous_set).sum(-1);
  return masked_mean(-(mass.clamp_min(kProbFloor) / static_cast<double>(k)).log(), pair);
}

at::Tensor lookahead_soft_ce(const at::Tensor& lookahead, const at::Tensor& teacher, const at::Tensor& mask) {
  require_lookahead(lookahead, teacher, "lookahead_soft_ce");
  require_mask(mask, teacher.size(0), teacher.size(1), "lookahead_soft_ce");
  return average_over_steps(lookahead, teacher, mask, [](const at::Tensor& q_j, const at::Tensor& t_j) {
    return -(t_j * q_j.clamp_min(kProbFloor).log()).sum(-1);
  });
}

at::Tensor lookahead_topk_loss(const at::Tensor& lookahead, const at::Tensor& teacher, int64_t k,
                               const at::Tensor& mask) {
  require_lookahead(lookahead, teacher, "lookahead_topk_loss");
  require_mask(mask, teacher.size(0), teacher.size(1), "lookahead_topk_loss");
  k = clamp_k(k, teacher.size(2));
  return average_over_steps(lookahead, teacher, mask, [k](const at::Tensor& q_j, const at::Tensor& t_j) {
    const at::Tensor mass = (q_j * topk_set(t_j, k)).sum(-1);
    return -(mass.clamp_min(kProbFloor) / static_cast<double>(k)).log();
  });
}

at::Tensor lookahead_union_loss(const at::Tensor& lookahead, const at::Tensor& teacher, int64_t k,
                                const at::Tensor& mask) {
  require_lookahead(lookahead, teacher, "lookahead_union_loss");
  const int64_t B = teacher.size(0), S = teacher.size(1), E = teacher.size(2), K = lookahead.size(2) - 1;
  require_mask(mask, B, S, "lookahead_union_loss");
  if (K < 1 || S <= K) return zero_like_scalar(lookahead);
  k = clamp_k(k, E);
  const int64_t n = S - K;
  const at::Tensor q = upcast(lookahead);
  const at::Tensor t = teacher.detach().to(q.scalar_type());
  const at::Tensor valid = valid_mask(mask, {B, S}, q.device());
  at::Tensor needed = at::zeros({B, n, E}, q.options());
  at::Tensor window_real = valid.narrow(1, 0, n);
  for (int64_t j = 1; j <= K; ++j) {
    needed = at::maximum(needed, topk_set(t.narrow(1, j, n), k));
    window_real = window_real.logical_and(valid.narrow(1, j, n));
  }
  const at::Tensor predicted = q.narrow(1, 0, n).narrow(2, 1, K).amax(2);  // max_j Q[t,j]
  const at::Tensor mass = (predicted * needed).sum(-1).clamp_min(kProbFloor);
  return masked_mean(-(mass / needed.sum(-1).clamp_min(1)).log(), window_real);
}

at::Tensor load_balance_value(const at::Tensor& probs, const at::Tensor& selected, const at::Tensor& mask) {
  require_probs(probs, "load_balance_value");
  const int64_t B = probs.size(0), S = probs.size(1), E = probs.size(2);
  require(selected.defined() && selected.dim() == 3 && selected.size(0) == B && selected.size(1) == S,
          cat("load_balance_value: selected must be [", B, ",", S, ",k] (got ", shape_of(selected), ")"));
  require_mask(mask, B, S, "load_balance_value");
  const int64_t N = B * S, k = selected.size(2);
  const at::Tensor p = upcast(probs).reshape({N, E});
  const at::Tensor valid = valid_mask(mask, {B, S}, p.device()).reshape({N});
  const at::Tensor weight = valid.to(p.scalar_type());
  // Routed slots per expert and real tokens, over the whole (data-parallel) batch in one reduction.
  const at::Tensor counts = sum_over_ranks(at::cat(
      {at::zeros({E}, p.options()).index_add(0, selected.reshape({N * k}).to(p.device(), at::kLong), weight.repeat_interleave(k)),
       weight.sum().reshape({1})}));
  const at::Tensor tokens = counts[E].clamp_min(1);
  // f_e: share of routed slots (no gradient, as in the reference); mean_p carries the gradient.
  const at::Tensor f = counts.narrow(0, 0, E) / tokens;
  const at::Tensor mean_p = at::where(valid.unsqueeze(1), p, at::zeros({}, p.options())).sum(0) / tokens;
  return static_cast<double>(E) * (f.detach() * mean_p).sum();
}

at::Tensor router_anchor_kl(const at::Tensor& current, const at::Tensor& reference, const at::Tensor& mask) {
  require_probs(current, "router_anchor_kl");
  require(reference.defined() && reference.sizes() == current.sizes(),
          cat("router_anchor_kl: reference probabilities must match the current ", shape_of(current),
              " position by position (got ", shape_of(reference), "); compute them on the same tokens"));
  require_mask(mask, current.size(0), current.size(1), "router_anchor_kl");
  const at::Tensor r = upcast(current);
  const at::Tensor r_ref = reference.detach().to(r.device(), r.scalar_type());
  const at::Tensor kl = (r * (r.clamp_min(kProbFloor).log() - r_ref.clamp_min(kProbFloor).log())).sum(-1);
  return masked_mean(kl, valid_mask(mask, {current.size(0), current.size(1)}, r.device()));
}

// ---- the regulariser -------------------------------------------------------------------------------

RouterLossTerms chronos_router_losses(const RouterLossInputs& in, const RouterLossWeights& w, bool compute_all) {
  w.validate();
  require(!in.router_probs.empty(), "chronos_router_losses: no router probabilities (no MoE layers)");
  const at::Tensor& first = in.router_probs.front();
  require_probs(first, "chronos_router_losses");
  const int64_t B = first.size(0), S = first.size(1), E = first.size(2);
  for (const at::Tensor& p : in.router_probs)
    require(p.defined() && p.sizes() == first.sizes(),
            cat("chronos_router_losses: every layer's router probabilities must be ", shape_of(first), " (got ",
                shape_of(p), ")"));
  require_mask(in.mask, B, S, "chronos_router_losses");
  const int64_t k = clamp_k(in.top_k, E);

  std::vector<at::Tensor> layers;
  layers.reserve(in.router_probs.size());
  for (const at::Tensor& p : in.router_probs) layers.push_back(upcast(p));
  const at::Tensor p_bar = at::stack(layers, 0).mean(0);  // P-bar: layer average, keeps the gradient
  const at::Tensor teacher = p_bar.detach();

  RouterLossTerms terms;
  const at::Tensor zero = at::zeros({}, p_bar.options());
  for (at::Tensor* slot : {&terms.balance, &terms.temporal, &terms.locality, &terms.lookahead, &terms.lookahead_topk,
                           &terms.lookahead_union, &terms.anchor})
    *slot = at::zeros({}, p_bar.options());
  at::Tensor total = at::zeros({}, p_bar.options());
  auto add = [&](at::Tensor& slot, bool& active, double lambda, bool allowed, auto compute) {
    active = allowed && lambda > 0;
    if (!active && !(allowed && compute_all)) return;
    slot = compute();
    if (active) total = total + lambda * slot;
  };

  // Balance: recomputed over the real tokens when the routed ids are given, else the model's values.
  const bool have_balance = !in.selected.empty() || !in.aux_raw.empty();
  require(have_balance || w.balance <= 0,
          "chronos_router_losses: lambda_balance > 0 needs `selected` or `aux_raw` from the forward pass");
  add(terms.balance, terms.balance_active, w.balance, have_balance, [&] {
    at::Tensor sum = zero;
    if (!in.selected.empty()) {
      require(in.selected.size() == in.router_probs.size(),
              cat("chronos_router_losses: ", in.selected.size(), " selected tensors for ", in.router_probs.size(), " layers"));
      for (size_t l = 0; l < layers.size(); ++l) sum = sum + load_balance_value(layers[l], in.selected[l], in.mask);
    } else {
      for (const at::Tensor& a : in.aux_raw) sum = sum + a.to(p_bar.device(), p_bar.scalar_type());
    }
    return sum;
  });

  const bool sequence = S > 1;
  add(terms.temporal, terms.temporal_active, w.temporal, sequence, [&] { return temporal_loss(p_bar, in.mask); });
  add(terms.locality, terms.locality_active, w.router_locality, sequence,
      [&] { return router_locality_loss(p_bar, k, in.mask); });

  // A per-layer LookaheadRouter [B,S,K+1,L,E] learns each layer's own future routing: the layers fold
  // into the batch, so the same terms apply with each layer's router probabilities as the teacher.
  at::Tensor q = in.lookahead_probs, lookahead_teacher = teacher, lookahead_mask = in.mask;
  if (q.defined() && q.dim() == 5) {
    const int64_t L = static_cast<int64_t>(layers.size());
    require(q.size(3) == L, cat("chronos_router_losses: per-layer lookahead probabilities ", shape_of(q), " for ", L, " MoE layers"));
    const int64_t steps = q.size(2);
    q = q.permute({3, 0, 1, 2, 4}).reshape({L * B, S, steps, E});
    lookahead_teacher = at::stack(layers, 0).detach().reshape({L * B, S, E});
    if (in.mask.defined()) lookahead_mask = in.mask.repeat({L, 1});
  }
  if (q.defined()) require_lookahead(q, lookahead_teacher, "chronos_router_losses");
  const int64_t K = q.defined() ? q.size(2) - 1 : 0;
  // Top and union are nested under lambda_lookahead > 0 (the reference's gating; docs/training_losses.md).
  const bool lookahead_on = sequence && K > 0 && (w.lookahead > 0 || compute_all);
  const bool nested = sequence && K > 0 && w.lookahead > 0;
  add(terms.lookahead, terms.lookahead_active, w.lookahead, lookahead_on,
      [&] { return lookahead_soft_ce(q, lookahead_teacher, lookahead_mask); });
  add(terms.lookahead_topk, terms.lookahead_topk_active, nested ? w.lookahead_topk : 0.0, lookahead_on,
      [&] { return lookahead_topk_loss(q, lookahead_teacher, k, lookahead_mask); });
  add(terms.lookahead_union, terms.lookahead_union_active, nested ? w.lookahead_union : 0.0, lookahead_on && S > K,
      [&] { return lookahead_union_loss(q, lookahead_teacher, k, lookahead_mask); });

  const bool have_reference = in.reference_router_probs.defined();
  require(have_reference || w.router_anchor <= 0,
          "chronos_router_losses: lambda_router_anchor > 0 needs reference_router_probs (the frozen reference's "
          "layer-averaged router probabilities on the same batch)");
  add(terms.anchor, terms.anchor_active, w.router_anchor, have_reference,
      [&] { return router_anchor_kl(p_bar, in.reference_router_probs, in.mask); });

  terms.total = total;
  return terms;
}

}  // namespace chronos
