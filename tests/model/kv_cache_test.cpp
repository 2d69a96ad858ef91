#include "chronos/model/kv_cache.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <functional>

namespace chronos {
namespace {

at::Tensor rows(int64_t first, int64_t count) { return at::arange(first, first + count, at::kFloat).view({1, count, 1}); }

TEST(LayerCache, AppendEqualsConcatenationAndKeepsEarlierViews) {
  LayerCache cache;
  cache.append(rows(0, 3), rows(100, 3));
  const at::Tensor earlier = cache.first;
  const void* storage = cache.first.data_ptr();
  for (int64_t t = 3; t < 40; ++t) cache.append(rows(t, 1), rows(100 + t, 1));
  EXPECT_TRUE(at::equal(cache.first, rows(0, 40)));
  EXPECT_TRUE(at::equal(cache.second, rows(100, 40)));
  EXPECT_TRUE(at::equal(earlier, rows(0, 3)));  // a view handed out before is never written
  EXPECT_EQ(cache.first.data_ptr(), storage);   // 40 <= the first capacity (64): no reallocation
  for (int64_t t = 40; t < 200; ++t) cache.append(rows(t, 1), rows(100 + t, 1));
  EXPECT_TRUE(at::equal(cache.first, rows(0, 200)));
  EXPECT_EQ(cache.length(), 200);
}

// The views nobody else holds change their sizes in place; a view someone holds keeps its rows.
TEST(LayerCache, UnsharedViewsGrowInPlaceAndHeldOnesKeepTheirRows) {
  LayerCache cache;
  cache.append(rows(0, 3), rows(100, 3));
  cache.append(rows(3, 1), rows(103, 1));
  const c10::TensorImpl* impl = cache.first.unsafeGetTensorImpl();
  cache.append(rows(4, 1), rows(104, 1));
  EXPECT_EQ(cache.first.unsafeGetTensorImpl(), impl);
  EXPECT_TRUE(at::equal(cache.first, rows(0, 5)));
  const at::Tensor held = cache.first, held_values = cache.second;
  cache.append(rows(5, 1), rows(105, 1));
  EXPECT_TRUE(at::equal(held, rows(0, 5)));
  EXPECT_TRUE(at::equal(held_values, rows(100, 5)));
  EXPECT_TRUE(at::equal(cache.first, rows(0, 6)));
  const at::Tensor before_slide = cache.first;
  cache.keep_last(2);
  EXPECT_TRUE(at::equal(before_slide, rows(0, 6)));
  EXPECT_TRUE(at::equal(cache.first, rows(4, 2)));
  EXPECT_TRUE(at::equal(cache.second, rows(104, 2)));
  cache.append(rows(6, 1), rows(106, 1));
  cache.keep_last(2);  // in place now: nothing holds the views
  EXPECT_TRUE(at::equal(cache.first, rows(5, 2)));
  EXPECT_TRUE(at::equal(cache.second, rows(105, 2)));
}

// Two sequences: a position's rows are not adjacent in the storage (the copy path, not the memcpy).
TEST(LayerCache, TwoSequencesAppendAsConcatenation) {
  LayerCache cache;
  at::Tensor expected_a = at::empty({2, 0, 3}), expected_b = at::empty({2, 0, 2});
  for (int64_t t = 0; t < 70; ++t) {
    const at::Tensor a = at::randn({2, 1, 3}), b = at::randn({2, 1, 2});
    cache.append(a, b);
    expected_a = at::cat({expected_a, a}, 1);
    expected_b = at::cat({expected_b, b}, 1);
  }
  EXPECT_TRUE(at::equal(cache.first, expected_a));
  EXPECT_TRUE(at::equal(cache.second, expected_b));
}

TEST(LayerCache, KeepLastSlidesAWindowWithoutGrowingWithoutBound) {
  LayerCache cache;
  cache.append(rows(0, 5), rows(0, 5));
  for (int64_t t = 5; t < 500; ++t) {
    cache.append(rows(t, 1), rows(t, 1));
    cache.keep_last(8);
  }
  EXPECT_TRUE(at::equal(cache.first, rows(492, 8)));
  EXPECT_TRUE(at::equal(cache.second, rows(492, 8)));
  EXPECT_LE(cache.first.storage().nbytes(), static_cast<size_t>(64 * sizeof(float)));
  cache.keep_last(20);  // more than it holds: nothing changes
  EXPECT_EQ(cache.length(), 8);
}

TEST(LayerCache, InputsNeedingAGradientAreConcatenated) {
  LayerCache cache;
  const at::Tensor a = rows(0, 2).requires_grad_();
  cache.append(a, rows(0, 2));
  cache.append(rows(2, 1).requires_grad_(), rows(2, 1));
  ASSERT_TRUE(cache.first.requires_grad());
  cache.first.sum().backward();
  EXPECT_TRUE(at::equal(a.grad(), at::ones_like(a)));
}

TEST(LayerCache, AnotherShapeStartsFreshStorage) {
  LayerCache cache;
  cache.append(rows(0, 2), rows(0, 2));
  cache = LayerCache{};
  cache.append(at::zeros({1, 2, 3}), at::zeros({1, 2, 3}));
  EXPECT_EQ(cache.first.sizes(), (std::vector<int64_t>{1, 2, 3}));
}

// A bfloat16 cache rounds each appended value to nearest even, as at::Tensor::to does, on the one-
// sequence CPU copy and on the general one (two sequences) alike, and keeps doing so as it grows.
TEST(LayerCache, StoreAsBfloat16RoundsAsTensorToDoes) {
  at::manual_seed(12);
  const at::Tensor keys = at::randn({1, 100, 2, 3}) * 1000, values = at::randn({1, 100, 2, 3});
  LayerCache cache;
  cache.store_as = at::kBFloat16;
  cache.append(keys.narrow(1, 0, 10), values.narrow(1, 0, 10));
  for (int64_t t = 10; t < 100; ++t) cache.append(keys.narrow(1, t, 1).contiguous(), values.narrow(1, t, 1).contiguous());
  EXPECT_EQ(cache.first.scalar_type(), at::kBFloat16);
  EXPECT_TRUE(at::equal(cache.first, keys.to(at::kBFloat16)));
  EXPECT_TRUE(at::equal(cache.second, values.to(at::kBFloat16)));

  LayerCache two;
  two.store_as = at::kBFloat16;
  const at::Tensor batch = at::randn({2, 5, 4});
  two.append(batch, batch);
  two.append(batch, batch);
  EXPECT_TRUE(at::equal(two.second, at::cat({batch, batch}, 1).to(at::kBFloat16)));

  // Values halfway between two bfloat16 numbers go to the even one.
  const at::Tensor ties = at::tensor({1.0f + 1.0f / 256, 1.0f + 3.0f / 256, -1.0f - 1.0f / 256}).view({1, 3, 1});
  LayerCache rounding;
  rounding.store_as = at::kBFloat16;
  rounding.append(ties, ties);
  EXPECT_TRUE(at::equal(rounding.first.to(at::kFloat).flatten(), at::tensor({1.0f, 1.0f + 4.0f / 256, -1.0f})));
}

// One position appended in place (append_token, or open_token and put_token): kv_count values of k
// and of v; false where it declines.
using InPlaceAppend = std::function<bool(LayerCache&, const float* k, const float* v, int64_t kv_count)>;

// An in-place append equals append() of the same position, through growth, a window's slide and a
// bfloat16 store, and declines (appending nothing) where append() must do the work: no storage yet,
// another shape, a held view.
void expect_in_place_appends_equal_append(const InPlaceAppend& in_place) {
  for (const at::ScalarType store_as : {at::ScalarType::Undefined, at::kBFloat16}) {
    at::manual_seed(13);
    const at::Tensor keys = at::randn({1, 300, 2, 3}), values = at::randn({1, 300, 2, 3});
    LayerCache by_token, by_append;
    by_token.store_as = by_append.store_as = store_as;
    EXPECT_FALSE(in_place(by_token, keys.data_ptr<float>(), values.data_ptr<float>(), 6));  // no storage yet
    by_token.append(keys.narrow(1, 0, 1), values.narrow(1, 0, 1));
    by_append.append(keys.narrow(1, 0, 1), values.narrow(1, 0, 1));
    EXPECT_FALSE(by_token.append_token(keys.data_ptr<float>(), 5, values.data_ptr<float>(), 6));  // another shape
    EXPECT_FALSE(by_token.open_token(6, 5));
    EXPECT_EQ(by_token.length(), 1);
    for (int64_t t = 1; t < 300; ++t) {
      const at::Tensor k = keys.narrow(1, t, 1).contiguous(), v = values.narrow(1, t, 1).contiguous();
      if (!in_place(by_token, k.data_ptr<float>(), v.data_ptr<float>(), 6)) by_token.append(k, v);  // full: append() grows it
      by_append.append(k, v);
      if (t % 50 == 0) {  // a window's slide
        by_token.keep_last(20);
        by_append.keep_last(20);
      }
      ASSERT_TRUE(at::equal(by_token.first, by_append.first)) << "position " << t;
      ASSERT_TRUE(at::equal(by_token.second, by_append.second)) << "position " << t;
    }
    // A held view keeps its rows: the in-place append declines, nothing grows, and append() leaves
    // the view as it was.
    const at::Tensor held = by_token.first;
    const at::Tensor before = held.clone();
    const at::Tensor k = at::randn({1, 1, 2, 3});
    EXPECT_FALSE(in_place(by_token, k.data_ptr<float>(), k.data_ptr<float>(), 6));
    EXPECT_EQ(held.size(1), by_append.length());
    EXPECT_TRUE(at::equal(held, before));
  }
}

TEST(LayerCache, AppendTokenEqualsAppend) {
  expect_in_place_appends_equal_append(
      [](LayerCache& cache, const float* k, const float* v, int64_t count) { return cache.append_token(k, count, v, count); });
  LayerCache two;
  two.append(at::zeros({2, 1, 4}), at::zeros({2, 1, 4}));
  const std::vector<float> row(4, 1.0f);
  EXPECT_FALSE(two.append_token(row.data(), 4, row.data(), 4));  // two sequences
  EXPECT_EQ(two.length(), 1);
}

// open_token and put_token: a position written in pieces (one key-value group of three values at a
// time, the second group first) equals append() of it.
TEST(LayerCache, TokenWrittenInPiecesEqualsAppend) {
  expect_in_place_appends_equal_append([](LayerCache& cache, const float* k, const float* v, int64_t count) {
    if (!cache.open_token(count, count)) return false;
    cache.put_token(3, k + 3, count - 3, 3, v + 3, count - 3);
    cache.put_token(0, k, 3, 0, v, 3);
    return true;
  });
}

TEST(KVCache, KeepsItsDtypeAcrossReset) {
  KVCache cache(2, KvDtype::bf16);
  EXPECT_EQ(cache.dtype(), KvDtype::bf16);
  cache.layer(1).append(rows(0, 2), rows(0, 2));
  EXPECT_EQ(cache.layer(1).first.scalar_type(), at::kBFloat16);
  EXPECT_EQ(cache.bytes(), 2 * 2 * 2);  // two tensors of two bfloat16 values
  cache.reset();
  cache.layer(1).append(rows(0, 2), rows(0, 2));
  EXPECT_EQ(cache.layer(1).first.scalar_type(), at::kBFloat16);
  KVCache plain(1);
  plain.layer(0).append(rows(0, 2), rows(0, 2));
  EXPECT_EQ(plain.layer(0).first.scalar_type(), at::kFloat);
}

TEST(KVCache, ParsesItsDtypeNames) {
  EXPECT_EQ(parse_kv_dtype("fp32"), KvDtype::fp32);
  EXPECT_EQ(parse_kv_dtype("bf16"), KvDtype::bf16);
  EXPECT_STREQ(to_string(KvDtype::bf16), "bf16");
  try {
    parse_kv_dtype("fp16");
    FAIL() << "no error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("'fp16'"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace chronos
