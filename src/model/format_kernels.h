// Batch-1 kernels for the stored weight formats (chronos/model/weight_format.h): one token's input
// against rows of bfloat16, int8 or int4 weights, at the rows' packed size.
//  - bf16 widens in registers and multiplies in float32: below 8,192 columns a row meets the input
//    rearranged in even and odd columns (a shift gives each 32-bit pair's even weight as a float, a
//    mask its odd one), rows of 8,192 columns and more go four at a time (one load of the input for
//    four rows, each weight zero-extended and shifted);
//  - int8 and int4 multiply integers: the input is cut into blocks of 32 quantized to int8 with one
//    float scale each (max|x| / 127, as GGML's Q8_0 activations), a block's dot product is a sum of
//    int8 products, scaled once by both scales: fewer instructions per block (counted in the loop
//    bodies: ~8 vector operations against ~18 for widening each weight to float and multiplying;
//    ~4 with AVX-512 VNNI's vpdpbusd); int4 takes two blocks a step, which halves the unpacking and
//    float work per block (the input's group layout below).
// The AVX-512 implementation works on 512-bit vectors: 16 bf16 weights, two int8 blocks or four int4
// blocks a step.
// Block-format matrices in groups of four rows (model/row_groups.h, how convert_weights leaves them)
// go a block of four rows a step: one 64-byte load of sixteen quants of each row (int4: all 32) meets
// the input's sixteen in one vpdpbusd, one 8-byte load gives the four rows' scales.
// The vector implementations of row-major int4 give the same bits (the same int32 lanes, the same float steps:
// a 512-bit accumulator holds the two 256-bit ones of AVX2 side by side).
// The general (batch) path computes the same values: it rounds the input to its int8 blocks
// (round_to_input_blocks) before a float32 product with the widened weights.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "chronos/model/weight_format.h"

namespace chronos::cpu {

// The implementations, each level running on the CPUs of the next: portable C++ every CPU runs, AVX2
// with FMA and F16C (x86-64-v3), and AVX-512 (F, VL, BW, DQ and VNNI: Cascade Lake, Ice Lake, Zen 4
// and later) on 512-bit vectors.
enum class FormatIsa { portable, avx2, avx512_vnni };

// The best one this CPU runs; the kernels start with it.
FormatIsa detected_isa();
// The implementations this CPU runs, portable first.
std::vector<FormatIsa> runnable_isas();
// Pins an implementation (tests run every one the CPU supports). Throws InvalidArgument when the CPU
// lacks it. Not thread-safe against running kernels.
void use_isa(FormatIsa isa);
FormatIsa active_isa();
const char* to_string(FormatIsa isa);

// One input vector ready for rows of any format: its floats and, when asked, its int8 blocks (the
// last one zero-padded, as a quantized row's last block is).
// Its buffers come from, and go back to, a small per-thread stock: a one-token step builds ~80 inputs,
// and six allocations each were 1.5% of its time.
class KernelInput {
 public:
  KernelInput() = default;
  // `with_int4_pairs`: also the group layout below that row-major int4 rows read (needs_int4_pairs);
  // row groups and int8 read the blocks alone.
  KernelInput(const float* x, int64_t n, bool with_blocks, bool with_int4_pairs = true) { assign(x, n, with_blocks, with_int4_pairs); }
  KernelInput(KernelInput&&) noexcept = default;
  KernelInput& operator=(KernelInput&&) noexcept = default;
  KernelInput(const KernelInput&) = delete;
  KernelInput& operator=(const KernelInput&) = delete;
  ~KernelInput();
  void assign(const float* x, int64_t n, bool with_blocks, bool with_int4_pairs = true);

