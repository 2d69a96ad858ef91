// MoEImpl's batch-1 decoding path. Same semantics as MoEImpl::forward (softmax over all experts,
// top-k, renormalisation, the ExpertSource protocol, soft gating onto the shared experts); the
// general path spends ~40 tensor operations per layer on one token (sort, gather, scatter, casts),
// which at decode speed cost as much as streaming the layer's weights.
#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <optional>
#include <string>

#include "chronos/model/moe.h"
#include "chronos/model/weight_format.h"
#include "model/cpu_kernels.h"
#include "model/token_buffer.h"

namespace chronos {
namespace {

// The stored format of an FFN's weights when the fused kernel can read them in place for hidden size
// H and intermediate size I: all three of one format (chronos/model/weight_format.h), the store's
// quantized slots included.
std::optional<WeightFormat> kernel_format(const ExpertWeights& w, int64_t H, int64_t I) {
  if (!is_stored_matrix(w.gate_proj, H) || !is_stored_matrix(w.up_proj, H) || !is_stored_matrix(w.down_proj, I)) return std::nullopt;
  if (w.gate_proj.size(0) != I || w.up_proj.size(0) != I || w.down_proj.size(0) != H) return std::nullopt;
  const WeightFormat format = stored_format(w.gate_proj, H);
  if (stored_format(w.up_proj, H) != format || stored_format(w.down_proj, I) != format) return std::nullopt;
  const bool quantized = format == WeightFormat::int8 || format == WeightFormat::int4;
  if (quantized && w.quant != QuantFormat::none && to_string(w.quant) != std::string(to_string(format))) return std::nullopt;
  return format;
}

}  // namespace

bool MoEImpl::one_token_path_applies(const at::Tensor& x) const {
  // gemv_applies' conditions on the token and the router, without a reshaped tensor to ask it.
  const at::Tensor& router = gate->weight;
  return !is_training() && x.dim() == 3 && x.size(0) * x.size(1) == 1 && cpu::is_plain_float(x) && cpu::is_plain_float(router) &&
         router.dim() == 2 && router.size(1) == x.size(2) &&
         (shared_expert_gate.is_empty() || cpu::is_plain_float(shared_expert_gate->weight));
}

MoEOutput MoEImpl::forward_one_token(const at::Tensor& x, const MoECall& call) {
  const int64_t H = x.size(2), E = num_experts_, k = top_k_;
  const float* x_data = x.data_ptr<float>();
  thread_local TokenBuffer output_buffer;  // reused: the layer adds it into its residual stream and lets it go
  at::Tensor y = output_buffer.get({1, 1, H}, x.options());
  float* y_data = y.data_ptr<float>();
  std::fill(y_data, y_data + H, 0.0f);

  // Routing on the host: E logits, softmax, top-k (ties to the lower id), renormalisation.
  at::Tensor probs, selected;
  std::vector<int64_t> order, wanted;
  std::vector<float> weight;  // the renormalised top-k weight of each chosen expert
  const auto route = [&] {
    // One pair of buffers per layer index: a step's outputs hold every layer's until the step ends.
    thread_local std::vector<std::pair<TokenBuffer, TokenBuffer>> buffers;
    const size_t slot = static_cast<size_t>(std::clamp<int64_t>(call.layer, 0, 1023));  // shared slots stay correct
    if (buffers.size() <= slot) buffers.resize(slot + 1);
    auto& [probs_buffer, selected_buffer] = buffers[slot];
    probs = probs_buffer.get({1, 1, E}, x.options());
    float* p = probs.data_ptr<float>();
    cpu::gemv(gate->weight.data_ptr<float>(), x_data, p, E, H);
    // A router bias: on the logits before the softmax, or on separate selection scores.
    at::Tensor bias = checked_router_bias(call, E, at::kCPU);
    if (bias.defined()) bias = bias.contiguous();
    std::vector<float> score;
    if (bias.defined()) {
      const float* b = bias.data_ptr<float>();
      if (call.bias_target == BiasTarget::selection_and_weights) {
        for (int64_t e = 0; e < E; ++e) p[e] += b[e];
      } else {
        score.assign(p, p + E);
        for (int64_t e = 0; e < E; ++e) score[static_cast<size_t>(e)] += b[e];
      }
    }
    cpu::softmax_in_place(p, E);
    const float* rank = score.empty() ? p : score.data();
    order.resize(static_cast<size_t>(E));
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + k, order.end(),
                      [&](int64_t a, int64_t b) { return rank[a] > rank[b] || (rank[a] == rank[b] && a < b); });
    selected = selected_buffer.get({1, 1, k}, x.options().dtype(at::kLong));
    weight.assign(static_cast<size_t>(E), 0.0f);
    float chosen_mass = 0;
    for (int64_t j = 0; j < k; ++j) chosen_mass += p[order[j]];
    for (int64_t j = 0; j < k; ++j) {
      selected.data_ptr<int64_t>()[j] = order[j];
      weight[order[j]] = norm_topk_ ? p[order[j]] / (chosen_mass + 1e-20f) : p[order[j]];
    }
    const at::Tensor available = availability_mask(call.availability, call.layer);
    wanted.assign(order.begin(), order.begin() + k);
    std::sort(wanted.begin(), wanted.end());
    if (available.defined())
      wanted.erase(std::remove_if(wanted.begin(), wanted.end(), [&](int64_t e) { return !available.data_ptr<bool>()[e]; }), wanted.end());
  };

