#include "chronos/model/moe.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <functional>
#include <memory>

#include "chronos/core/error.h"
#include "chronos/model/config.h"
#include "chronos/model/linear.h"

namespace chronos {

MoEImpl::MoEImpl(const ModelConfig& c, bool routed_experts)
    : num_experts_(c.num_experts), top_k_(c.num_experts_per_tok), num_shared_(c.num_shared_experts),
      intermediate_(c.resolved_moe_intermediate_size()), shared_intermediate_(c.resolved_shared_intermediate_size()),
      norm_topk_(c.norm_topk_prob), fallback_mask_prob_(c.fallback_mask_prob), inference_aux_(at::zeros({}, at::kFloat)) {
  const int64_t H = c.hidden_size;
  gate = register_module("gate", make_linear(H, num_experts_));
  experts = register_module("experts", torch::nn::ModuleList());
  for (int64_t e = 0; e < num_experts_; ++e) {
    FeedForward expert(H, intermediate_, routed_experts);
    routed_weights_.push_back(expert->weights());
    experts->push_back(expert);
  }
  shared_experts = register_module("shared_experts", torch::nn::ModuleList());
  for (int64_t s = 0; s < num_shared_; ++s) {
    FeedForward expert(H, shared_intermediate_);
    shared_weights_.push_back(expert->weights());
    shared_experts->push_back(expert);
  }
  if (c.shared_expert_gate) shared_expert_gate = register_module("shared_expert_gate", make_linear(H, 1));
}

at::Tensor MoEImpl::shared_output(const at::Tensor& x) {
  if (num_shared_ == 0) return {};
  at::Tensor shared = shared_experts->at<FeedForwardImpl>(0).forward(x);
  for (int64_t s = 1; s < num_shared_; ++s) shared = shared + shared_experts->at<FeedForwardImpl>(s).forward(x);
  if (num_shared_ > 1) shared = shared / static_cast<double>(num_shared_);
  if (!shared_expert_gate.is_empty()) shared = shared * at::sigmoid(project(x, shared_expert_gate->weight));
  return shared;
}

const ExpertWeights& MoEImpl::loaded_expert(int64_t expert) const {
  const ExpertWeights& w = routed_weights_[static_cast<size_t>(expert)];
  if (w.gate_proj.numel() == 0)
    throw InvalidArgument(cat("routed expert ", expert, " was not loaded (skip_routed_experts): pass an expert source"));
  return w;
}

at::Tensor MoEImpl::simulated_availability() {
  at::Tensor keep = at::rand({num_experts_}) >= fallback_mask_prob_;
  if (!keep.any().item<bool>()) keep[at::randint(num_experts_, {1}).item<int64_t>()] = true;
  return keep;
}

at::Tensor MoEImpl::availability_mask(const at::Tensor& availability, int64_t layer) const {
  if (!availability.defined()) return {};
  if (availability.numel() != num_experts_ || !availability.device().is_cpu())
    throw InvalidArgument(cat("MoE layer ", layer, ": availability must be a CPU tensor of ", num_experts_, " entries"));
  return availability.to(at::kBool).contiguous();
}

void MoEImpl::for_each_expert(const MoECall& call, const std::vector<int64_t>& wanted,
                              const std::function<void(int64_t, const ExpertWeights&)>& use,
                              const std::function<void()>& before_release) {
  if (!call.source) {
    for (int64_t e : wanted) use(e, loaded_expert(e));
    return;
  }
  if (!wanted.empty()) call.source->announce(call.layer, wanted);
  const size_t batch = std::max<size_t>(1, call.source->max_batch());
  for (size_t begin = 0; begin < wanted.size(); begin += batch) {
    const std::vector<int64_t> chunk(wanted.begin() + begin, wanted.begin() + std::min(wanted.size(), begin + batch));
    const auto weights = call.source->acquire(call.layer, chunk);
    // Released on every exit, including a throwing expert computation.
    const std::unique_ptr<ExpertSource, std::function<void(ExpertSource*)>> releaser(
        call.source, [&](ExpertSource* source) { source->release(call.layer); });
    if (weights.size() != chunk.size())
      throw InvalidArgument(cat("MoE layer ", call.layer, ": expert source answered ", weights.size(), " of ", chunk.size(), " experts"));
    for (size_t i = 0; i < chunk.size(); ++i)
      if (weights[i]) use(chunk[i], *weights[i]);
    before_release();
  }
}

at::Tensor MoEImpl::checked_router_bias(const MoECall& call, int64_t experts, c10::Device device) {
  if (!call.router_bias.defined()) return {};
  if (call.router_bias.dim() != 1 || call.router_bias.size(0) != experts)
    throw InvalidArgument(cat("router bias of layer ", call.layer, ": shape ", call.router_bias.sizes(), ", expected [", experts, "]"));
  return call.router_bias.to(device, at::kFloat);
}

MoEOutput MoEImpl::forward(const at::Tensor& x, const MoECall& call) {
  if (call.on_input && *call.on_input) (*call.on_input)(call.layer, x);
  if (one_token_path_applies(x)) return forward_one_token(x, call);
  const int64_t B = x.size(0), S = x.size(1), H = x.size(2), N = B * S, E = num_experts_, k = top_k_;
  const at::Tensor flat_x = x.reshape({N, H});

  // Routing: softmax over all experts first, then top-k, then renormalise. A router bias moves the
  // selection only (the weights are the unbiased softmax's), or the logits of both.
  const at::Tensor logits = project(flat_x, gate->weight).to(at::kFloat);  // [N,E]
  const at::Tensor bias = checked_router_bias(call, E, logits.device());
  const bool bias_weights = bias.defined() && call.bias_target == BiasTarget::selection_and_weights;
  const at::Tensor probs = at::softmax(bias_weights ? logits + bias : logits, -1);
  at::Tensor top_w, top_i;
  if (bias.defined() && !bias_weights) {
    top_i = std::get<1>((logits + bias).topk(k, -1));
    top_w = probs.gather(-1, top_i);
  } else {
    std::tie(top_w, top_i) = probs.topk(k, -1);
  }
  if (norm_topk_) top_w = top_w / (top_w.sum(-1, /*keepdim=*/true) + 1e-20);
  const at::Tensor flat_w = top_w.to(x.scalar_type()).reshape({N * k});
  const at::Tensor flat_e = top_i.reshape({N * k});

  at::Tensor availability = call.availability;
  if (!availability.defined() && is_training() && fallback_mask_prob_ > 0 && num_shared_ > 0)
    availability = simulated_availability();
  const at::Tensor available = availability_mask(availability, call.layer);

  // The one host synchronisation of the layer: how many rows each expert receives.
  const at::Tensor counts = at::bincount(flat_e, {}, E);
  const at::Tensor host_counts = counts.to(at::kCPU);
  const int64_t* count = host_counts.data_ptr<int64_t>();

  std::vector<int64_t> wanted;
  for (int64_t e = 0; e < E; ++e)
    if (count[e] > 0 && (!available.defined() || available[e].item<bool>())) wanted.push_back(e);

  // Group rows by expert: one stable sort, one gather of the inputs, one scatter of the outputs.
  const at::Tensor order = std::get<1>(flat_e.sort(/*stable=*/true, /*dim=*/0, /*descending=*/false));
  const at::Tensor token_of = order.div(k, "floor");
  const at::Tensor sorted_x = flat_x.index_select(0, token_of);
  const at::Tensor sorted_w = flat_w.index_select(0, order).unsqueeze(1);
  std::vector<int64_t> first_row(E + 1, 0);
  for (int64_t e = 0; e < E; ++e) first_row[e + 1] = first_row[e] + count[e];

  // Experts come from the source in chunks of at most max_batch(), each released once computed.
  std::vector<bool> computed(E, false);
  std::vector<at::Tensor> outputs, rows;
  const auto run_expert = [&](int64_t e, const ExpertWeights& w) {
    const int64_t offset = first_row[e], n = count[e];
    outputs.push_back(swiglu(sorted_x.narrow(0, offset, n), w) * sorted_w.narrow(0, offset, n));
    rows.push_back(token_of.narrow(0, offset, n));
    computed[e] = true;
  };
  for_each_expert(call, wanted, run_expert, [] {});
  bool any_missing = false;
  for (int64_t e = 0; e < E; ++e) any_missing |= count[e] > 0 && !computed[e];

  at::Tensor y = at::zeros({N, H}, x.options());
  if (!outputs.empty()) {
    // With nothing missing the outputs cover every sorted row in order.
    y = y.index_add(0, any_missing ? at::cat(rows) : token_of, outputs.size() == 1 ? outputs[0] : at::cat(outputs));
  }

  // Soft gating: a missed expert's weight moves onto the shared output (without one, it is lost).
  at::Tensor shared_coef;
  if (any_missing && num_shared_ > 0) {
    std::vector<float> miss(E);
    for (int64_t e = 0; e < E; ++e) miss[e] = computed[e] ? 0.0f : 1.0f;
    const at::Tensor miss_flag = at::tensor(miss).to(x.device(), x.scalar_type()).index_select(0, flat_e);
    shared_coef = 1 + (flat_w * miss_flag).view({N, k}).sum(-1, /*keepdim=*/true);
  }
  if (const at::Tensor shared = shared_output(flat_x); shared.defined())
    y = y + (shared_coef.defined() ? shared * shared_coef : shared);

  MoEOutput out;
  out.output = y.view({B, S, H});
  out.router_probs = probs.view({B, S, E});
  out.selected = top_i.view({B, S, k});
  if (is_training()) {
    // Load balance: f_e (share of routed slots, no gradient) times the mean router probability.
    at::Tensor mask = call.loss_mask.defined() ? call.loss_mask.reshape({N}).to(x.device(), at::kFloat)
                                               : at::ones({N}, probs.options());
    const at::Tensor tokens = mask.sum().clamp_min(1);
    const at::Tensor f = at::zeros({E}, probs.options()).index_add(0, flat_e, mask.repeat_interleave(k)) / tokens;
    const at::Tensor mean_p = (probs * mask.unsqueeze(1)).sum(0) / tokens;
    out.aux_raw = static_cast<double>(E) * (f.detach() * mean_p).sum();
  } else {
    out.aux_raw = at::zeros({}, probs.options());
  }
  return out;
}

}  // namespace chronos
