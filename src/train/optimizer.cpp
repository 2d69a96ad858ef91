#include "chronos/train/optimizer.h"

#include <ATen/ATen.h>
#include <c10/util/string_utils.h>

#include <map>

#include "chronos/core/error.h"
#include "chronos/io/safetensors.h"

namespace chronos {
namespace {

bool decays(const std::string& name, const at::Tensor& p) {
  return p.dim() >= 2 && name.find("norm") == std::string::npos && name.find("embed_tokens") == std::string::npos;
}

// LibTorch keys optimizer state by the parameter's TensorImpl address.
std::string state_key(const at::Tensor& p) { return c10::guts::to_string(p.unsafeGetTensorImpl()); }

}  // namespace

std::unique_ptr<torch::optim::AdamW> make_adamw(torch::nn::Module& module, const AdamWSettings& s) {
  std::vector<at::Tensor> decay, no_decay;
  for (const auto& item : module.named_parameters(/*recurse=*/true)) {
    if (!item.value().requires_grad()) continue;
    (decays(item.key(), item.value()) ? decay : no_decay).push_back(item.value());
  }
  auto options = torch::optim::AdamWOptions(s.lr).betas({s.beta1, s.beta2}).eps(s.eps);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decay, std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(options).weight_decay(s.weight_decay)));
  groups.emplace_back(no_decay, std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(options).weight_decay(0.0)));
  return std::make_unique<torch::optim::AdamW>(std::move(groups), options);
}

void set_learning_rate(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) group.options().set_lr(lr);
}

void save_adamw_state(torch::optim::AdamW& optimizer, torch::nn::Module& module, const std::string& path) {
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  auto& state = optimizer.state();
  for (const auto& item : module.named_parameters(/*recurse=*/true)) {
    auto it = state.find(state_key(item.value()));
    if (it == state.end()) continue;  // not stepped yet
    const auto& s = static_cast<const torch::optim::AdamWParamState&>(*it->second);
    tensors.emplace_back(item.key() + ".exp_avg", s.exp_avg());
    tensors.emplace_back(item.key() + ".exp_avg_sq", s.exp_avg_sq());
    tensors.emplace_back(item.key() + ".step", at::scalar_tensor(s.step(), at::kLong));
  }
  save_safetensors(path, tensors, {{"format", "chronos-adamw"}});
}

void load_adamw_state(torch::optim::AdamW& optimizer, torch::nn::Module& module, const std::string& path) {
  SafetensorsFile file(path);
  auto& state = optimizer.state();
  for (const auto& item : module.named_parameters(/*recurse=*/true)) {
    const std::string& name = item.key();
    if (!file.contains(name + ".step")) continue;
    auto moment = [&](const std::string& suffix) {
      at::Tensor t = file.tensor(name + suffix);
      if (t.sizes() != item.value().sizes())
        throw FormatError(cat(path, ": optimizer state '", name, suffix, "' does not match the parameter's shape"));
      return t.to(item.value().device(), item.value().scalar_type()).clone();
    };
    auto s = std::make_unique<torch::optim::AdamWParamState>();
    s->step(file.tensor(name + ".step").item<int64_t>());
    s->exp_avg(moment(".exp_avg"));
    s->exp_avg_sq(moment(".exp_avg_sq"));
    state[state_key(item.value())] = std::move(s);
  }
}

}  // namespace chronos
