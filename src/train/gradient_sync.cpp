#include "chronos/train/gradient_sync.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>

#include <algorithm>
#include <mutex>
#include <unordered_map>
#include <unordered_set>

#include "chronos/core/error.h"
#include "chronos/core/timing.h"
#include "chronos/train/process_group.h"

namespace chronos {

using torch::autograd::Node;
using torch::autograd::variable_list;

namespace {

struct Bucket {
  std::vector<size_t> params;    // indices into the parameter list
  std::vector<int64_t> offsets;  // element offset of each in `buffer`
  at::Tensor buffer;             // flat, in the parameters' dtype and device
  int64_t pending = 0;           // gradients not in yet (armed step only)
  std::unique_ptr<PendingCollective> work;
  double started = 0;
};

}  // namespace

struct GradientSync::State {
  DataParallelGroup& group;
  std::vector<at::Tensor> params;
  std::vector<std::shared_ptr<Node>> accumulators;  // held, so every graph reuses them (and their hooks)
  std::vector<uintptr_t> hook_keys;
  std::unordered_map<const Node*, size_t> param_of;
  std::vector<size_t> bucket_of, slot_of;
  std::vector<Bucket> buckets;
  std::vector<bool> done;  // this step: the parameter's gradient is in its bucket
  at::Tensor used;         // [P] float: 1 where this rank has a gradient (summed: where any rank has one)
  std::unique_ptr<PendingCollective> used_work;
  size_t next_bucket = 0;
  bool armed = false;
  std::mutex mutex;

  State(DataParallelGroup& g, std::vector<at::Tensor> p) : group(g), params(std::move(p)) {}

  // Copies the parameter's gradient (zeros if it has none) into its bucket.
  void stage(size_t index) {
    Bucket& bucket = buckets[bucket_of[index]];
    const at::Tensor& param = params[index];
    at::Tensor slot = bucket.buffer.narrow(0, bucket.offsets[slot_of[index]], param.numel());
    const at::Tensor& grad = param.grad();
    if (grad.defined()) {
      slot.copy_(grad.reshape({-1}));
    } else {
      slot.zero_();
    }
    done[index] = true;
    --bucket.pending;
  }

  // Starts every bucket that is complete and whose predecessors have started: the same order on every rank.
  void start_ready() {
    while (next_bucket < buckets.size() && buckets[next_bucket].pending == 0) {
      Bucket& bucket = buckets[next_bucket++];
      bucket.started = steady_seconds();
      bucket.work = group.start_sum(bucket.buffer, "the gradient all-reduce");
    }
  }

  void on_ready(size_t index) {
    std::lock_guard<std::mutex> lock(mutex);
    if (!armed || done[index]) return;
    stage(index);
    start_ready();
  }
};

namespace {

struct ReadyHook final : torch::autograd::FunctionPostHook {
  ReadyHook(GradientSync::State* state, size_t index) : state_(state), index_(index) {}
  variable_list operator()(const variable_list& outputs, const variable_list& /*inputs*/) override {
    state_->on_ready(index_);
    return outputs;
  }

