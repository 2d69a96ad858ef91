// A tiny random model with the MiniMind tokenizer and chat template, for the serve tests.
#pragma once

#include <ATen/ATen.h>

#include <string>

#include "chronos/model/causal_lm.h"
#include "chronos/tokenizer/chat_formatter.h"
#include "chronos/tokenizer/tokenizer.h"
#include "support/tiny_config.h"

namespace chronos::testing {

inline std::string minimind_tokenizer_path() { return std::string(CHRONOS_SOURCE_DIR) + "/tests/data/minimind/tokenizer.json"; }

struct ServeModel {
  Tokenizer tokenizer = Tokenizer::from_file(minimind_tokenizer_path());
  ChatFormatter chat = ChatFormatter::for_tokenizer(minimind_tokenizer_path());
  ChronosForCausalLM model{nullptr};

  explicit ServeModel(int64_t context = 256) {
    at::manual_seed(0);
    ModelConfig config = tiny_config();
    config.vocab_size = tokenizer.vocab_size();
    config.max_position_embeddings = context;
    config.sliding_window_size = 16;
    model = ChronosForCausalLM(config);
    model->eval();
  }
};

}  // namespace chronos::testing
