// Token and sequence log-probabilities of a causal LM's logits, the building block of the SFT, DPO,
// ORPO, GRPO and distillation objectives. fp32 maths (fp64 inputs stay fp64).
//
// Memory: log p(y) is computed as logit[y] - logsumexp(logits), so at most one fp32 copy of the
// logits exists (none when they already are fp32) and no [B,T,V] log-softmax output is kept for
// the backward pass.
#pragma once

#include <ATen/ATen.h>

namespace chronos {

// log softmax(logits[b,t])[targets[b,t]] for every position: [B,T] fp32, with autograd through
// logits. logits [B,T,V] (any float dtype); targets [B,T] integer ids < V; a negative target
// (-100, the ignore label) gives 0 there.
at::Tensor target_log_probs(const at::Tensor& logits, const at::Tensor& targets);

// Next-token form: out[b,t] = log p(tokens[b,t+1] | logits[b,t]), [B,S-1]
// = target_log_probs(logits[:, :-1], tokens[:, 1:]). logits [B,S,V], tokens [B,S], S >= 2.
at::Tensor next_token_log_probs(const at::Tensor& logits, const at::Tensor& tokens);

struct SequenceLogProbs {
  at::Tensor token_log_probs;  // [B,T], 0 where the mask is 0
  at::Tensor sum;              // [B] sum_t mask * log p (DPO's s, unnormalised)
  at::Tensor count;            // [B] number of scored tokens (float)
  at::Tensor mean;             // [B] sum / max(count, 1) (ORPO's and GRPO's length-normalised m)
};

// Reduces per-token log-probabilities [B,T] over mask [B,T] (nonzero = scored). Masked positions
// contribute nothing, even when their value is not finite.
SequenceLogProbs reduce_log_probs(const at::Tensor& token_log_probs, const at::Tensor& mask);

// Shifted form for a forward pass on `tokens`: logits [B,S,V], tokens [B,S], mask [B,S] aligned
// with `tokens` (mask[b,t] != 0: token t is scored, as predicted at position t-1; column 0 is
// never scored). Undefined mask: every non-negative token is scored (labels with -100 ignored).
SequenceLogProbs sequence_log_probs(const at::Tensor& logits, const at::Tensor& tokens, const at::Tensor& mask = {});

// Pretrain/SFT objective: mean over labels[:, 1:] >= 0 (-100 = ignored) of -log p(label | logits[:, :-1]).
// logits [B,S,V], labels [B,S] unshifted. 0 (not NaN) when every label is ignored (B9).
at::Tensor causal_lm_loss(const at::Tensor& logits, const at::Tensor& labels);

}  // namespace chronos
