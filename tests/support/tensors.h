// Small tensor builders for tests.
#pragma once

#include <ATen/ATen.h>

#include <initializer_list>
#include <vector>

namespace chronos::testing {

// A bool tensor from 0/1 values (LibTorch 1.13 has no at::tensor of bools).
inline at::Tensor bool_mask(std::initializer_list<int> values) {
  return at::tensor(std::vector<int64_t>(values.begin(), values.end())).to(at::kBool);
}

}  // namespace chronos::testing
