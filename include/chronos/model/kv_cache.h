// Per-layer attention caches for incremental decoding.
// MLA layers keep the normalised latent [B,T,C] and the already-rotated rope keys [B,T,nKV,r]
// (re-rotating them each step, as the reference does, gives the same values [Q7]).
// Window layers keep the last W post-norm, post-RoPE keys and the values, [B,<=W,nKV,D] each;
// plain GQA layers keep every key and value.
#pragma once

#include <ATen/Tensor.h>

#include <cstdint>
#include <vector>

namespace chronos {

struct LayerCache {
  at::Tensor first;   // MLA: latent; window/GQA: keys
  at::Tensor second;  // MLA: rotated rope keys; window/GQA: values
  int64_t length() const { return first.defined() ? first.size(1) : 0; }
};

class KVCache {
 public:
  explicit KVCache(int64_t num_layers = 0) : layers_(num_layers) {}

  // Tokens processed so far: the absolute position of the next token.
  int64_t position() const { return position_; }
  void advance(int64_t tokens) { position_ += tokens; }
  LayerCache& layer(int64_t index) { return layers_.at(index); }
  const LayerCache& layer(int64_t index) const { return layers_.at(index); }
  int64_t num_layers() const { return static_cast<int64_t>(layers_.size()); }
  void reset();
  // Bytes held by all layers.
  int64_t bytes() const;

 private:
  std::vector<LayerCache> layers_;
  int64_t position_ = 0;
};

}  // namespace chronos
