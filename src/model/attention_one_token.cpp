// The batch-1 decoding paths of both attention kinds: one float32 CPU token attending to its layer's
// cache (float32 or bfloat16 rows, widened in registers), with the projections on the streaming gemv
// and the per-head work in plain loops. The general paths spend ~100 tensor operations per layer on
// one token, and the MLA one re-projected the whole cached latent into keys and values at every step
// (T x C x (nope + head_dim) x kv_heads multiply-adds, 9.4M per layer at T = 384); here MLA attends
// in the absorbed form (DeepSeek-V2, arXiv:2405.04434 §2.1.2): score = (W_k^T q_nope) . latent +
// q_rope . rope_key and out = W_v (sum_t p_t latent_t), which reads the cache once.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "chronos/model/attention.h"
#include "chronos/model/weight_format.h"
#include "model/cpu_kernels.h"
#include "model/format_kernels.h"
#include "model/token_buffer.h"
#include "model/work_pool.h"

namespace chronos {
namespace {

// RMSNorm in place over each of `groups` runs of `dim` values.
void rms_norm(float* x, int64_t groups, int64_t dim, const at::Tensor& weight, double eps) {
  cpu::rms_norm(x, x, groups, dim, weight.data_ptr<float>(), eps);
}

// Rotate-half RoPE of each of `groups` runs of d values, in place; cos/sin rows hold >= d columns.
void rope(float* x, int64_t groups, int64_t d, const float* cos, const float* sin) {
  const int64_t h = d / 2;
  for (int64_t g = 0; g < groups; ++g) {
    float* v = x + g * d;
    for (int64_t i = 0; i < h; ++i) {
      const float a = v[i], b = v[i + h];
      v[i] = a * cos[i] - b * sin[i];
      v[i + h] = b * cos[i + h] + a * sin[i + h];
    }
  }
}

// One token's input to the projections that read it, quantized once for all of them when any
// needs its int8 blocks.
cpu::KernelInput input_for(const float* x, std::initializer_list<const torch::nn::Linear*> readers) {
  bool blocks = false, pairs = false;
  int64_t in = 0;
  for (const torch::nn::Linear* linear : readers) {
    const at::Tensor& w = (*linear)->weight;
    in = (*linear)->options.in_features();
    const WeightFormat format = stored_format(w, in);
    blocks = blocks || cpu::needs_blocks(format);
    pairs = pairs || cpu::needs_int4_pairs(format, cpu::row_layout(w, in));
  }
  return cpu::KernelInput(x, in, blocks, pairs);
}

// y = W x (+ b) for one token; W in any stored format (weight_format.h).
void project_token_into(const torch::nn::Linear& linear, const cpu::KernelInput& x, float* y) {
  const at::Tensor& w = linear->weight;
  const int64_t out = w.size(0);
  cpu::gemv_stored(stored_format(w, x.size()), w.data_ptr(), x, y, out, cpu::row_layout(w, x.size()));
  if (linear->bias.defined()) {
    const float* b = linear->bias.data_ptr<float>();
    for (int64_t i = 0; i < out; ++i) y[i] += b[i];
  }
}

std::vector<float> project_token(const torch::nn::Linear& linear, const cpu::KernelInput& x) {
  std::vector<float> y(static_cast<size_t>(linear->weight.size(0)));
  project_token_into(linear, x, y.data());
  return y;
}

std::vector<float> project_token(const torch::nn::Linear& linear, const float* x) {
  return project_token(linear, input_for(x, {&linear}));
}

// A projection's rows as the parallel units read them: its format, layout, weights and bias, taken
// on the calling thread (a unit runs on the work pool and must not throw or touch tensors).
struct ProjectionRows {
  ProjectionRows(const torch::nn::Linear& linear, int64_t in)
      : format(stored_format(linear->weight, in)),
        layout(cpu::row_layout(linear->weight, in)),
        weight(linear->weight.data_ptr()),
        bias(linear->bias.defined() ? linear->bias.data_ptr<float>() : nullptr) {}
  // y[0, last - first) = rows [first, last) of W x (+ b): each row as the whole matrix's gemv sums it.
  void project(const cpu::KernelInput& x, int64_t first, int64_t last, float* y) const {
    cpu::rows_dot(format, weight, first, last, x, y, layout);
    if (bias)
      for (int64_t i = first; i < last; ++i) y[i - first] += bias[i];
  }
  WeightFormat format;
  cpu::RowLayout layout;
  const void* weight;
  const float* bias;
};

// Attention over slices of a token's cache positions, a slice a thread, each keeping for every head
// its scores' maximum m, the sum l of exp(score - m) and the values weighted by those exponentials;
// merged as flash-decoding does (docs/decode.md "One region a module"): with M the head's largest m over
// the slices, out = sum_s e^(m_s - M) acc_s / sum_s e^(m_s - M) l_s. Threads that split the heads
// instead each read the whole cache: MLA's latents serve every head, and a window layer's key-value
// group is half of each cached position's bytes (the hardware prefetchers fetched the other half
// too). Step flips, fine.json int8: window layers 0.978-0.995; MLA level at the bench's context,
// 0.960 after a 1,024-token prompt.
class PositionSlices {
 public:
  // `positions` > 0 split into a slice a thread of at least kMinPositions each (two a thread ran
  // level with the key-value groups' split).
  PositionSlices(int64_t positions, int64_t heads, int64_t width)
      : positions_(positions),
        heads_(heads),
        width_(width),
        count_(std::clamp<int64_t>(positions / kMinPositions, 1, std::max(1, at::get_num_threads()))),
        state_(buffer(count_ * heads * (2 + width))) {}
  int64_t count() const { return count_; }
  int64_t first(int64_t slice) const { return slice * positions_ / count_; }
  int64_t size(int64_t slice) const { return first(slice + 1) - first(slice); }
  int64_t largest() const { return (positions_ + count_ - 1) / count_; }
  // Slice s's scores of head h (n of them) become exp(score - max) in place; the slice keeps their
  // maximum and sum.
  void exponentiate(int64_t s, int64_t h, float* scores, int64_t n) {
    state_[stats_offset(s, h)] = cpu::exp_shifted_in_place(scores, n, &state_[stats_offset(s, h) + 1]);
  }
  // Slice s's `width` values of head h, zero until the slice adds its weighted rows into them.
  float* values(int64_t s, int64_t h) { return state_ + values_offset(s, h); }
  // MLA: the merged values are latents, each head's projected by its group's rows of W_v
  // [kv_heads * out_width, width] (head h in group h / rep) into out_width values.
  void project_values(const float* w_v, int64_t rep, int64_t out_width) {
    value_proj_ = w_v;
    rep_ = rep;
    out_width_ = out_width;
  }
  // The heads' outputs, the slices merged: out[h * width, (h + 1) * width) for every head h, or
  // out_width values a head after project_values.
  void merge(float* out) const {
    thread_local std::vector<float> merged;
    merged.resize(static_cast<size_t>(width_));
    for (int64_t h = 0; h < heads_; ++h) {
      float top = -std::numeric_limits<float>::infinity();
      for (int64_t s = 0; s < count_; ++s) top = std::max(top, state_[stats_offset(s, h)]);
      float* o = value_proj_ ? merged.data() : out + h * width_;
      std::fill(o, o + width_, 0.0f);
      float total = 0;
      for (int64_t s = 0; s < count_; ++s) {
        const float w = std::exp(state_[stats_offset(s, h)] - top);
        total += w * state_[stats_offset(s, h) + 1];
        const float* acc = state_ + values_offset(s, h);
        for (int64_t i = 0; i < width_; ++i) o[i] += w * acc[i];
      }
      const float inverse = 1.0f / total;
      for (int64_t i = 0; i < width_; ++i) o[i] *= inverse;
      if (value_proj_) cpu::matrix_rows_dot(value_proj_ + h / rep_ * out_width_ * width_, width_, out_width_, o, out + h * out_width_);
    }
  }

