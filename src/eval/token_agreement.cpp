#include "chronos/eval/token_agreement.h"

#include <algorithm>

namespace chronos {

TokenAgreement& TokenAgreement::operator+=(const TokenAgreement& other) {
  compared += other.compared;
  equal += other.equal;
  common_prefix += other.common_prefix;
  return *this;
}

TokenAgreement token_agreement(const std::vector<int64_t>& reference, const std::vector<int64_t>& other) {
  TokenAgreement a;
  a.compared = static_cast<int64_t>(std::min(reference.size(), other.size()));
  bool diverged = false;
  for (int64_t i = 0; i < a.compared; ++i) {
    const bool same = reference[static_cast<size_t>(i)] == other[static_cast<size_t>(i)];
    a.equal += same;
    diverged = diverged || !same;
    if (!diverged) ++a.common_prefix;
  }
  return a;
}

}  // namespace chronos
