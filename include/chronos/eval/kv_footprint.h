// What the attention caches of one sequence hold at a given context, from the config alone: MLA
// layers keep a latent of kv_latent_dim plus nKV rope keys of the effective rope width per token,
// window layers the keys and values of the last sliding_window_size tokens, plain GQA layers the
// keys and values of every token (model/kv_cache.h). chronos-compare's KV figures at contexts no
// CPU run here would reach.
#pragma once

#include <cstdint>

namespace chronos {

struct ModelConfig;

// Bytes the KV cache of one sequence holds after `context` tokens, `bytes_per_value` per element
// (4 for float32). Throws InvalidArgument for a context < 1 or bytes_per_value < 1.
int64_t kv_cache_bytes(const ModelConfig& config, int64_t context, int64_t bytes_per_value = 4);

// kv_cache_bytes / context: the cache's cost per token at that context.
double kv_cache_bytes_per_token(const ModelConfig& config, int64_t context, int64_t bytes_per_value = 4);

}  // namespace chronos