 private:
  // Slices shorter than this cost more in their loop than they save.
  static constexpr int64_t kMinPositions = 32;
  // Each slice and head: its maximum and sum at stats_offset, its values at values_offset.
  int64_t stats_offset(int64_t s, int64_t h) const { return (s * heads_ + h) * 2; }
  int64_t values_offset(int64_t s, int64_t h) const { return count_ * heads_ * 2 + (s * heads_ + h) * width_; }
  int64_t positions_, heads_, width_, count_;
  // The calling thread's buffer, zeroed, reused from call to call (one attention call at a time).
  static float* buffer(int64_t size) {
    thread_local std::vector<float> storage;
    storage.assign(static_cast<size_t>(size), 0.0f);
    return storage.data();
  }
  float* state_;
  const float* value_proj_ = nullptr;
  int64_t rep_ = 1, out_width_ = 0;
};

// The output projection as the phase after the heads' (cpu::parallel_phases): rows of y = o_proj(heads),
// one chunk a thread, each merging the position slices into its own copy of the heads' outputs and
// quantizing them for its rows, where the caller ran the whole projection alone after the heads'
// loop (fine.json int8: ~3 us a layer; with the MoE's two phases, step flips 0.973-0.980,
// docs/decode.md "One region a module").
class OutputRows {
 public:
  OutputRows(const torch::nn::Linear& o_proj, const PositionSlices& slices, const at::Tensor& like)
      : rows_(o_proj, o_proj->options.in_features()),
        slices_(slices),
        in_(o_proj->options.in_features()),
        out_(o_proj->weight.size(0)),
        blocks_(cpu::needs_blocks(rows_.format)),
        pairs_(cpu::needs_int4_pairs(rows_.format, rows_.layout)) {
    // Reused (token_buffer.h): the layer adds it into its residual stream and lets it go.
    thread_local TokenBuffer buffer;
    y_ = buffer.get({1, 1, out_}, like.options());
    y_data_ = y_.data_ptr<float>();
  }
  cpu::Phase phase() const {
    const int64_t threads = std::max(1, at::get_num_threads());
    return {out_, (out_ + threads - 1) / threads, *this, cpu::chunk_alignment(rows_.layout)};
  }
  void operator()(int64_t first, int64_t last) const {
    thread_local std::vector<float> heads;
    heads.resize(static_cast<size_t>(in_));
    slices_.merge(heads.data());
    const cpu::KernelInput input(heads.data(), in_, blocks_, pairs_);
    rows_.project(input, first, last, y_data_ + first);
  }
  const at::Tensor& output() const { return y_; }

