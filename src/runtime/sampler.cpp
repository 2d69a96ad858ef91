#include "chronos/runtime/sampler.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <cmath>

#include "chronos/core/error.h"
#include "model/cpu_kernels.h"

namespace chronos {

void SamplingOptions::validate() const {
  if (!(temperature > 0) || !std::isfinite(temperature))
    throw ConfigError(cat("temperature must be a finite number > 0 (got ", temperature, "); use greedy decoding for 0"));
  if (top_k < 0) throw ConfigError(cat("top_k must be >= 0 (got ", top_k, ")"));
  if (!(top_p > 0 && top_p <= 1)) throw ConfigError(cat("top_p must be in (0, 1] (got ", top_p, ")"));
  if (!(min_p >= 0 && min_p < 1)) throw ConfigError(cat("min_p must be in [0, 1) (got ", min_p, ")"));
  if (!(repetition_penalty > 0) || !std::isfinite(repetition_penalty)) throw ConfigError(cat("repetition_penalty must be > 0 (got ", repetition_penalty, ")"));
  if (!(frequency_penalty >= -2 && frequency_penalty <= 2))
    throw ConfigError(cat("frequency_penalty must be in [-2, 2] (got ", frequency_penalty, ")"));
  if (!(presence_penalty >= -2 && presence_penalty <= 2))
    throw ConfigError(cat("presence_penalty must be in [-2, 2] (got ", presence_penalty, ")"));
}

Sampler::Sampler(SamplingOptions options) : options_(options), generator_(at::make_generator<at::CPUGeneratorImpl>(options.seed)) {
  options_.validate();
}

bool Sampler::penalises(const std::vector<int64_t>& context) const {
  return !context.empty() && (options_.repetition_penalty != 1.0 || options_.frequency_penalty != 0 || options_.presence_penalty != 0);
}

at::Tensor Sampler::penalised(const at::Tensor& logits, const std::vector<int64_t>& context) const {
  at::Tensor scores = logits.reshape({-1}).to(at::kFloat);
  if (!penalises(context)) return scores;
  const bool additive = options_.frequency_penalty != 0 || options_.presence_penalty != 0;
  scores = scores.clone();
  const at::Tensor ids = at::tensor(context, at::kLong).to(scores.device());
  if (options_.repetition_penalty != 1.0) {
    const at::Tensor seen = scores.index_select(0, ids);
    const double p = options_.repetition_penalty;
    // index_put_ with repeated ids writes the same value, so each token is penalised once.
    scores.index_put_({ids}, at::where(seen > 0, seen / p, seen * p));
  }
  if (additive) {
    const at::Tensor counts = at::bincount(ids, /*weights=*/{}, scores.size(0)).to(at::kFloat);
    scores -= counts * options_.frequency_penalty + (counts > 0).to(at::kFloat) * options_.presence_penalty;
  }
  return scores;
}

at::Tensor Sampler::probabilities(const at::Tensor& logits, const std::vector<int64_t>& context) const {
  at::Tensor scores = penalised(logits, context) / options_.temperature;
  const int64_t V = scores.size(0);
  const float neg_inf = -std::numeric_limits<float>::infinity();
  if (options_.top_k > 0 && options_.top_k < V) {
    const at::Tensor kth = std::get<0>(scores.topk(options_.top_k)).min();
    scores = scores.masked_fill(scores < kth, neg_inf);
  }
  at::Tensor probs = at::softmax(scores, 0);
  if (options_.top_p < 1.0) {
    auto [sorted, order] = probs.sort(/*dim=*/0, /*descending=*/true);
    // Keep a token while the mass before it is below p: the smallest prefix reaching p.
    const at::Tensor before = sorted.cumsum(0) - sorted;
    const at::Tensor drop_sorted = before >= options_.top_p;
    probs = probs.masked_fill(at::zeros_like(drop_sorted).scatter(0, order, drop_sorted), 0.0);
  }
  if (options_.min_p > 0) probs = probs.masked_fill(probs < options_.min_p * probs.max(), 0.0);
  return probs / probs.sum();
}

int64_t Sampler::next(const at::Tensor& logits, const std::vector<int64_t>& context) {
  if (options_.greedy) {
    // A step's one host read: a pass over the vocabulary, not tensor operations and a copy (without
    // penalties straight from the logits: their views and cast were 3% of a fine.json int8 step).
    const at::Tensor scores = penalises(context) || !cpu::is_plain_float(logits) ? penalised(logits, context) : logits;
    if (scores.device().is_cpu() && scores.is_contiguous() && scores.numel() > 0) return cpu::first_max(scores.data_ptr<float>(), scores.numel());
    return scores.argmax().item<int64_t>();
  }
  const at::Tensor probs = probabilities(logits, context).to(at::kCPU);
  return at::multinomial(probs, 1, /*replacement=*/false, generator_).item<int64_t>();
}

}  // namespace chronos
