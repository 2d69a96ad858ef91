// Block-quantized weight matrices for routed experts (docs/formats.md "Quantized experts"). Each row
// of a [rows, cols] matrix is cut into blocks of kQuantBlock weights; the last block of a row is
// zero-padded when cols is not a multiple of it. A block is its fp16 scale d (little endian) followed
// by its quants, and a weight is d * q:
//  - int8: q = round(w / d) in [-127, 127] with d = max|w| / 127; 2 + 32 bytes per block;
//  - int4: d = m / -8 where m is the block's weight of largest magnitude (sign kept), q = round(w / d)
//    clamped to [-8, 7] and stored as q + 8 in a nibble: byte j holds weight j (low nibble) and weight
//    j + 16 (high nibble); 2 + 16 bytes per block.
// Symmetric, as in GGML's Q8_0 / Q4_0 block formats (our own byte layout, not GGUF's).
// Quantized matrices travel as uint8 tensors [rows, quantized_row_bytes(format, cols)].
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>

namespace chronos {

enum class QuantFormat : uint8_t { none, int8, int4 };

constexpr int64_t kQuantBlock = 32;

// "none", "int8", "int4".
const char* to_string(QuantFormat format);

// Bytes of one block (scale and quants); 0 for none.
int64_t quantized_block_bytes(QuantFormat format);

// Bytes of one quantized row of `cols` weights: ceil(cols / kQuantBlock) blocks.
int64_t quantized_row_bytes(QuantFormat format, int64_t cols);

// Quantizes one row of `cols` floats into quantized_row_bytes(format, cols) bytes at `dst`.
void quantize_row(QuantFormat format, const float* src, int64_t cols, uint8_t* dst);

// The inverse: `cols` floats d * q.
void dequantize_row(QuantFormat format, const uint8_t* src, int64_t cols, float* dst);

// [rows, cols] floating-point weights (any float dtype, any device) -> [rows, row bytes] uint8 on the CPU.
at::Tensor quantize_matrix(const at::Tensor& weight, QuantFormat format);

// [rows, row bytes] uint8 -> [rows, cols] float32 on the CPU. Throws InvalidArgument on a shape that
// does not fit `cols`.
at::Tensor dequantize_matrix(const at::Tensor& quantized, QuantFormat format, int64_t cols);

}  // namespace chronos
