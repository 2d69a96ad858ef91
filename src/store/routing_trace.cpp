#include "chronos/store/routing_trace.h"

#include <ATen/ATen.h>
#include <torch/utils.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <numeric>

#include "chronos/core/error.h"
#include "chronos/model/causal_lm.h"

namespace chronos {

RoutingTrace::RoutingTrace(int64_t num_layers, int64_t num_experts, int64_t top_k)
    : num_layers_(num_layers), num_experts_(num_experts), top_k_(top_k) {
  if (num_layers < 1) throw InvalidArgument(cat("routing trace: num_layers must be >= 1 (got ", num_layers, ")"));
  if (num_experts < 1 || num_experts > std::numeric_limits<int16_t>::max())
    throw InvalidArgument(cat("routing trace: num_experts must be in [1, 32767] (got ", num_experts, ")"));
  if (top_k < 1 || top_k > num_experts)
    throw InvalidArgument(cat("routing trace: top_k must be in [1, num_experts] (got ", top_k, " with ", num_experts, " experts)"));
}

void RoutingTrace::add_sequence(std::vector<int16_t> ids) {
  const int64_t per_token = num_layers_ * top_k_;
  if (per_token == 0) throw InvalidArgument("routing trace: add_sequence on a trace without a shape");
  if (static_cast<int64_t>(ids.size()) % per_token != 0)
    throw InvalidArgument(cat("routing trace: sequence ", sequences_.size(), " has ", ids.size(),
                              " ids, not a multiple of layers x top_k = ", per_token));
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] < 0 || ids[i] >= num_experts_)
      throw InvalidArgument(cat("routing trace: sequence ", sequences_.size(), " token ", static_cast<int64_t>(i) / per_token,
                                " has expert id ", ids[i], " outside [0, ", num_experts_, ")"));
  tokens_ += static_cast<int64_t>(ids.size()) / per_token;
  sequences_.push_back(std::move(ids));
}

void RoutingOptions::validate() const {
  if (batch_size < 1) throw ConfigError(cat("routing.batch_size must be >= 1 (got ", batch_size, ")"));
}

namespace {

// Restores the module's training flag on scope exit.
class EvalMode {
 public:
  explicit EvalMode(torch::nn::Module& module) : module_(module), was_training_(module.is_training()) { module_.eval(); }
  ~EvalMode() { module_.train(was_training_); }
  EvalMode(const EvalMode&) = delete;
  EvalMode& operator=(const EvalMode&) = delete;

 private:
  torch::nn::Module& module_;
  bool was_training_;
};

}  // namespace

RoutingTrace record_routing(ChronosForCausalLMImpl& model, const std::vector<std::vector<int64_t>>& sequences,
                            const RoutingOptions& options, const RoutingProgress& progress) {
  options.validate();
  const ModelConfig& config = model.config();
  if (!config.use_moe) throw InvalidArgument("record_routing: the model has no routed experts (use_moe is false)");
  const int64_t L = config.num_hidden_layers, K = config.num_experts_per_tok, V = config.vocab_size;
  RoutingTrace trace(L, config.num_experts, K);

  int64_t total = 0;
  for (size_t s = 0; s < sequences.size(); ++s) {
    for (int64_t id : sequences[s])
      if (id < 0 || id >= V)
        throw InvalidArgument(cat("record_routing: sequence ", s, " holds token id ", id, " outside the vocabulary [0, ", V, ")"));
    total += static_cast<int64_t>(sequences[s].size());
  }

  // Longest first, so that a batch holds sequences of similar length and little padding.
  std::vector<size_t> order(sequences.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return sequences[a].size() > sequences[b].size(); });
  while (!order.empty() && sequences[order.back()].empty()) order.pop_back();

  const auto params = model.parameters();
  const c10::Device device = params.empty() ? c10::Device(c10::kCPU) : params.front().device();
  const int64_t per_token = L * K;
  std::vector<std::vector<int16_t>> ids(sequences.size());

  EvalMode eval(model);
  torch::NoGradGuard no_grad;
  int64_t done = 0;
  for (size_t first = 0; first < order.size(); first += static_cast<size_t>(options.batch_size)) {
    const size_t count = std::min(order.size() - first, static_cast<size_t>(options.batch_size));
    const int64_t B = static_cast<int64_t>(count);
    const int64_t S = static_cast<int64_t>(sequences[order[first]].size());  // the longest of the batch
    at::Tensor input = at::zeros({B, S}, at::kLong);
    at::Tensor mask = at::zeros({B, S}, at::kLong);
    for (int64_t b = 0; b < B; ++b) {
      const auto& seq = sequences[order[first + static_cast<size_t>(b)]];
      const int64_t n = static_cast<int64_t>(seq.size());
      std::memcpy(input[b].data_ptr<int64_t>(), seq.data(), static_cast<size_t>(n) * sizeof(int64_t));
      mask[b].narrow(0, 0, n).fill_(1);
    }
    ForwardOptions forward;
    forward.attention_mask = mask.to(device);
    forward.logits_to_keep = 1;
    forward.expert_source = options.expert_source;
    const ForwardOutput out = model.forward(input.to(device), forward);
    if (static_cast<int64_t>(out.selected.size()) != L)
      throw InvalidArgument(cat("record_routing: the model reported routing for ", out.selected.size(), " of ", L, " layers"));
    // [B, S, L, k] int16, one copy to the host.
    const at::Tensor host = at::stack(out.selected, 2).to(at::kShort).to(c10::kCPU).contiguous();
    const int16_t* data = host.data_ptr<int16_t>();
    for (int64_t b = 0; b < B; ++b) {
      const size_t index = order[first + static_cast<size_t>(b)];
      const int64_t n = static_cast<int64_t>(sequences[index].size());
      const int16_t* row = data + b * S * per_token;
      ids[index].assign(row, row + n * per_token);
      done += n;
    }
    if (progress) progress(done, total);
  }
  for (auto& seq : ids) trace.add_sequence(std::move(seq));
  return trace;
}

}  // namespace chronos