  const float* values() const { return values_; }
  int64_t size() const { return n_; }
  bool has_blocks() const { return !b_.scales.empty() || n_ == 0; }
  bool has_int4_pairs() const { return int4_pairs_; }
  // Per block: its scale, its 32 quants, the sum of its quants (the offset term of kernels that meet
  // the weights as unsigned bytes).
  const float* block_scales() const { return b_.scales.data(); }
  const int8_t* block_quants() const { return b_.quants.data(); }
  const int32_t* block_sums() const { return b_.sums.data(); }
  // Per block, -128 times its quant sum: what meeting int8 weights as unsigned bytes (w + 128) adds.
  const int32_t* int8_offsets() const { return b_.int8_offsets.data(); }
  // The whole blocks again in groups of four, for the int4 kernels that take two or four blocks a
  // step: 128 quants a group, quants 0..15 of each of its four blocks, then 16..31 of each. A last pair
  // of blocks (the block count modulo 4 being 2 or 3) follows in the same order over two blocks (64
  // quants); blocks 4g..4g+3 start at quant 128 g. The int4 offsets in pairs (2p, 2p + 1): 4 int32 a
  // pair, -8 * each block's sum at 0 and 2, zero at 1 and 3, so that one zero-extension to 64-bit
  // lanes puts a pair's in lanes 0 and 4 and two pairs' in lanes 0, 4, 8 and 12; pair p at offset 4 p.
  const int8_t* quad_quants() const { return b_.quad_quants.data(); }
  const int32_t* pair_offsets() const { return b_.pair_offsets.data(); }

 private:
  const float* values_ = nullptr;
  int64_t n_ = 0;
  bool int4_pairs_ = false;
  struct Blocks {
    std::vector<float> scales;
    std::vector<int8_t> quants;
    std::vector<int32_t> sums;
    std::vector<int32_t> int8_offsets;
    std::vector<int8_t> quad_quants;
    std::vector<int32_t> pair_offsets;
  };
  static std::vector<Blocks>& stock();  // the calling thread's spare buffers
  Blocks b_;
};

// Replaces each value of x by its int8 block value (scale * quant): what the integer kernels see.
void round_to_input_blocks(float* x, int64_t n);

// How a stored matrix lays out its rows: one after another, or (int8, int4) in groups of four rows
// (model/row_groups.h, the layout convert_weights gives the block formats).
enum class RowLayout : uint8_t { rows, groups };

// The layout of a stored matrix of `cols` columns.
RowLayout row_layout(const at::Tensor& stored, int64_t cols);

// The multiple of rows that work split over threads should cut a matrix of `layout` at: a cut inside
// a group of four reads the group's rows one by one.
inline int64_t chunk_alignment(RowLayout layout) { return layout == RowLayout::groups ? 4 : 1; }

// Whether rows of `format` need the input's int8 blocks, and whether rows of `format` in `layout` need
// its int4 pair layout besides (row-major int4 only: built for every input, it made a fine.json int8
// step 2-6% slower, docs/decode.md "Row groups").
inline bool needs_blocks(WeightFormat format) { return format == WeightFormat::int8 || format == WeightFormat::int4; }
inline bool needs_int4_pairs(WeightFormat format, RowLayout layout) { return format == WeightFormat::int4 && layout == RowLayout::rows; }

// One stored row against the input (blocks assigned when needs_blocks(format)).
float row_dot(WeightFormat format, const void* row, const KernelInput& x);

// out[i] = row first + i of a stored matrix against the input, for rows [first, last): one dispatch
// for the whole range. A range of grouped rows may start and end anywhere: each row's sum is the same
// bits wherever the range cuts.
void rows_dot(WeightFormat format, const void* matrix, int64_t first, int64_t last, const KernelInput& x, float* out,
              RowLayout layout = RowLayout::rows);

// y[out] = W x for a stored W [out, x.size()], rows split over the work pool in chunks of >= 128 KiB
// of weights.
void gemv_stored(WeightFormat format, const void* weight, const KernelInput& x, float* y, int64_t out, RowLayout layout = RowLayout::rows);

}  // namespace chronos::cpu
