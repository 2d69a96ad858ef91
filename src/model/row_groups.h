// Block-format matrices (int8, int4) in groups of four rows: the layout a model converted to those
// formats keeps its matrices in for decoding (docs/formats.md "Weight formats", docs/decode.md).
// Row-major blocks (chronos/model/quantized.h) put each row after the last, so a kernel reading four
// rows at once follows four streams, and one reading a row at a time spends most of its instructions
// on per-block scales and 16- or 32-byte pieces. Here the blocks of four rows lie side by side: one
// 64-byte load holds sixteen quants of each of the four rows (int4: all 32, as nibbles), which meet
// the input's sixteen in one vpdpbusd, and one 8-byte load holds their four scales. (llama.cpp
// repacks its CPU weights to like layouts at load for the same reason.)
//
// A group of four rows of B blocks takes as many bytes as its rows do row-major, 4 (2 + Q) B, where
// Q is a block's quant bytes (int8 32, int4 16):
//  - first the float16 scales, block by block: block b's four (rows 0..3) at 8 b;
//  - then the quants, 4 Q bytes a block, at 8 B + 4 Q b, in 16-byte pieces: piece h (bytes 16 h ..
//    16 h + 15 of a row's block) of row k at 64 h + 16 k.
// Groups follow each other. The tensor is uint8 [rows, B, 2 + Q] (rows a multiple of four), never
// mistaken for the row-major uint8 [rows, (2 + Q) B]; only matrices whose rows are a multiple of four
// take this layout.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <optional>

#include "chronos/model/weight_format.h"

namespace chronos {

constexpr int64_t kGroupRows = 4;

// A block's quant bytes: int8 32, int4 16.
constexpr int64_t block_quant_bytes(WeightFormat format) { return format == WeightFormat::int4 ? 16 : 32; }

// Byte offsets inside a group of B blocks: row k's scale of block b, and the first 16 bytes of its
// quants (the next 16, int8's quants 16..31, 64 bytes further).
constexpr int64_t group_scale_offset(int64_t b, int64_t k) { return 8 * b + 2 * k; }
constexpr int64_t group_quants_offset(int64_t blocks, int64_t quant_bytes, int64_t b, int64_t k) {
  return 8 * blocks + 4 * quant_bytes * b + 16 * k;
}

// The format of `t` when it is a matrix of `cols` columns in row groups: int8 for uint8
// [rows, ceil(cols / 32), 34], int4 for [rows, ceil(cols / 32), 18], rows a multiple of four.
std::optional<WeightFormat> grouped_format(const at::Tensor& t, int64_t cols);

// Row-major blocks of `format`, uint8 [rows, row bytes] (rows a multiple of four) -> the grouped tensor.
at::Tensor group_rows(const at::Tensor& row_major, WeightFormat format, int64_t cols);

// The grouped tensor -> row-major uint8 [count, row bytes]: `count` rows from `first`.
at::Tensor ungroup_rows(const at::Tensor& grouped, int64_t first, int64_t count);

// One row of a grouped matrix of `blocks` blocks of `block_bytes` (34 or 18) a row, in row-major
// bytes, at dst.
void ungroup_row(const uint8_t* grouped, int64_t block_bytes, int64_t blocks, int64_t row, uint8_t* dst);

}  // namespace chronos
