#include "chronos/eval/kv_footprint.h"

#include <algorithm>

#include "chronos/core/error.h"
#include "chronos/model/config.h"

namespace chronos {

int64_t kv_cache_bytes(const ModelConfig& c, int64_t context, int64_t bytes_per_value) {
  if (context < 1) throw InvalidArgument(cat("KV footprint: context must be >= 1 (got ", context, ")"));
  if (bytes_per_value < 1) throw InvalidArgument(cat("KV footprint: bytes_per_value must be >= 1 (got ", bytes_per_value, ")"));
  const int64_t kv = c.resolved_kv_heads(), d = c.resolved_head_dim();
  int64_t values = 0;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    if (c.layer_is_mla(l)) {
      values += context * (c.kv_latent_dim + kv * c.rope_width());
    } else {
      const bool windowed = c.layer_has_window(l) && c.sliding_window_size > 0;
      values += (windowed ? std::min(context, c.sliding_window_size) : context) * 2 * kv * d;
    }
  }
  return values * bytes_per_value;
}

double kv_cache_bytes_per_token(const ModelConfig& config, int64_t context, int64_t bytes_per_value) {
  return static_cast<double>(kv_cache_bytes(config, context, bytes_per_value)) / static_cast<double>(context);
}

}  // namespace chronos
