// Rows of a stored matrix (chronos/model/weight_format.h) widened to float32, whatever its layout:
// the general path and the embedding read them so from the row groups of model/row_groups.h too,
// which a narrow() or index_select() over the tensor's first dimension would misread.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace chronos {

// float32 [count, cols]: rows [first, first + count).
at::Tensor widen_rows(const at::Tensor& stored, int64_t first, int64_t count, int64_t cols);

// widen_rows into out [count, cols] (a CPU matrix), the rows split over LibTorch's threads: the
// general path widens a prompt's matrices tile by tile into one buffer. Throws InvalidArgument for
// rows outside the matrix.
void widen_rows_into(const at::Tensor& stored, int64_t first, int64_t count, int64_t cols, float* out);

// float32 [index.numel(), cols]: the rows `index` names (int64 ids, each checked against the rows).
at::Tensor widen_selected_rows(const at::Tensor& stored, const at::Tensor& index, int64_t cols);

// Row `row` of a CPU stored matrix (any format and layout) widened into cols floats at out: one
// token's embedding without the tensor operations of widen_selected_rows. Throws InvalidArgument
// for a row outside the matrix.
void widen_row_into(const at::Tensor& stored, int64_t row, int64_t cols, float* out);

}  // namespace chronos
