// Tiny model configs built inside tests (DESIGN.md convention 6).
#pragma once

#include "chronos/model/config.h"

namespace chronos::testing {

// 4 layers (MLA, window, MLA, window), hidden 64, 4 experts top-2, one shared expert, window 8.
inline ModelConfig tiny_config() {
  ModelConfig c;
  c.hidden_size = 64;
  c.num_hidden_layers = 4;
  c.vocab_size = 97;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.intermediate_size = 96;
  c.kv_latent_dim = 16;
  c.rope_dim = 8;
  c.sliding_window_size = 8;
  c.num_experts = 4;
  c.num_experts_per_tok = 2;
  c.num_shared_experts = 1;
  c.lookahead_steps = 2;
  c.max_position_embeddings = 64;
  c.dropout = 0.0;
  c.bos_token_id = 1;
  c.eos_token_id = 2;
  return c;
}

}  // namespace chronos::testing