 private:
  GradientSync::State* state_;
  size_t index_;
};

}  // namespace

GradientSync::GradientSync(DataParallelGroup& group, std::vector<at::Tensor> params, int64_t bucket_bytes)
    : state_(std::make_unique<State>(group, std::move(params))) {
  State& s = *state_;
  if (bucket_bytes <= 0) throw InvalidArgument(cat("gradient bucket size must be > 0 bytes (got ", bucket_bytes, ")"));
  const size_t P = s.params.size();
  s.bucket_of.resize(P);
  s.slot_of.resize(P);
  s.done.assign(P, false);
  // Reverse order: backward produces the last layers' gradients first.
  Bucket current;
  int64_t bytes = 0;
  const auto close = [&] {
    if (current.params.empty()) return;
    const at::Tensor& first = s.params[current.params.front()];
    int64_t elements = 0;
    for (size_t i : current.params) {
      current.offsets.push_back(elements);
      elements += s.params[i].numel();
    }
    current.buffer = at::zeros({elements}, first.options().requires_grad(false));
    s.buckets.push_back(std::move(current));
    current = Bucket();
    bytes = 0;
  };
  for (size_t n = P; n-- > 0;) {
    const at::Tensor& p = s.params[n];
    if (!p.requires_grad()) throw InvalidArgument("GradientSync: every parameter must require a gradient");
    const bool other_kind = !current.params.empty() && (s.params[current.params.front()].scalar_type() != p.scalar_type() ||
                                                        s.params[current.params.front()].device() != p.device());
    if (other_kind || (bytes > 0 && bytes + static_cast<int64_t>(p.nbytes()) > bucket_bytes)) close();
    s.bucket_of[n] = s.buckets.size();
    s.slot_of[n] = current.params.size();
    current.params.push_back(n);
    bytes += static_cast<int64_t>(p.nbytes());
  }
  close();
  s.used = at::zeros({static_cast<int64_t>(P)}, at::kFloat);
  for (size_t n = 0; n < P; ++n) {
    std::shared_ptr<Node> accumulator = torch::autograd::impl::grad_accumulator(s.params[n]);
    if (!accumulator) throw InvalidArgument("GradientSync: a parameter is not a leaf of the autograd graph");
    s.param_of[accumulator.get()] = n;
    s.hook_keys.push_back(accumulator->add_post_hook(std::make_unique<ReadyHook>(state_.get(), n)));
    s.accumulators.push_back(std::move(accumulator));
  }
}

GradientSync::~GradientSync() {
  for (size_t n = 0; n < state_->accumulators.size(); ++n) state_->accumulators[n]->del_post_hook(state_->hook_keys[n]);
}

int64_t GradientSync::buckets() const { return static_cast<int64_t>(state_->buckets.size()); }

void GradientSync::prepare(const at::Tensor& loss) {
  State& s = *state_;
  std::lock_guard<std::mutex> lock(s.mutex);
  if (s.armed) throw InvalidArgument("GradientSync::prepare: the previous step was not finished");
  // The parameters this backward will reach; the others are ready now.
  std::vector<bool> reached(s.params.size(), false);
  std::vector<const Node*> stack;
  std::unordered_set<const Node*> seen;
  if (const std::shared_ptr<Node> root = loss.grad_fn()) stack.push_back(root.get());
  while (!stack.empty()) {
    const Node* node = stack.back();
    stack.pop_back();
    if (!seen.insert(node).second) continue;
    if (const auto it = s.param_of.find(node); it != s.param_of.end()) reached[it->second] = true;
    for (const auto& edge : node->next_edges())
      if (edge.function) stack.push_back(edge.function.get());
  }
  for (Bucket& b : s.buckets) b.pending = static_cast<int64_t>(b.params.size());
  std::fill(s.done.begin(), s.done.end(), false);
  s.next_bucket = 0;
  auto used = s.used.accessor<float, 1>();
  for (size_t n = 0; n < s.params.size(); ++n) used[static_cast<int64_t>(n)] = reached[n] || s.params[n].grad().defined() ? 1.f : 0.f;
  // Which parameters have a gradient anywhere: the first collective of the step on every rank.
  s.used_work = s.group.start_sum(s.used, "the gradient all-reduce");
  s.armed = true;
  for (size_t n = 0; n < s.params.size(); ++n)
    if (!reached[n]) s.stage(n);
  s.start_ready();
}

GradientSyncTiming GradientSync::finish() {
  State& s = *state_;
  const double backward_end = steady_seconds();
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    if (!s.armed) throw InvalidArgument("GradientSync::finish: prepare() was not called for this step");
    // A reached parameter whose hook did not run (its gradient came out undefined) goes as it is.
    for (size_t n = 0; n < s.params.size(); ++n)
      if (!s.done[n]) s.stage(n);
    s.start_ready();
    s.armed = false;
  }
  s.used_work->wait();
  for (Bucket& b : s.buckets) b.work->wait();
  GradientSyncTiming timing;
  timing.waited = steady_seconds() - backward_end;
  const auto used = s.used.accessor<float, 1>();
  double first = 0, last = 0;
  for (Bucket& b : s.buckets) {
    for (size_t slot = 0; slot < b.params.size(); ++slot) {
      at::Tensor& param = s.params[b.params[slot]];
      if (used[static_cast<int64_t>(b.params[slot])] > 0) {
        // A view of the bucket (DDP's gradient_as_bucket_view): no second copy. The next step stages
        // each slot only after its parameter's own backward, so the view is never overwritten early.
        param.mutable_grad() = b.buffer.narrow(0, b.offsets[slot], param.numel()).view(param.sizes());
      } else {
        param.mutable_grad() = at::Tensor();  // no rank reached it: no gradient, as in one process
      }
    }
    first = first == 0 ? b.started : std::min(first, b.started);
    last = std::max(last, b.work->finished_at() > 0 ? b.work->finished_at() : steady_seconds());
    timing.bytes += static_cast<int64_t>(b.buffer.nbytes());
  }
  timing.buckets = static_cast<int64_t>(s.buckets.size());
  timing.all_reduce = std::max(0.0, last - first);
  timing.overlapped = std::clamp(backward_end - first, 0.0, timing.all_reduce);
  return timing;
}

}  // namespace chronos
