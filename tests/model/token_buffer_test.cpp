#include "model/token_buffer.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <gtest/gtest.h>

namespace chronos {
namespace {

TEST(TokenBuffer, HandsOutTheSameTensorOnlyOnceNothingHoldsIt) {
  TokenBuffer buffer;
  const void* first = nullptr;
  {
    const at::Tensor a = buffer.get({1, 1, 8}, at::TensorOptions().dtype(at::kFloat));
    first = a.data_ptr();
  }
  EXPECT_EQ(buffer.get({1, 1, 8}, at::kFloat).data_ptr(), first);  // released: the same memory

  const at::Tensor held = buffer.get({1, 1, 8}, at::kFloat);
  const at::Tensor other = buffer.get({1, 1, 8}, at::kFloat);
  EXPECT_NE(other.data_ptr(), held.data_ptr());  // held: a fresh one

  at::Tensor view;
  {
    const at::Tensor b = buffer.get({1, 1, 8}, at::kFloat);
    view = b.view({8});  // a view of its memory outlives it
  }
  EXPECT_NE(buffer.get({1, 1, 8}, at::kFloat).data_ptr(), view.data_ptr());
}

TEST(TokenBuffer, AnotherShapeDtypeOrModeGetsAFreshTensor) {
  TokenBuffer buffer;
  EXPECT_EQ(buffer.get({4}, at::kFloat).sizes(), at::IntArrayRef({4}));
  EXPECT_EQ(buffer.get({5}, at::kFloat).sizes(), at::IntArrayRef({5}));
  EXPECT_EQ(buffer.get({5}, at::kLong).scalar_type(), at::kLong);
  EXPECT_FALSE(buffer.get({5}, at::kLong).is_inference());
  c10::InferenceMode inference;
  EXPECT_TRUE(buffer.get({5}, at::kLong).is_inference());
}

}  // namespace
}  // namespace chronos
