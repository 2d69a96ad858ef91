#include "chronos/eval/token_agreement.h"

#include <gtest/gtest.h>

namespace chronos {
namespace {

TEST(TokenAgreement, CountsEqualPositionsAndTheCommonPrefix) {
  const TokenAgreement a = token_agreement({1, 2, 3, 4, 5}, {1, 2, 9, 4});
  EXPECT_EQ(a.compared, 4);
  EXPECT_EQ(a.equal, 3);
  EXPECT_EQ(a.common_prefix, 2);
  EXPECT_DOUBLE_EQ(a.rate(), 0.75);
  TokenAgreement sum = a;
  sum += token_agreement({7, 7}, {7, 7});
  EXPECT_EQ(sum.compared, 6);
  EXPECT_EQ(sum.equal, 5);
  EXPECT_EQ(sum.common_prefix, 4);
  EXPECT_DOUBLE_EQ(token_agreement({}, {}).rate(), 1.0);
  EXPECT_EQ(token_agreement({3}, {4}).common_prefix, 0);
}

}  // namespace
}  // namespace chronos
