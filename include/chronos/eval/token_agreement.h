// How far two generations of the same prompt agree, token by token: a converted model's greedy
// output against float32's (docs/decode.md "Weight formats").
#pragma once

#include <cstdint>
#include <vector>

namespace chronos {

struct TokenAgreement {
  int64_t compared = 0;       // positions present in both
  int64_t equal = 0;          // positions holding the same id
  int64_t common_prefix = 0;  // ids equal before the first difference
  double rate() const { return compared > 0 ? static_cast<double>(equal) / static_cast<double>(compared) : 1.0; }
  TokenAgreement& operator+=(const TokenAgreement& other);
};

TokenAgreement token_agreement(const std::vector<int64_t>& reference, const std::vector<int64_t>& other);

}  // namespace chronos
