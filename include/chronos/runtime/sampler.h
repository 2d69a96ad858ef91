// Next-token sampling: repetition, frequency and presence penalties, temperature, top-k, top-p, min-p, then a draw from a
// seeded generator, or greedy argmax. The penalty divides positive logits and multiplies negative
// ones (the reference divides regardless of sign [Q16], which rewards repeating negative tokens).
#pragma once

#include <ATen/Tensor.h>
#include <ATen/core/Generator.h>

#include <cstdint>
#include <vector>

namespace chronos {

struct SamplingOptions {
  bool greedy = false;              // argmax after the repetition penalty; the other knobs are ignored
  double temperature = 0.85;        // > 0; logits are divided by it
  int64_t top_k = 50;               // keep the k most likely tokens (0 = off)
  double top_p = 0.85;              // keep the smallest set with cumulative probability >= p (1 = off)
  double min_p = 0.0;               // drop tokens below min_p * max probability (0 = off)
  double repetition_penalty = 1.0;  // > 0; applied once to every token already in the context (1 = off)
  // OpenAI's additive penalties, in [-2, 2]: a token's logit drops by frequency_penalty times its
  // count in the context plus presence_penalty when it occurs there at all (0 = off).
  double frequency_penalty = 0.0;
  double presence_penalty = 0.0;
  uint64_t seed = 0;                // seeds the draw: equal seeds give equal samples

  // Throws ConfigError naming the option and its rule.
  void validate() const;
};

class Sampler {
 public:
  explicit Sampler(SamplingOptions options);

  // logits: the next position's V scores, [V] or any shape of V values (any device/dtype). `context` holds the ids seen so far
  // (prompt and generated); only the repetition penalty reads it.
  int64_t next(const at::Tensor& logits, const std::vector<int64_t>& context);

  // The processed distribution (after penalty, temperature and the truncations), fp32 [V] on the
  // logits' device; exposed for tests and diagnostics.
  at::Tensor probabilities(const at::Tensor& logits, const std::vector<int64_t>& context) const;

  const SamplingOptions& options() const { return options_; }

 private:
  // Whether a penalty changes scores after `context`.
  bool penalises(const std::vector<int64_t>& context) const;
  at::Tensor penalised(const at::Tensor& logits, const std::vector<int64_t>& context) const;

  SamplingOptions options_;
  at::Generator generator_;
};

}  // namespace chronos