  // An expert's term of the fused kernel, when it can read the weights in place.
  const auto kernel_term = [&](const ExpertWeights& w, float coef, int64_t I) -> std::optional<cpu::SwigluTerm> {
    const std::optional<WeightFormat> format = kernel_format(w, H, I);
    if (!format) return std::nullopt;
    return cpu::SwigluTerm{w.gate_proj.data_ptr(), w.up_proj.data_ptr(), w.down_proj.data_ptr(), coef,
                           *format, cpu::row_layout(w.gate_proj, H), cpu::row_layout(w.down_proj, I)};
  };
  // The term, or (another dtype or layout, or blocks the kernel input lacks) the general SwiGLU added
  // into y in place.
  const auto add_term = [&](std::vector<cpu::SwigluTerm>& terms, const ExpertWeights& w, float coef, int64_t I, const cpu::KernelInput* input) {
    std::optional<cpu::SwigluTerm> term = kernel_term(w, coef, I);
    if (term && input &&
        ((cpu::needs_blocks(term->format) && !input->has_blocks()) || (cpu::needs_int4_pairs(term->format, term->gate_up_layout) && !input->has_int4_pairs())))
      term.reset();
    if (term) {
      terms.push_back(*term);
    } else {
      const bool stored = w.gate_proj.scalar_type() == at::kByte || w.gate_proj.scalar_type() == at::kBFloat16;
      const at::Tensor token = x.view({1, H});
      const at::Tensor input_token = stored ? token : token.to(w.gate_proj.scalar_type());
      y.add_(swiglu(input_token, w).to(at::kFloat).view({1, 1, H}), coef);
    }
  };
  // Soft gating: a missed expert's weight moves onto the shared output (without one, it is lost).
  std::vector<bool> computed(static_cast<size_t>(E), false);
  const auto shared_coefficient = [&] {
    float missed = 0;
    for (int64_t j = 0; j < k; ++j)
      if (!computed[static_cast<size_t>(order[j])]) missed += weight[static_cast<size_t>(order[j])];
    float coef = (1 + missed) / static_cast<float>(num_shared_);
    if (!shared_expert_gate.is_empty()) {
      const float logit = cpu::dot(shared_expert_gate->weight.data_ptr<float>(), x_data, H);
      coef /= 1 + std::exp(-logit);
    }
    return coef;
  };

  // Resident experts with kernel-ready shared ones: a pool thread computes the shared experts while
  // this one routes and looks up the routed ones (docs/decode.md "One region a module"). Their
  // coefficients follow from the routing.
  std::vector<cpu::SwigluTerm> shared;
  bool beside_routing = !call.source && num_shared_ > 0;
  for (size_t i = 0; beside_routing && i < shared_weights_.size(); ++i) {
    const std::optional<cpu::SwigluTerm> term = kernel_term(shared_weights_[i], 0.0f, shared_intermediate_);
    if (term) shared.push_back(*term);
    else beside_routing = false;
  }
  if (beside_routing) {
    bool blocks = false, pairs = false;
    for (const cpu::SwigluTerm& t : shared) {
      blocks = blocks || cpu::needs_blocks(t.format);
      pairs = pairs || cpu::needs_int4_pairs(t.format, t.gate_up_layout);
    }
    const cpu::KernelInput input(x_data, H, blocks, pairs);
    cpu::swiglu_accumulate_routed(
        shared, k,
        [&](std::vector<cpu::SwigluTerm>& routed) {
          route();
          for (const int64_t e : wanted) {
            add_term(routed, loaded_expert(e), weight[static_cast<size_t>(e)], intermediate_, &input);
            computed[static_cast<size_t>(e)] = true;
          }
          const float coef = shared_coefficient();
          for (cpu::SwigluTerm& t : shared) t.coef = coef;
        },
        input, y_data, H, intermediate_, shared_intermediate_);
  } else {
    route();
    std::vector<cpu::SwigluTerm> terms;
    terms.reserve(static_cast<size_t>(k + num_shared_));
    const auto run_terms = [&](int64_t I) {
      if (!terms.empty()) cpu::swiglu_accumulate(terms, x_data, y_data, H, I);
      terms.clear();
    };
    const auto use = [&](int64_t e, const ExpertWeights& w) {
      add_term(terms, w, weight[static_cast<size_t>(e)], intermediate_, nullptr);
      computed[static_cast<size_t>(e)] = true;
    };
    // A source's weights are valid until its release: their terms run before it. Resident experts
    // wait for the shared ones, so that the whole layer is one kernel call when the widths agree.
    for_each_expert(call, wanted, use, [&] { run_terms(intermediate_); });
    if (num_shared_ == 0) {
      run_terms(intermediate_);
    } else {
      const float coef = shared_coefficient();
      if (shared_intermediate_ != intermediate_) run_terms(intermediate_);
      for (const ExpertWeights& w : shared_weights_) add_term(terms, w, coef, shared_intermediate_, nullptr);
      run_terms(shared_intermediate_);
    }
  }

  MoEOutput out;
  out.output = y;
  out.router_probs = probs;
  out.selected = selected;
  out.aux_raw = inference_aux_;
  return out;
}

}  // namespace chronos
