#include "chronos/train/global_batch.h"

#include <ATen/ATen.h>

namespace chronos {
namespace {

thread_local const GlobalBatchReducer* active = nullptr;

}  // namespace

at::Tensor sum_over_ranks(const at::Tensor& local) {
  if (!active) return local;
  return active->sum(local.detach());
}

int64_t max_over_ranks(int64_t local) { return active ? active->max(local) : local; }

at::Tensor batch_mean(const at::Tensor& values) {
  const at::Tensor count = at::full({}, static_cast<double>(values.numel()), values.options().requires_grad(false));
  return values.sum() / sum_over_ranks(count).clamp_min(1);
}

at::Tensor global_masked_mean(const at::Tensor& values, const at::Tensor& valid) {
  const at::Tensor kept = at::where(valid, values, at::zeros({}, values.options()));
  return kept.sum() / sum_over_ranks(valid.sum().to(values.scalar_type())).clamp_min(1);
}

GlobalBatchScope::GlobalBatchScope(const GlobalBatchReducer* reducer) : previous_(active) { active = reducer; }

GlobalBatchScope::~GlobalBatchScope() { active = previous_; }

}  // namespace chronos
