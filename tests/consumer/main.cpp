// Builds a tiny Chronos model through the installed public API and runs one forward pass.
#include <ATen/ATen.h>
#include <chronos/model/causal_lm.h>
#include <chronos/model/config.h>

#include <iostream>

int main() {
  chronos::ModelConfig config;
  config.hidden_size = 64;
  config.num_hidden_layers = 2;
  config.vocab_size = 128;
  config.num_attention_heads = 4;
  config.num_key_value_heads = 2;
  config.intermediate_size = 96;
  config.kv_latent_dim = 16;
  config.rope_dim = 8;
  config.num_experts_per_tok = 2;
  at::manual_seed(0);
  chronos::ChronosForCausalLM model(config);
  model->eval();
  at::NoGradGuard no_grad;
  const chronos::ForwardOutput out = model->forward(at::randint(config.vocab_size, {1, 5}));
  if (out.logits.size(2) != config.vocab_size || !out.logits.isfinite().all().item<bool>()) {
    std::cerr << "consumer: unexpected logits" << std::endl;
    return 1;
  }
  std::cout << "consumer: forward ok, logits " << out.logits.sizes() << std::endl;
  return 0;
}
