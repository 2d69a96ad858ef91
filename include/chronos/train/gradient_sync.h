// Data-parallel gradients: summed over the ranks in buckets while backward is still running.
//
// Every trained parameter gets a hook on its gradient accumulator (the AccumulateGrad node, so the
// hook sees the window's accumulated gradient, as DDP's reducer does). Parameters are packed into
// buckets of about `bucket_bytes` in reverse order, the order backward tends to produce them; a bucket
// starts its all-reduce as soon as its last gradient is in and every earlier bucket has started, so
// every rank starts the same buckets in the same order. Before the backward of a step's last
// micro-batch, prepare() walks the autograd graph: a parameter the graph does not reach on this rank
// (an expert no local token chose) is ready at once with its gradient so far, or zeros. A parameter
// no rank reached keeps no gradient, exactly as in one process (AdamW then leaves it alone).
//
// Gradients are summed, not averaged: the losses divide by the global batch's counts
// (train/global_batch.h). Non-final micro-batches of a window run without prepare(): no
// communication, the gradients accumulate locally.
#pragma once

#include <ATen/Tensor.h>

#include <cstdint>
#include <memory>
#include <vector>

namespace chronos {

class DataParallelGroup;

// Communication of one step, in seconds.
struct GradientSyncTiming {
  double all_reduce = 0;  // from the first bucket's start to the last bucket's end
  double overlapped = 0;  // the part of that before backward returned
  double waited = 0;      // how long finish() blocked on the network after backward
  int64_t buckets = 0;
  int64_t bytes = 0;      // gradient bytes summed (each rank sends and receives about this much, twice, in a ring)
};

class GradientSync {
 public:
  // `params`: the trained parameters, the same list in the same order on every rank.
  GradientSync(DataParallelGroup& group, std::vector<at::Tensor> params, int64_t bucket_bytes = int64_t{25} << 20);
  ~GradientSync();
  GradientSync(const GradientSync&) = delete;
  GradientSync& operator=(const GradientSync&) = delete;

  // Arms the hooks for the backward of `loss` (the step's last micro-batch).
  void prepare(const at::Tensor& loss);
  // After that backward: starts what is left, waits, and sets every parameter's gradient to the sum
  // over the ranks (none where no rank had one), as a view into its bucket. Throws DistributedError
  // naming a failed rank.
  GradientSyncTiming finish();

  int64_t buckets() const;

  struct State;

 private:
  std::unique_ptr<State> state_;
};

}  // namespace chronos
