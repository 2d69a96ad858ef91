// Mixture-of-experts feed-forward (docs/architecture.md): softmax router over E experts, top-k with
// (optionally) renormalised weights, SwiGLU experts, always-on shared experts (averaged; or, as in
// Qwen2-MoE, one scaled by a sigmoid gate g(x)), and soft gating: the weight of a routed expert that
// is unavailable moves onto the shared output, y = sum_hit w F_e(x) + (1 + sum_miss w) g(x) s(x)
// (without shared experts, as in Mixtral, Qwen3-MoE and OLMoE, it is lost).
// Tokens are grouped by expert once per call (one sort, one gather, one scatter); the only host
// synchronisation is one read of the per-expert token counts. One token at inference on the CPU in
// float32 (batch-1 decoding) takes a path with the same semantics and a fraction of the operations:
// routing on the host, every expert of the layer in one fused kernel call.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <functional>
#include <vector>

#include "chronos/model/expert_source.h"
#include "chronos/model/feed_forward.h"
#include "chronos/model/router_bias.h"

namespace chronos {

struct ModelConfig;

struct MoECall {
  int64_t layer = 0;               // decoder layer index, passed to the source
  ExpertSource* source = nullptr;  // null: this layer's own parameters
  at::Tensor availability;         // optional [E] bool on the CPU; false marks an expert missing
  at::Tensor loss_mask;            // optional [B,S]; 0 keeps a token (padding) out of the balance loss
  // Optional: called with (layer, the layer's input [B,S,H]) before it routes, so a caller can
  // predict later layers' experts from it (layer-ahead prefetch).
  const std::function<void(int64_t, const at::Tensor&)>* on_input = nullptr;
  // Optional: [E] added to the router logits (ForwardOptions::router_bias), where `bias_target` says.
  at::Tensor router_bias;
  BiasTarget bias_target = BiasTarget::selection;
};

struct MoEOutput {
  at::Tensor output;        // [B,S,H]
  at::Tensor router_probs;  // [B,S,E] fp32 softmax before top-k, with autograd
  at::Tensor selected;      // [B,S,k] chosen expert ids
  at::Tensor aux_raw;       // scalar E * sum_e f_e * mean_p_e while training, else 0
};

class MoEImpl : public torch::nn::Module {
 public:
  // Without `routed_experts` the experts' parameters stay empty and unallocated: an ExpertSource serves them.
  explicit MoEImpl(const ModelConfig& config, bool routed_experts = true);
  MoEOutput forward(const at::Tensor& x, const MoECall& call);

  int64_t num_experts() const { return num_experts_; }
  ExpertWeights expert_weights(int64_t expert) const { return loaded_expert(expert); }
  // Whether forward(x) takes the batch-1 decoding path (moe_one_token.cpp): one contiguous float32
  // CPU token [1,1,H] at inference, nothing needing a gradient.
  bool one_token_path_applies(const at::Tensor& x) const;
  // Training-time simulated miss rate (stages lower it as training proceeds).
  void set_fallback_mask_prob(double p) { fallback_mask_prob_ = p; }

  torch::nn::Linear gate{nullptr};  // [E, H]
  torch::nn::ModuleList experts{nullptr}, shared_experts{nullptr};
  torch::nn::Linear shared_expert_gate{nullptr};  // [1, H], only with config.shared_expert_gate

 private:
  // call.router_bias as float32 on `device`, undefined when there is none; InvalidArgument when it is not [E].
  static at::Tensor checked_router_bias(const MoECall& call, int64_t experts, c10::Device device);
  // Training-time miss simulation: each expert kept with probability 1 - p, at least one kept.
  at::Tensor simulated_availability();
  MoEOutput forward_one_token(const at::Tensor& x, const MoECall& call);
  // The availability as a contiguous CPU bool mask of E entries (undefined stays undefined); throws
  // InvalidArgument naming the layer for any other shape or device.
  at::Tensor availability_mask(const at::Tensor& availability, int64_t layer) const;
  // Calls use(e, weights) for each expert in `wanted` that is available: from the layer's own
  // parameters, or from call.source in chunks of its max_batch() (announced first; each chunk
  // released after before_release() has run, and on any exit).
  void for_each_expert(const MoECall& call, const std::vector<int64_t>& wanted,
                       const std::function<void(int64_t, const ExpertWeights&)>& use,
                       const std::function<void()>& before_release);

  // Sum (or mean) of the shared experts times their gate for x [N,H]; undefined without shared experts.
  at::Tensor shared_output(const at::Tensor& x);

  int64_t num_experts_, top_k_, num_shared_, intermediate_, shared_intermediate_;
  bool norm_topk_;
  double fallback_mask_prob_;
  // routed_weights_[e], or InvalidArgument when expert e was not loaded (skip_routed_experts).
  const ExpertWeights& loaded_expert(int64_t expert) const;

  // Each routed and shared expert's three weights: the very tensors of its module in `experts` or
  // `shared_experts`, registered once (weights change through set_data, which keeps the tensor:
  // weight_format.cpp, pretrained.cpp, weight_arena.cpp, Module::to). A lookup reads them from these
  // arrays, not through the expert's module, its Linear modules and their members: those misses, the
  // streamed weights having evicted them, cost ~3.4 us a layer of a fine.json int8 step.
  std::vector<ExpertWeights> routed_weights_, shared_weights_;
  at::Tensor inference_aux_;  // the one-token path's zero aux_raw (float32, CPU, as its input), one tensor for every call
};
TORCH_MODULE(MoE);

}  // namespace chronos
