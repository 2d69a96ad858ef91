// Model FLOP counts for utilisation figures: matmul FLOPs (2 per multiply-add) of one forward pass,
// counting only the experts a token actually runs (k routed + shared) and the attention scores.
#pragma once

#include <cstdint>

namespace chronos {

struct ModelConfig;

// FLOPs of one forward over `batch` sequences of `seq_len` tokens from an empty cache.
double forward_flops(const ModelConfig& config, int64_t batch, int64_t seq_len);

}  // namespace chronos
