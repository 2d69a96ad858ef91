// Per-layer attention caches for incremental decoding.
// MLA layers keep the normalised latent [B,T,C] and the already-rotated rope keys [B,T,nKV,r]
// (re-rotating them each step, as the reference does, gives the same values [Q7]).
// Window layers keep the last W post-norm, post-RoPE keys and the values, [B,<=W,nKV,D] each;
// plain GQA layers keep every key and value.
#pragma once

#include <ATen/Tensor.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace chronos {

// The dtype a decode keeps its keys and values in. fp32: as the attention computes them (float32 on
// the CPU). bf16: rounded to bfloat16 (nearest even) as they are cached, half the bytes that every
// later token reads back (llama.cpp keeps float16 by default); attention still computes in float32.
enum class KvDtype { fp32, bf16 };
const char* to_string(KvDtype dtype);
// "fp32" or "bf16"; throws InvalidArgument naming the value otherwise.
KvDtype parse_kv_dtype(const std::string& name);

// One layer's two cached tensors, [B, length, ...] each. append() writes in place into storage that
// grows geometrically, so a decoded token costs a copy of its own keys, not of the whole cache.
// Storage is never written where a view handed out earlier can see it, and a LayerCache cannot be
// copied (two copies appending into one storage would overwrite each other).
struct LayerCache {
  at::Tensor first;   // MLA: latent; window/GQA: keys
  at::Tensor second;  // MLA: rotated rope keys; window/GQA: values
  // The dtype appended positions are kept in (converted as they are appended); Undefined: as appended.
  at::ScalarType store_as = at::ScalarType::Undefined;
  int64_t length() const { return first.defined() ? first.size(1) : 0; }

  LayerCache() = default;
  LayerCache(at::Tensor first_, at::Tensor second_) : first(std::move(first_)), second(std::move(second_)) {}
  LayerCache(const LayerCache&) = delete;
  LayerCache& operator=(const LayerCache&) = delete;
  LayerCache(LayerCache&&) = default;
  LayerCache& operator=(LayerCache&&) = default;

  // first = cat(first, a, dim 1), second = cat(second, b, dim 1), in store_as when it is set. Inputs
  // that need a gradient are concatenated out of place, as autograd requires.
  void append(const at::Tensor& a, const at::Tensor& b);
  // append() of one position of one sequence given as float32 values (a_count and b_count of them),
  // without wrapping them in tensors: the one-token decode path's. It reads no metadata of the
  // storage tensors, which the weights streamed since the layer's last token have evicted (on
  // fine.json int8: 1.0-1.3 k time-stamp ticks a layer, where from_blob tensors and append() took
  // 3.5-4.3 k of ~110 k).
  // Returns false, appending nothing, unless an append() has made a one-sequence CPU storage that
  // has room, with a_count and b_count values a position, and nothing else holds the views.
  bool append_token(const float* a, int64_t a_count, const float* b, int64_t b_count);
  // append_token in pieces, for a position whose values several threads compute (one key-value group
  // each): open_token grows both tensors by a position whose values are not written yet, where
  // append_token would append (else returns false, appending nothing); put_token then writes a_count
  // values of the first tensor's new position from value a_offset on, and b_count of the second's
  // from b_offset. Pieces written at once must not overlap, and every value must be written before
  // the position is read.
  bool open_token(int64_t a_count, int64_t b_count);
  void put_token(int64_t a_offset, const float* a, int64_t a_count, int64_t b_offset, const float* b, int64_t b_count);
  // Keeps the last n positions (n <= length()): a view, no copy.
  void keep_last(int64_t n);

 private:
  at::Tensor first_storage_, second_storage_;  // [B, capacity, ...]; first/second are views into them
  int64_t start_ = 0;                          // where the views begin in the storage
  // For append_token, kept beside the tensors: the storage's position 0 (null: append_token does
  // not apply), its positions and dtype, and each tensor's values a position.
  char* first_base_ = nullptr;
  char* second_base_ = nullptr;
  int64_t capacity_ = 0, first_values_ = 0, second_values_ = 0;
  at::ScalarType kept_ = at::ScalarType::Undefined;
};

class KVCache {
 public:
  explicit KVCache(int64_t num_layers = 0, KvDtype dtype = KvDtype::fp32);
  KvDtype dtype() const { return dtype_; }

  // Tokens processed so far: the absolute position of the next token.
  int64_t position() const { return position_; }
  void advance(int64_t tokens) { position_ += tokens; }
  LayerCache& layer(int64_t index) { return layers_.at(index); }
  const LayerCache& layer(int64_t index) const { return layers_.at(index); }
  int64_t num_layers() const { return static_cast<int64_t>(layers_.size()); }
  void reset();  // empty again, in the same dtype
  // Bytes held by all layers.
  int64_t bytes() const;

 private:
  std::vector<LayerCache> layers_;
  int64_t position_ = 0;
  KvDtype dtype_ = KvDtype::fp32;
};

}  // namespace chronos
