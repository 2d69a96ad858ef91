// Block-format matrices in groups of four rows (model/row_groups.h): the layout byte for byte, exact
// round trips, the stored-matrix functions on it, and tensors that are no such matrix refused in one
// line.
#include "model/row_groups.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <string>

#include "chronos/core/error.h"
#include "chronos/model/weight_format.h"
#include "model/format_kernels.h"
#include "model/stored_rows.h"

namespace chronos {
namespace {

const std::vector<WeightFormat> kBlockFormats = {WeightFormat::int8, WeightFormat::int4};

// Each piece of each row where the layout says: the scale of row k's block b at 8 b + 2 k, its
// quants in 16-byte pieces, piece h at 8 B + 4 Q b + 64 h + 16 k, groups one after another.
TEST(RowGroups, PutEachPieceWhereTheLayoutSays) {
  at::manual_seed(41);
  for (const WeightFormat format : kBlockFormats) {
    const int64_t quant_bytes = block_quant_bytes(format), block_bytes = 2 + quant_bytes;
    for (const int64_t cols : {int64_t{1}, int64_t{32}, int64_t{33}, int64_t{100}, int64_t{256}}) {
      SCOPED_TRACE(std::string(to_string(format)) + " cols " + std::to_string(cols));
      const int64_t rows = 12, blocks = (cols + 31) / 32, row_bytes = block_bytes * blocks;
      const at::Tensor row_major = to_weight_format(at::randn({rows, cols}), format);
      const at::Tensor grouped = group_rows(row_major, format, cols);
      ASSERT_EQ(grouped.sizes(), (std::vector<int64_t>{rows, blocks, block_bytes}));
      EXPECT_EQ(grouped.nbytes(), row_major.nbytes());
      const uint8_t* in = row_major.data_ptr<uint8_t>();
      const uint8_t* out = grouped.data_ptr<uint8_t>();
      for (int64_t r = 0; r < rows; ++r) {
        const uint8_t* group = out + r / 4 * 4 * row_bytes;
        const int64_t k = r % 4;
        for (int64_t b = 0; b < blocks; ++b) {
          const uint8_t* block = in + r * row_bytes + b * block_bytes;
          EXPECT_EQ(std::memcmp(group + 8 * b + 2 * k, block, 2), 0) << "row " << r << " block " << b;
          for (int64_t h = 0; h < quant_bytes / 16; ++h)
            EXPECT_EQ(std::memcmp(group + 8 * blocks + 4 * quant_bytes * b + 64 * h + 16 * k, block + 2 + 16 * h, 16), 0)
                << "row " << r << " block " << b << " piece " << h;
        }
      }
      EXPECT_TRUE(ungroup_rows(grouped, 0, rows).equal(row_major));
      EXPECT_TRUE(ungroup_rows(grouped, 3, 6).equal(row_major.narrow(0, 3, 6)));
    }
  }
}

// The stored-matrix functions read the groups as the row-major matrix they came from.
TEST(RowGroups, ReadAsTheRowMajorMatrix) {
  at::manual_seed(42);
  const int64_t rows = 8, cols = 70;
  for (const WeightFormat format : kBlockFormats) {
    SCOPED_TRACE(to_string(format));
    const at::Tensor row_major = to_weight_format(at::randn({rows, cols}), format);
    const at::Tensor grouped = group_rows(row_major, format, cols);
    EXPECT_EQ(grouped_format(grouped, cols), format);
    EXPECT_FALSE(grouped_format(row_major, cols));
    EXPECT_FALSE(grouped_format(grouped, 100));  // another column count: other blocks a row
    EXPECT_EQ(stored_format(grouped, cols), format);
    EXPECT_TRUE(is_stored_matrix(grouped, cols));
    EXPECT_EQ(cpu::row_layout(grouped, cols), cpu::RowLayout::groups);
    EXPECT_EQ(cpu::row_layout(row_major, cols), cpu::RowLayout::rows);
    const at::Tensor wide = widen_weight(row_major, cols);
    EXPECT_TRUE(widen_weight(grouped, cols).equal(wide));
    EXPECT_TRUE(widen_rows(grouped, 1, 6, cols).equal(wide.narrow(0, 1, 6)));
    EXPECT_TRUE(widen_rows(row_major, 1, 6, cols).equal(wide.narrow(0, 1, 6)));
    const at::Tensor ids = at::tensor({7, 0, 3, 3}, at::kLong);
    EXPECT_TRUE(widen_selected_rows(grouped, ids, cols).equal(wide.index_select(0, ids)));
    EXPECT_THROW(widen_selected_rows(grouped, at::tensor({8}, at::kLong), cols), InvalidArgument);
  }
}

void expect_error(const std::function<void()>& call, const std::string& fragment) {
  try {
    call();
    FAIL() << "expected an error naming '" << fragment << "'";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

// `weights` stored in `format`: row-major, and for the block formats in row groups too.
std::vector<at::Tensor> stored_layouts(const at::Tensor& weights, WeightFormat format) {
  const at::Tensor row_major = to_weight_format(weights, format);
  if (format != WeightFormat::int8 && format != WeightFormat::int4) return {row_major};
  return {row_major, group_rows(row_major, format, weights.size(1))};
}

// One row widened into floats (a decode step's embedding) equals the matrix's widened row, in every
// format and layout; a row outside the matrix is one clear error.
TEST(RowGroups, OneRowWidensAsTheMatrixDoes) {
  at::manual_seed(43);
  const int64_t rows = 8, cols = 70;
  const at::Tensor weights = at::randn({rows, cols});
  for (const WeightFormat format : {WeightFormat::fp32, WeightFormat::bf16, WeightFormat::int8, WeightFormat::int4}) {
    const at::Tensor wide = widen_weight(to_weight_format(weights, format), cols);
    for (const at::Tensor& stored : stored_layouts(weights, format)) {
      SCOPED_TRACE(std::string(to_string(format)) + (stored.dim() == 3 ? " in row groups" : ""));
      at::Tensor row = at::empty({cols});
      for (const int64_t r : {int64_t{0}, int64_t{5}, rows - 1}) {
        widen_row_into(stored, r, cols, row.data_ptr<float>());
        EXPECT_TRUE(row.equal(wide[r])) << "row " << r;
      }
      expect_error([&] { widen_row_into(stored, rows, cols, row.data_ptr<float>()); }, "row 8 of a matrix of 8 rows");
      expect_error([&] { widen_row_into(stored, -1, cols, row.data_ptr<float>()); }, "row -1");
    }
  }
}

// Many rows widened into one buffer, the rows split over the threads (chunks of 64 K values: rows
// 3..992 of 70 columns are two), equal the matrix's widened rows in every format and layout, the
// last block of each row partial; rows outside the matrix are one clear error.
TEST(RowGroups, ManyRowsWidenIntoOneBufferAsTheMatrixDoes) {
  at::manual_seed(44);
  const int64_t rows = 1000, cols = 70, first = 3, count = 990;
  const at::Tensor weights = at::randn({rows, cols});
  for (const WeightFormat format : {WeightFormat::fp32, WeightFormat::bf16, WeightFormat::int8, WeightFormat::int4}) {
    const at::Tensor wide = widen_weight(to_weight_format(weights, format), cols);
    for (const at::Tensor& stored : stored_layouts(weights, format)) {
      SCOPED_TRACE(std::string(to_string(format)) + (stored.dim() == 3 ? " in row groups" : ""));
      at::Tensor out = at::full({count, cols}, -1.0f);
      widen_rows_into(stored, first, count, cols, out.data_ptr<float>());
      EXPECT_TRUE(out.equal(wide.narrow(0, first, count)));
      EXPECT_TRUE(widen_rows(stored, first, count, cols).equal(wide.narrow(0, first, count)));
      expect_error([&] { widen_rows_into(stored, 990, 11, cols, out.data_ptr<float>()); }, "rows [990, 1001) of a matrix of 1000 rows");
      expect_error([&] { widen_rows_into(stored, -1, 2, cols, out.data_ptr<float>()); }, "rows [-1, 1)");
    }
  }
}

TEST(RowGroups, RefuseWhatIsNoMatrixOfGroups) {
  const at::Tensor six_rows = to_weight_format(at::randn({6, 64}), WeightFormat::int8);
  expect_error([&] { group_rows(six_rows, WeightFormat::int8, 64); }, "rows a multiple of 4");
  expect_error([&] { group_rows(six_rows.narrow(0, 0, 4), WeightFormat::int8, 100); }, "uint8 [rows, 136]");
  expect_error([&] { group_rows(six_rows.narrow(0, 0, 4), WeightFormat::int4, 64); }, "no int4 matrix of 64 columns");
  expect_error([&] { group_rows(at::zeros({4, 64}), WeightFormat::bf16, 64); }, "bf16 is no block format");
  const at::Tensor grouped = group_rows(six_rows.narrow(0, 0, 4), WeightFormat::int8, 64);
  expect_error([&] { ungroup_rows(grouped, 2, 3); }, "rows [2, 5) of 4");
  // A damaged shape is no stored matrix, and stored_format says what one looks like.
  const at::Tensor damaged = at::zeros({4, 2, 33}, at::kByte);
  EXPECT_FALSE(is_stored_matrix(damaged, 64));
  expect_error([&] { stored_format(damaged, 64); }, "[rows, 2, 34 or 18] in groups of four rows");
  expect_error([&] { ungroup_rows(damaged, 0, 4); }, "no matrix in row groups");
  expect_error([&] { ungroup_rows(at::zeros({6, 2, 34}, at::kByte), 0, 4); }, "rows a multiple of 4");
}

}  // namespace
}  // namespace chronos