 private:
  ProjectionRows rows_;
  const PositionSlices& slices_;
  int64_t in_, out_;
  bool blocks_, pairs_;
  at::Tensor y_;
  float* y_data_;
};

void clip(float* v, int64_t n, double limit) {
  if (limit <= 0) return;
  const float c = static_cast<float>(limit);
  for (int64_t i = 0; i < n; ++i) v[i] = std::min(c, std::max(-c, v[i]));
}

// One float32 CPU token at inference, a cache to extend, no padding; the projections readable in place
// in their stored formats (with float32 biases), the other weights raw floats.
bool one_token_applies(const at::Tensor& x, const AttentionContext& ctx, bool training,
                       std::initializer_list<const torch::nn::Linear*> projections, std::initializer_list<const at::Tensor*> floats) {
  if (training || ctx.cache == nullptr || ctx.key_padding.defined() || x.dim() != 3 || x.size(0) != 1 || x.size(1) != 1 ||
      !cpu::is_plain_float(x))
    return false;
  for (const torch::nn::Linear* linear : projections) {
    if (!is_stored_matrix((*linear)->weight, (*linear)->options.in_features())) return false;
    if ((*linear)->bias.defined() && !cpu::is_plain_float((*linear)->bias)) return false;
  }
  for (const at::Tensor* w : floats)
    if (!cpu::is_plain_float(*w)) return false;
  const LayerCache& cache = *ctx.cache;
  const at::ScalarType dtype = cache.first.defined() ? cache.first.scalar_type() : at::ScalarType::Undefined;
  const bool kernel_dtype = dtype == at::kFloat || dtype == at::kBFloat16;
  return !cache.first.defined() || (kernel_dtype && cache.first.size(0) == 1 && cache.first.is_contiguous() &&
                                    cache.second.scalar_type() == cache.first.scalar_type() && cache.second.is_contiguous());
}

// f(first, second) with the cache's two tensors as float or bfloat16 rows (one_token_applies).
template <typename F>
void with_cache_rows(const LayerCache& cache, F&& f) {
  if (cache.first.scalar_type() == at::kBFloat16)
    f(cache.first.data_ptr<c10::BFloat16>(), cache.second.data_ptr<c10::BFloat16>());
  else
    f(cache.first.data_ptr<float>(), cache.second.data_ptr<float>());
}

}  // namespace

bool MLAttentionImpl::one_token_path_applies(const at::Tensor& x, const AttentionContext& ctx) const {
  // k_nope_proj and v_proj meet the whole cached latent in the absorbed form: raw floats (weight_format.h).
  return one_token_applies(x, ctx, is_training(), {&q_nope_proj, &q_rope_proj, &kv_down_proj, &k_rope_proj, &o_proj},
                           {&k_nope_proj->weight, &v_proj->weight, &q_nope_norm->weight, &q_rope_norm->weight, &kv_down_norm->weight});
}

at::Tensor MLAttentionImpl::forward_one_token(const at::Tensor& x, AttentionContext& ctx) {
  const float* token = x.data_ptr<float>();
  const int64_t C = kv_down_proj->weight.size(0), D = head_dim_, rep = heads_ / kv_heads_;
  const cpu::KernelInput input = input_for(token, {&q_nope_proj, &q_rope_proj, &kv_down_proj});
  std::vector<float> latent = project_token(kv_down_proj, input);
  rms_norm(latent.data(), 1, C, kv_down_norm->weight, kv_down_norm->eps());
  const auto [cos_row, sin_row] = ctx.rope_mla->cpu_row(ctx.position);
  std::vector<float> rope_key = project_token(k_rope_proj, latent.data());
  rope(rope_key.data(), kv_heads_, rope_, cos_row, sin_row);
  if (!ctx.cache->append_token(latent.data(), C, rope_key.data(), kv_heads_ * rope_))
    ctx.cache->append(at::from_blob(latent.data(), {1, 1, C}), at::from_blob(rope_key.data(), {1, 1, kv_heads_, rope_}));

  const LayerCache& cache = *ctx.cache;
  const int64_t T = cache.length();
  const float* Wk = k_nope_proj->weight.data_ptr<float>();  // [kv_heads * nope, C]
  const float* Wv = v_proj->weight.data_ptr<float>();       // [kv_heads * D, C]
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  std::vector<float> q_nope(static_cast<size_t>(heads_ * nope_)), q_rope(static_cast<size_t>(heads_ * rope_)), absorbed(static_cast<size_t>(heads_ * C));
  const ProjectionRows nope_rows(q_nope_proj, x.size(2)), rope_rows(q_rope_proj, x.size(2));
  const float *nope_norm = q_nope_norm->weight.data_ptr<float>(), *rope_norm = q_rope_norm->weight.data_ptr<float>();
  const double nope_eps = q_nope_norm->eps(), rope_eps = q_rope_norm->eps();
  // Three phases: the heads' queries, a pair of heads a unit (projected, normalised, rotated, and the
  // nope part absorbed into W_k^T q); then the heads over slices of the cached positions, every
  // head's scores and mixture of a slice (a pair of heads reads the slice's latents once: dot_rows2,
  // weighted_row_sum2); then the output projection, each chunk merging the slices and projecting
  // each head's mixed latent by W_v. L: the latents [T, C], R: the rope keys [T, kv_heads, rope],
  // contiguous (one_token_applies), float or bfloat16.
  PositionSlices slices(T, heads_, C);
  slices.project_values(Wv, rep, D);
  const OutputRows output(o_proj, slices, x);
  const auto queries = [&](int64_t first, int64_t last) {
    for (int64_t pair = first; pair < last; ++pair) {
      const int64_t h0 = 2 * pair, n = std::min<int64_t>(2, heads_ - h0);
      float *pair_nope = q_nope.data() + h0 * nope_, *pair_rope = q_rope.data() + h0 * rope_;
      nope_rows.project(input, h0 * nope_, (h0 + n) * nope_, pair_nope);
      rope_rows.project(input, h0 * rope_, (h0 + n) * rope_, pair_rope);
      cpu::rms_norm(pair_nope, pair_nope, n, nope_, nope_norm, nope_eps);
      cpu::rms_norm(pair_rope, pair_rope, n, rope_, rope_norm, rope_eps);
      rope(pair_rope, n, rope_, cos_row, sin_row);
      for (int64_t h = h0; h < h0 + n; ++h) {
        float* a = absorbed.data() + h * C;
        std::fill(a, a + C, 0.0f);
        for (int64_t i = 0; i < nope_; ++i) {
          const float q = q_nope[h * nope_ + i];
          const float* w = Wk + (h / rep * nope_ + i) * C;
          for (int64_t c = 0; c < C; ++c) a[c] += q * w[c];
        }
      }
    }
  };
  with_cache_rows(cache, [&](const auto* L, const auto* R) {
    const auto attend_slices = [&](int64_t first, int64_t last) {
      thread_local std::vector<float> scores;  // each thread's own
      scores.resize(static_cast<size_t>(2 * slices.largest()));
      for (int64_t slice = first; slice < last; ++slice) {
        const int64_t t0 = slices.first(slice), n = slices.size(slice);
        const auto *latents = L + t0 * C, *rope_keys = R + t0 * kv_heads_ * rope_;
        for (int64_t h0 = 0; h0 < heads_; h0 += 2) {
          float *s0 = scores.data(), *s1 = scores.data() + n;
          const int64_t g0 = h0 / rep;
          const float* qr0 = q_rope.data() + h0 * rope_;
          if (h0 + 1 < heads_) {
            const int64_t g1 = (h0 + 1) / rep;
            const float* qr1 = q_rope.data() + (h0 + 1) * rope_;
            cpu::dot_rows2(absorbed.data() + h0 * C, absorbed.data() + (h0 + 1) * C, latents, C, n, C, scale, s0, s1);
            if (g0 == g1) {
              cpu::dot_rows2(qr0, qr1, rope_keys + g0 * rope_, kv_heads_ * rope_, n, rope_, scale, s0, s1, /*accumulate=*/true);
            } else {
              cpu::dot_rows(qr0, rope_keys + g0 * rope_, kv_heads_ * rope_, n, rope_, scale, s0, /*accumulate=*/true);
              cpu::dot_rows(qr1, rope_keys + g1 * rope_, kv_heads_ * rope_, n, rope_, scale, s1, /*accumulate=*/true);
            }
            slices.exponentiate(slice, h0, s0, n);
            slices.exponentiate(slice, h0 + 1, s1, n);
            cpu::weighted_row_sum2(s0, s1, latents, C, n, C, slices.values(slice, h0), slices.values(slice, h0 + 1));
          } else {
            cpu::dot_rows(absorbed.data() + h0 * C, latents, C, n, C, scale, s0);
            cpu::dot_rows(qr0, rope_keys + g0 * rope_, kv_heads_ * rope_, n, rope_, scale, s0, /*accumulate=*/true);
            slices.exponentiate(slice, h0, s0, n);
            cpu::weighted_row_sum(s0, latents, C, n, C, slices.values(slice, h0));
          }
        }
      }
    };
    cpu::parallel_phases({{(heads_ + 1) / 2, 1, queries}, {slices.count(), 1, attend_slices}, output.phase()});
  });
  return output.output();
}

bool WindowAttentionImpl::one_token_path_applies(const at::Tensor& x, const AttentionContext& ctx) const {
  if (!one_token_applies(x, ctx, is_training(), {&q_proj, &k_proj, &v_proj, &o_proj}, {})) return false;
  return q_norm.is_empty() || (cpu::is_plain_float(q_norm->weight) && cpu::is_plain_float(k_norm->weight));
}

at::Tensor WindowAttentionImpl::forward_one_token(const at::Tensor& x, AttentionContext& ctx) {
  const float* token = x.data_ptr<float>();
  const int64_t D = head_dim_, rep = heads_ / kv_heads_, P = ctx.position, H = x.size(2);
  const cpu::KernelInput input = input_for(token, {&q_proj, &k_proj, &v_proj});
  const auto [cos_row, sin_row] = ctx.rope_full->cpu_row(P);
  std::vector<float> q(static_cast<size_t>(heads_ * D)), k(static_cast<size_t>(kv_heads_ * D)), v(static_cast<size_t>(kv_heads_ * D));
  const ProjectionRows q_rows(q_proj, H), k_rows(k_proj, H), v_rows(v_proj, H);
  const bool per_head_norm = qk_norm_ == QkNorm::per_head;
  const float *q_scale = per_head_norm ? q_norm->weight.data_ptr<float>() : nullptr, *k_scale = per_head_norm ? k_norm->weight.data_ptr<float>() : nullptr;
  const double q_eps = per_head_norm ? q_norm->eps() : 0, k_eps = per_head_norm ? k_norm->eps() : 0;
  LayerCache& cache = *ctx.cache;
  // Each key-value group's unit projects, normalises and rotates its own queries, key and value and
  // writes them into the cache's new position (one thread ran all of them before the loop; fine.json
  // int8 steps 2.7-3.0% faster so), unless the norm spans every head or the cache has no room for an
  // append in place; then they run here first, in the same order as project_heads: full-width norm,
  // clipping, per-head norm.
  const bool in_units = qk_norm_ != QkNorm::full_width && cache.open_token(kv_heads_ * D, kv_heads_ * D);
  if (!in_units) {
    project_token_into(q_proj, input, q.data());
    project_token_into(k_proj, input, k.data());
    project_token_into(v_proj, input, v.data());
    if (qk_norm_ == QkNorm::full_width) {
      rms_norm(q.data(), 1, heads_ * D, q_norm->weight, q_norm->eps());
      rms_norm(k.data(), 1, kv_heads_ * D, k_norm->weight, k_norm->eps());
    }
    for (auto* values : {&q, &k, &v}) clip(values->data(), static_cast<int64_t>(values->size()), clip_);
    if (qk_norm_ == QkNorm::per_head) {
      rms_norm(q.data(), heads_, D, q_norm->weight, q_norm->eps());
      rms_norm(k.data(), kv_heads_, D, k_norm->weight, k_norm->eps());
    }
    rope(q.data(), heads_, D, cos_row, sin_row);
    rope(k.data(), kv_heads_, D, cos_row, sin_row);
    if (!cache.append_token(k.data(), kv_heads_ * D, v.data(), kv_heads_ * D))
      cache.append(at::from_blob(k.data(), {1, 1, kv_heads_, D}), at::from_blob(v.data(), {1, 1, kv_heads_, D}));
  }

  const int64_t T = cache.length();
  // Key t sits at position P - (T - 1) + t; the query at P sees (P - window, P].
  const int64_t first_key = window_ > 0 ? std::max<int64_t>(0, T - window_) : 0;
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  const int64_t S = T - first_key;
  // Two phases before the output projection's: each key-value group's projections (unless they ran
  // above), then the heads over slices of the positions, a group's heads in pairs: two heads read the
  // group's keys and values once (dot_rows2, weighted_row_sum2: the same sums as one head at a time).
  // K and V [T, kv_heads, D], float or bfloat16: the cache's own views, by reference, so that
  // keep_last below slides them in place (a held view is rebuilt: 1.3% of a fine.json step);
  // contiguous, as one_token_applies asks.
  PositionSlices slices(S, heads_, D);
  const OutputRows output(o_proj, slices, x);
  const auto project_groups = [&](int64_t first, int64_t last) {
    for (int64_t g = first; g < last; ++g) {
      float *group_q = q.data() + g * rep * D, *key = k.data() + g * D, *value = v.data() + g * D;
      q_rows.project(input, g * rep * D, (g + 1) * rep * D, group_q);
      k_rows.project(input, g * D, (g + 1) * D, key);
      v_rows.project(input, g * D, (g + 1) * D, value);
      clip(group_q, rep * D, clip_);
      clip(key, D, clip_);
      clip(value, D, clip_);
      if (per_head_norm) {
        cpu::rms_norm(group_q, group_q, rep, D, q_scale, q_eps);
        cpu::rms_norm(key, key, 1, D, k_scale, k_eps);
      }
      rope(group_q, rep, D, cos_row, sin_row);
      rope(key, 1, D, cos_row, sin_row);
      cache.put_token(g * D, key, D, g * D, value, D);
    }
  };
  with_cache_rows(cache, [&](const auto* K, const auto* V) {
    const auto attend_slices = [&](int64_t first, int64_t last) {
      thread_local std::vector<float> scores;  // each thread's own
      scores.resize(static_cast<size_t>(2 * slices.largest()));
      for (int64_t slice = first; slice < last; ++slice) {
        const int64_t t0 = first_key + slices.first(slice), n = slices.size(slice);
        for (int64_t g = 0; g < kv_heads_; ++g) {
          const auto *keys = K + (t0 * kv_heads_ + g) * D, *values = V + (t0 * kv_heads_ + g) * D;
          for (int64_t h0 = g * rep; h0 < (g + 1) * rep; h0 += 2) {
            float *s0 = scores.data(), *s1 = scores.data() + n;
            if (h0 + 1 < (g + 1) * rep) {
              cpu::dot_rows2(q.data() + h0 * D, q.data() + (h0 + 1) * D, keys, kv_heads_ * D, n, D, scale, s0, s1);
              slices.exponentiate(slice, h0, s0, n);
              slices.exponentiate(slice, h0 + 1, s1, n);
              cpu::weighted_row_sum2(s0, s1, values, kv_heads_ * D, n, D, slices.values(slice, h0), slices.values(slice, h0 + 1));
            } else {
              cpu::dot_rows(q.data() + h0 * D, keys, kv_heads_ * D, n, D, scale, s0);
              slices.exponentiate(slice, h0, s0, n);
              cpu::weighted_row_sum(s0, values, kv_heads_ * D, n, D, slices.values(slice, h0));
            }
          }
        }
      }
    };
    if (in_units)
      cpu::parallel_phases({{kv_heads_, 1, project_groups}, {slices.count(), 1, attend_slices}, output.phase()});
    else
      cpu::parallel_phases({{slices.count(), 1, attend_slices}, output.phase()});
  });
  if (window_ > 0) cache.keep_last(std::min(T, window_));
  return output.output();
}

}  // namespace chronos
