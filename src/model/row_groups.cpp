#include "model/row_groups.h"

#include <ATen/ATen.h>

#include <cstring>

#include "chronos/core/error.h"
#include "chronos/model/quantized.h"

namespace chronos {
namespace {

constexpr int64_t kPiece = 16;

int64_t blocks_of(int64_t cols) { return (cols + kQuantBlock - 1) / kQuantBlock; }

// Calls fn(row-major byte offset, grouped byte offset, bytes) for each piece of row `row`: per block,
// its scale and its 16-byte pieces of quants.
template <typename Fn>
void for_each_piece(int64_t block_bytes, int64_t blocks, int64_t row, Fn&& fn) {
  const int64_t quant_bytes = block_bytes - 2;
  const int64_t group = row / kGroupRows * kGroupRows * blocks * block_bytes, k = row % kGroupRows;
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t block = b * block_bytes;
    fn(block, group + group_scale_offset(b, k), 2);
    for (int64_t h = 0; h < quant_bytes / kPiece; ++h)
      fn(block + 2 + h * kPiece, group + group_quants_offset(blocks, quant_bytes, b, k) + 64 * h, kPiece);
  }
}

bool block_format(WeightFormat format) { return format == WeightFormat::int8 || format == WeightFormat::int4; }

}  // namespace

std::optional<WeightFormat> grouped_format(const at::Tensor& t, int64_t cols) {
  if (!t.defined() || t.scalar_type() != at::kByte || t.dim() != 3 || t.size(0) % kGroupRows != 0 || t.size(1) != blocks_of(cols))
    return std::nullopt;
  for (const WeightFormat f : {WeightFormat::int8, WeightFormat::int4})
    if (t.size(2) == 2 + block_quant_bytes(f)) return f;
  return std::nullopt;
}

at::Tensor group_rows(const at::Tensor& row_major, WeightFormat format, int64_t cols) {
  if (!block_format(format)) throw InvalidArgument(cat("group_rows: ", to_string(format), " is no block format"));
  const int64_t blocks = blocks_of(cols), block_bytes = 2 + block_quant_bytes(format), row_bytes = blocks * block_bytes;
  if (row_major.scalar_type() != at::kByte || row_major.dim() != 2 || row_major.size(1) != row_bytes || row_major.size(0) % kGroupRows != 0)
    throw InvalidArgument(cat("group_rows: a ", row_major.scalar_type(), " ", row_major.sizes(), " tensor is no ", to_string(format), " matrix of ",
                              cols, " columns in rows a multiple of ", kGroupRows, " (uint8 [rows, ", row_bytes, "])"));
  const at::Tensor src = row_major.contiguous();
  const int64_t rows = src.size(0);
  at::Tensor grouped = at::empty({rows, blocks, block_bytes}, src.options());
  const uint8_t* in = src.data_ptr<uint8_t>();
  uint8_t* out = grouped.data_ptr<uint8_t>();
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* row = in + r * row_bytes;
    for_each_piece(block_bytes, blocks, r,
                   [&](int64_t from, int64_t to, int64_t bytes) { std::memcpy(out + to, row + from, static_cast<size_t>(bytes)); });
  }
  return grouped;
}

void ungroup_row(const uint8_t* grouped, int64_t block_bytes, int64_t blocks, int64_t row, uint8_t* dst) {
  for_each_piece(block_bytes, blocks, row,
                 [&](int64_t to, int64_t from, int64_t bytes) { std::memcpy(dst + to, grouped + from, static_cast<size_t>(bytes)); });
}

at::Tensor ungroup_rows(const at::Tensor& grouped, int64_t first, int64_t count) {
  const bool shaped = grouped.scalar_type() == at::kByte && grouped.dim() == 3 && grouped.size(0) % kGroupRows == 0 &&
                      (grouped.size(2) == 2 + block_quant_bytes(WeightFormat::int8) || grouped.size(2) == 2 + block_quant_bytes(WeightFormat::int4));
  if (!shaped)
    throw InvalidArgument(cat("ungroup_rows: a ", grouped.scalar_type(), " ", grouped.sizes(),
                              " tensor is no matrix in row groups (uint8 [rows, blocks, 34] for int8 or [rows, blocks, 18] for int4, rows a "
                              "multiple of ",
                              kGroupRows, ")"));
  if (first < 0 || count < 0 || first + count > grouped.size(0))
    throw InvalidArgument(cat("ungroup_rows: rows [", first, ", ", first + count, ") of ", grouped.size(0)));
  const at::Tensor src = grouped.contiguous();
  const int64_t blocks = src.size(1), block_bytes = src.size(2), row_bytes = blocks * block_bytes;
  at::Tensor out = at::empty({count, row_bytes}, src.options());
  for (int64_t r = 0; r < count; ++r)
    ungroup_row(src.data_ptr<uint8_t>(), block_bytes, blocks, first + r, out.data_ptr<uint8_t>() + r * row_bytes);
  return out;
}

}  // namespace chronos
