// Means over the whole batch of a data-parallel step. When the step's batch is spread over ranks, a
// loss that averages over tokens (pairs, sequences) must divide by the count over every rank: each
// rank's loss is then its share of the global mean, and the gradients the ranks sum are those of one
// process on the whole batch. Padding follows the same rule (every rank pads to the longest sequence
// of any rank), so shapes, and with them the gating of every loss term, agree across ranks.
//
// Outside a GlobalBatchScope every function here is the local one: a single process pays nothing.
// Inside one, each call is a collective: every rank must make the same calls in the same order.
#pragma once

#include <ATen/Tensor.h>

#include <cstdint>
#include <functional>

namespace chronos {

// `local` summed over the ranks (a detached tensor of the same shape; `local` itself outside a scope).
at::Tensor sum_over_ranks(const at::Tensor& local);
// The largest `local` of any rank (`local` itself outside a scope).
int64_t max_over_ranks(int64_t local);
// sum(values) / (number of elements over the ranks): the rank's share of the mean over the global batch.
at::Tensor batch_mean(const at::Tensor& values);
// sum(values where valid) / max(valid count over the ranks, 1).
at::Tensor global_masked_mean(const at::Tensor& values, const at::Tensor& valid);

// The collectives of the data-parallel step in flight on this thread. Scopes nest; the innermost wins.
struct GlobalBatchReducer {
  std::function<at::Tensor(const at::Tensor&)> sum;  // element-wise sum over the ranks, detached
  std::function<int64_t(int64_t)> max;               // maximum over the ranks
};

class GlobalBatchScope {
 public:
  explicit GlobalBatchScope(const GlobalBatchReducer* reducer);
  ~GlobalBatchScope();
  GlobalBatchScope(const GlobalBatchScope&) = delete;
  GlobalBatchScope& operator=(const GlobalBatchScope&) = delete;

 private:
  const GlobalBatchReducer* previous_;
};

}  // namespace chronos
