// AdamW with the reference's two parameter groups, and its state as safetensors for checkpoints.
// Decay group (weight_decay): trainable tensors with ndim >= 2 outside norms and the embedding; the
// no-decay group: norms, the (tied) embedding, every 1-D tensor.
#pragma once

#include <torch/nn/module.h>
#include <torch/optim/adamw.h>

#include <memory>
#include <string>

namespace chronos {

struct AdamWSettings {
  double lr = 5e-4;
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double weight_decay = 0.01;
};

// Builds AdamW over the module's trainable parameters in the two groups above.
std::unique_ptr<torch::optim::AdamW> make_adamw(torch::nn::Module& module, const AdamWSettings& settings);

// Sets the learning rate of every group.
void set_learning_rate(torch::optim::Optimizer& optimizer, double lr);

// Writes each parameter's AdamW moments and step count, keyed by parameter name, to `path` (atomic).
void save_adamw_state(torch::optim::AdamW& optimizer, torch::nn::Module& module, const std::string& path);
// Restores what save_adamw_state wrote; throws FormatError naming the file and parameter on a mismatch.
void load_adamw_state(torch::optim::AdamW& optimizer, torch::nn::Module& module, const std::string& path);

}  // namespace chronos
