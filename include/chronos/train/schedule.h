// Learning-rate schedule over optimizer steps (not micro-steps, fixing the reference's B10): linear
// warmup over W = max(1, min(500, T/20)) steps to the base rate, then cosine decay to 0.1 x base at T.
#pragma once

#include <cstdint>

namespace chronos {

struct LrSchedule {
  double base = 5e-4;       // peak learning rate
  int64_t total_steps = 0;  // T: optimizer steps of the whole run (<= 0: constant base)
  int64_t warmup_steps() const;
  // Learning rate of optimizer step s (1-based).
  double at(int64_t step) const;
};

}  // namespace chronos
