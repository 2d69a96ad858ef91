#include "chronos/train/sequence_log_probs.h"

#include "chronos/core/error.h"
#include "train/loss_utils.h"

namespace chronos {

using losses::masked_mean;
using losses::require;
using losses::shape_of;

at::Tensor target_log_probs(const at::Tensor& logits, const at::Tensor& targets) {
  require(logits.defined() && logits.dim() == 3 && targets.defined() && targets.dim() == 2 &&
              targets.size(0) == logits.size(0) && targets.size(1) == logits.size(1),
          cat("target_log_probs: expected logits [B,T,V] and targets [B,T] (got ", shape_of(logits), " and ",
              shape_of(targets), ")"));
  const at::Tensor x = losses::upcast(logits);  // the only fp32 copy (none for fp32 logits)
  const at::Tensor ids = targets.to(x.device(), at::kLong);
  const at::Tensor scored = ids >= 0;
  const at::Tensor picked = x.gather(-1, ids.clamp_min(0).unsqueeze(-1)).squeeze(-1);
  const at::Tensor log_p = picked - at::logsumexp(x, {-1});
  return at::where(scored, log_p, at::zeros({}, log_p.options()));
}

at::Tensor next_token_log_probs(const at::Tensor& logits, const at::Tensor& tokens) {
  require(logits.defined() && logits.dim() == 3 && logits.size(1) >= 2 && tokens.defined() && tokens.dim() == 2 &&
              tokens.size(1) == logits.size(1),
          cat("next_token_log_probs: expected logits [B,S,V] and tokens [B,S] with S >= 2 (got ", shape_of(logits),
              " and ", shape_of(tokens), ")"));
  const int64_t S = logits.size(1);
  return target_log_probs(logits.narrow(1, 0, S - 1), tokens.narrow(1, 1, S - 1));
}

SequenceLogProbs reduce_log_probs(const at::Tensor& token_log_probs, const at::Tensor& mask) {
  require(token_log_probs.defined() && token_log_probs.dim() == 2 && mask.defined() &&
              mask.sizes() == token_log_probs.sizes(),
          cat("reduce_log_probs: expected log-probs [B,T] and a mask of the same shape (got ",
              shape_of(token_log_probs), " and ", shape_of(mask), ")"));
  const at::Tensor valid = mask.to(token_log_probs.device()) != 0;
  SequenceLogProbs out;
  out.token_log_probs = at::where(valid, token_log_probs, at::zeros({}, token_log_probs.options()));
  out.sum = out.token_log_probs.sum(1);
  out.count = valid.sum(1).to(token_log_probs.scalar_type());
  out.mean = out.sum / out.count.clamp_min(1);
  return out;
}

SequenceLogProbs sequence_log_probs(const at::Tensor& logits, const at::Tensor& tokens, const at::Tensor& mask) {
  const at::Tensor log_p = next_token_log_probs(logits, tokens);
  const int64_t S = tokens.size(1);
  if (mask.defined()) {
    require(mask.sizes() == tokens.sizes(),
            cat("sequence_log_probs: mask must be shaped like tokens ", shape_of(tokens), " (got ", shape_of(mask), ")"));
    return reduce_log_probs(log_p, mask.narrow(1, 1, S - 1));
  }
  return reduce_log_probs(log_p, tokens.narrow(1, 1, S - 1) >= 0);
}

at::Tensor causal_lm_loss(const at::Tensor& logits, const at::Tensor& labels) {
  const at::Tensor log_p = next_token_log_probs(logits, labels);
  const at::Tensor scored = labels.narrow(1, 1, labels.size(1) - 1).to(log_p.device()) >= 0;
  return -masked_mean(log_p, scored);
}

}  // namespace chronos
