#include "chronos/runtime/offload_engine.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iterator>

#include "chronos/core/error.h"

namespace chronos {

PredictMode parse_predict_mode(const std::string& name) {
  if (name == "none") return PredictMode::none;
  if (name == "lookahead") return PredictMode::lookahead;
  if (name == "intent") return PredictMode::intent;
  if (name == "both") return PredictMode::both;
  throw InvalidArgument(cat("predict mode: expected none, lookahead, intent or both (got \"", name, "\")"));
}

std::string to_string(PredictMode mode) {
  switch (mode) {
    case PredictMode::none: return "none";
    case PredictMode::lookahead: return "lookahead";
    case PredictMode::intent: return "intent";
    case PredictMode::both: return "both";
  }
  return "?";
}

void OffloadEngineConfig::validate() const {
  lookahead.validate();
  layer_ahead.validate();
  prefill.validate();
  if (!(frequency_decay >= 0 && frequency_decay < 1))
    throw ConfigError(cat("OffloadEngineConfig.frequency_decay must be in [0, 1) (got ", frequency_decay, ")"));
}

OffloadEngine::OffloadEngine(ChronosForCausalLMImpl& model, ExpertStore& store, OffloadEngineConfig config,
                             const IntentClassifierImpl* classifier)
    : model_(model),
      store_(store),
      config_((config.validate(), config)),
      classifier_(classifier),
      recorder_(store, config.trace),
      predictor_(model.config(), PredictorBudget{store.compute_slots(), store.ram_slots()}, config.frequency_decay),
      lookahead_(model.config(), config.lookahead, store.compute_slots(), store.ram_slots()),
      layer_ahead_(model, config.layer_ahead) {
  recorder_.on_acquire = [this](int64_t layer, const std::vector<int64_t>& experts, ExpertTraceRecorder::Clock::time_point at) {
    for (int64_t e : experts) {
      const int64_t index = layer * model_.config().num_experts + e;
      const auto it = issued_.find(index);
      if (it == issued_.end()) continue;
      ++used_prefetches_;
      lead_ms_ += std::chrono::duration<double, std::milli>(at - it->second.at).count();
      issued_.erase(it);
    }
  };
  recorder_.on_announce = [this](int64_t layer, const std::vector<int64_t>& experts) {
    for (int64_t e : experts) {
      const ExpertKey key{static_cast<int32_t>(layer), static_cast<int32_t>(e)};
      const ExpertState s = store_.state(key);
      if (s != ExpertState::cold && s != ExpertState::reading) continue;
      if (!issued_.count(key.index(model_.config().num_experts))) ++step_misses_.unpredicted;
      else if (s == ExpertState::reading) ++step_misses_.late;
      else ++step_misses_.not_started;
    }
  };
}

GenerationResult OffloadEngine::generate(const std::vector<int64_t>& prompt, GenerationOptions options, const TokenCallback& on_token) {
  const std::unique_ptr<DecodeRun> run = start(prompt, std::move(options));
  return run_to_end(*run, on_token);
}

std::unique_ptr<DecodeRun> OffloadEngine::start(const std::vector<int64_t>& prompt, GenerationOptions options) {
  metrics_.clear();
  issued_.clear();
  predicted_.clear();
  last_prefill_ = {};
  recorder_.take_trace();
  lookahead_.reset_history();
  last_lookahead_ = at::Tensor();
  prompt_ = prompt;
  options.expert_source = &recorder_;
  options.observer = this;
  return std::make_unique<DecodeRun>(model_, prompt, std::move(options));
}

void OffloadEngine::issue(const std::vector<PrefetchRequest>& requests) {
  if (requests.empty()) return;
  const auto now = ExpertTraceRecorder::Clock::now();
  for (const PrefetchRequest& r : requests) {
    auto [it, added] = issued_.emplace(r.key.index(model_.config().num_experts), Issued{now, r.deadline_step});
    if (!added) it->second.deadline_step = std::max(it->second.deadline_step, r.deadline_step);  // keeps the earliest time
  }
  recorder_.prefetch(requests);
}

void OffloadEngine::begin_step(int64_t step) {
  recorder_.begin_step(step);
  // A prefetch whose deadline has passed unused no longer counts toward a lead time.
  for (auto it = issued_.begin(); it != issued_.end();) it = it->second.deadline_step < step ? issued_.erase(it) : std::next(it);
  step_start_ = store_.stats();
  used_prefetches_ = 0;
  lead_ms_ = 0;
  step_misses_ = {};
  layer_ahead_pairs_.assign(static_cast<size_t>(config_.layer_ahead.distance), {});
  if (step == 0 && uses_intent()) {
    const at::Tensor intent = classifier_ && !prompt_.empty() ? classifier_->predict(prompt_) : at::Tensor();
    last_prefill_ = plan_prefill(predictor_.predict(intent), store_.manifest(), config_.prefill);
    issue(last_prefill_.requests);
  }
}

void OffloadEngine::on_lookahead(int64_t step, const at::Tensor& lookahead_probs) {
  Prediction& p = predicted_[step];
  const auto predicted = lookahead_.predict(lookahead_probs, predictor_.frequency());
  for (const auto& offset : predicted) {
    p.pairs.emplace_back();
    for (const ScoredExpert& s : offset) p.pairs.back().push_back(s.key);
  }
  for (const auto& offset : lookahead_.router_pairs(lookahead_probs)) {
    p.router.emplace_back();
    for (const ScoredExpert& s : offset) p.router.back().push_back(s.key);
  }
  if (uses_lookahead()) issue(lookahead_.requests(predicted, step));
  last_lookahead_ = lookahead_probs;
}

void OffloadEngine::on_moe_input(int64_t step, int64_t layer, const at::Tensor& moe_input) {
  if (step == 0 || !uses_lookahead()) return;  // the prefill announces all it routes at once
  const auto predicted = layer_ahead_.predict(layer, moe_input);
  for (size_t d = 0; d < predicted.size() && d < layer_ahead_pairs_.size(); ++d)
    for (const ScoredExpert& s : predicted[d]) layer_ahead_pairs_[d].push_back(s.key);
  issue(LayerAheadPredictor::requests(predicted, step));
}

void OffloadEngine::end_step(int64_t step, const ForwardOutput& output) {
  TokenMetrics m;
  m.step = step;
  m.set_store_delta(step_start_, store_.stats());
  m.prefetched_used = used_prefetches_;
  m.prefetch_lead_ms = used_prefetches_ > 0 ? lead_ms_ / static_cast<double>(used_prefetches_) : 0;
  m.late = step_misses_.late;
  m.not_started = step_misses_.not_started;
  m.unpredicted = step_misses_.unpredicted;

  // What the last position routed to, per layer, copied to the host once: the experts the earlier
  // predictions are scored on, and what the prefetcher and the running frequency learn from.
  const int64_t L = model_.config().num_hidden_layers;
  const bool routed = output.selected.size() == static_cast<size_t>(L);
  std::vector<ExpertKey> actual;
  std::vector<at::Tensor> last;  // per layer, on the host: [1,S,k] (its last position counts) or [1,1,k]
  if (routed) {
    const bool on_host = std::all_of(output.selected.begin(), output.selected.end(), [](const at::Tensor& ids) {
      return ids.device().is_cpu() && ids.scalar_type() == at::kLong && ids.is_contiguous() && ids.dim() == 3;
    });
    if (on_host) {  // the CPU decode path: read the ids in place, no tensor operations
      last = output.selected;
      for (int64_t l = 0; l < L; ++l) {
        const at::Tensor& ids = output.selected[static_cast<size_t>(l)];
        const int64_t k = ids.size(2);
        const int64_t* p = ids.data_ptr<int64_t>() + (ids.size(1) - 1) * k;  // batch 0, last position
        for (int64_t i = 0; i < k; ++i) actual.push_back({static_cast<int32_t>(l), static_cast<int32_t>(p[i])});
      }
    } else {  // one copy to the host for all layers
      std::vector<at::Tensor> rows;
      for (const at::Tensor& ids : output.selected) rows.push_back(ids.select(0, 0).select(0, ids.size(1) - 1));
      const at::Tensor host = at::stack(rows).to(at::kCPU, at::kLong).contiguous();  // [L,k]
      const int64_t* p = host.data_ptr<int64_t>();
      for (int64_t l = 0; l < L; ++l) {
        last.push_back(host[l].view({1, 1, -1}));
        for (int64_t i = 0; i < host.size(1); ++i) actual.push_back({static_cast<int32_t>(l), static_cast<int32_t>(p[l * host.size(1) + i])});
      }
    }
  }
  const int64_t K = lookahead_.steps();
  m.lookahead.resize(static_cast<size_t>(std::max<int64_t>(0, K)));
  m.router.resize(m.lookahead.size());
  for (int64_t j = 1; j <= K; ++j) {
    const auto it = predicted_.find(step - j);
    if (it == predicted_.end() || static_cast<int64_t>(it->second.pairs.size()) < j) continue;
    m.lookahead[static_cast<size_t>(j - 1)] = compare_expert_sets(it->second.pairs[static_cast<size_t>(j - 1)], actual);
    m.router[static_cast<size_t>(j - 1)] = compare_expert_sets(it->second.router[static_cast<size_t>(j - 1)], actual);
  }
  predicted_.erase(step - K);
  if (step >= 1 && uses_lookahead()) {
    // Layer-ahead predictions at distance d exist for layers d..L-1 only.
    for (size_t d = 1; d <= layer_ahead_pairs_.size(); ++d) {
      std::vector<ExpertKey> reachable;
      for (const ExpertKey& key : actual)
        if (key.layer >= static_cast<int32_t>(d)) reachable.push_back(key);
      m.layer_ahead.push_back(compare_expert_sets(layer_ahead_pairs_[d - 1], reachable));
    }
  }
  metrics_.record(std::move(m));

  if (!routed) return;
  // The last position's routing is what the next token's prediction builds on; the running
  // frequency (the hot set's and the prefetcher's) learns from decode tokens only (the prefill's
  // positions are not what decode needs).
  lookahead_.observe(last);
  if (step >= 1) predictor_.observe(last);
  if (!model_.config().has_lookahead_router()) {
    // No LookaheadRouter (the Hugging Face families): the next token's experts are predicted from
    // recency and frequency now, a whole step ahead; the layer-ahead signal adds to it while it runs.
    on_lookahead(step, at::Tensor());
  } else if (uses_lookahead() && last_lookahead_.defined()) {
    // The same prediction again with this step's routing known: what the block-0 requests could not
    // know yet (above all after the prefill, when there was no decode history at all).
    issue(lookahead_.requests(lookahead_.predict(last_lookahead_, predictor_.frequency()), step));
  }
}

}  // namespace chronos
