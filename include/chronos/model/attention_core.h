// Scaled dot-product attention shared by the MLA and window layers, with GQA head grouping
// (query head j reads KV head j / n_rep) and the masks of the Python reference done correctly (docs/architecture.md):
// bottom-right causal with absolute positions [Q4], an optional band of W keys [Q3], key padding.
#pragma once

#include <ATen/Tensor.h>

#include <cstdint>

namespace chronos {

struct AttentionMasking {
  int64_t query_start = 0;   // absolute position of the first query
  int64_t key_start = 0;     // absolute position of the first key
  int64_t window = 0;        // > 0: a query at p sees keys in (p - window, p]; 0: every key <= p
  at::Tensor key_padding;    // optional [B, M] with 1 = keep, 0 = pad; its last T columns are used
};

// q [B,S,nH,D], k [B,T,nKV,D], v [B,T,nKV,Dv] -> [B,S,nH*Dv]. Scores use 1/sqrt(scale_dim).
// Softmax runs in fp32. Dropout p applies to the probabilities when `training`.
at::Tensor attend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const AttentionMasking& masking,
                  int64_t scale_dim, double dropout, bool training);

// The additive [S, T] mask (0 or -inf) for the positions above, or an undefined tensor when every
// query sees every key.
at::Tensor causal_band_mask(int64_t queries, int64_t keys, const AttentionMasking& masking, const c10::Device& device);

}  // namespace chronos
