#include "chronos/model/attention_core.h"

#include <ATen/ATen.h>

#include <cmath>
#include <limits>

#include "chronos/core/error.h"

namespace chronos {

at::Tensor causal_band_mask(int64_t queries, int64_t keys, const AttentionMasking& m, const c10::Device& device) {
  const int64_t first_query = m.query_start, last_query = m.query_start + queries - 1;
  const int64_t last_key = m.key_start + keys - 1;
  // Every key visible to every query: the last key is not in any query's future and the first key
  // is inside the window of the last query.
  const bool all_causal = last_key <= first_query;
  const bool all_in_window = m.window <= 0 || m.key_start > last_query - m.window;
  if (all_causal && all_in_window) return {};
  const auto opts = at::TensorOptions().dtype(at::kLong).device(device);
  at::Tensor qpos = at::arange(first_query, last_query + 1, opts).unsqueeze(1);
  at::Tensor kpos = at::arange(m.key_start, last_key + 1, opts).unsqueeze(0);
  at::Tensor hidden = kpos > qpos;
  if (m.window > 0) hidden = hidden.logical_or(kpos <= qpos - m.window);
  return at::zeros({queries, keys}, at::TensorOptions().dtype(at::kFloat).device(device))
      .masked_fill_(hidden, -std::numeric_limits<float>::infinity());
}

at::Tensor attend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const AttentionMasking& masking,
                  int64_t scale_dim, double dropout, bool training) {
  const int64_t B = q.size(0), S = q.size(1), nH = q.size(2), D = q.size(3);
  const int64_t T = k.size(1), nKV = k.size(2), Dv = v.size(3);
  if (nH % nKV != 0) throw InvalidArgument(cat("attend: ", nH, " query heads do not group over ", nKV, " KV heads"));
  const int64_t rep = nH / nKV;

  // Group the query heads of one KV head as extra rows, so K and V are never repeated in memory.
  at::Tensor qg = q.permute({0, 2, 1, 3}).reshape({B, nKV, rep * S, D});  // head j = kv * rep + r
  at::Tensor kt = k.permute({0, 2, 3, 1});                                   // [B,nKV,D,T]
  at::Tensor vg = v.permute({0, 2, 1, 3});                                   // [B,nKV,T,Dv]
  at::Tensor scores = at::matmul(qg, kt).view({B, nKV, rep, S, T});
  scores = scores.to(at::kFloat).mul_(1.0 / std::sqrt(static_cast<double>(scale_dim)));

  if (at::Tensor band = causal_band_mask(S, T, masking, q.device()); band.defined()) scores.add_(band);
  if (masking.key_padding.defined()) {
    at::Tensor keep = masking.key_padding.to(q.device(), at::kFloat);
    const int64_t M = keep.size(1);
    if (M < T) keep = at::cat({at::ones({B, T - M}, keep.options()), keep}, 1);
    keep = keep.narrow(1, keep.size(1) - T, T);
    scores.add_(((1.0 - keep) * -1e9).view({B, 1, 1, 1, T}));
  }

  at::Tensor probs = at::softmax(scores, -1).to(q.scalar_type());
  if (training && dropout > 0) probs = at::dropout(probs, dropout, /*train=*/true);
  at::Tensor out = at::matmul(probs.view({B, nKV, rep * S, T}), vg);  // [B,nKV,rep*S,Dv]
  return out.view({B, nKV, rep, S, Dv}).permute({0, 3, 1, 2, 4}).reshape({B, S, nH * Dv});
}

}  // namespace chronos
