// Model cost counts for utilisation figures: matmul FLOPs (2 per multiply-add) of one forward pass,
// counting only the experts a token actually runs (k routed + shared) and the attention scores, and
// the weight bytes a decode step must read (the memory-bandwidth bound of batch-1 decoding).
#pragma once

#include <cstdint>

namespace chronos {

struct ModelConfig;
class ChronosForCausalLMImpl;

// FLOPs of one forward over `batch` sequences of `seq_len` tokens from an empty cache.
double forward_flops(const ModelConfig& config, int64_t batch, int64_t seq_len);

// Bytes of weights one batch-1 decode step reads: the embedding row, every dense weight, the router,
// the k routed and the shared experts of each layer, the lookahead router and the tied lm_head.
double decode_weight_bytes(const ModelConfig& config, double bytes_per_parameter);

// The same pieces measured on a built model, at the bytes its tensors take: a model converted to
// a weight format (weight_format.h) counts its packed matrices and its float32 rest. Routed experts an
// expert source serves (not materialised) are not counted.
double decode_weight_bytes(ChronosForCausalLMImpl& model);

}  // namespace chronos
