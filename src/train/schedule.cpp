#include "chronos/train/schedule.h"

#include <algorithm>
#include <cmath>

namespace chronos {

int64_t LrSchedule::warmup_steps() const { return std::max<int64_t>(1, std::min<int64_t>(500, total_steps / 20)); }

double LrSchedule::at(int64_t step) const {
  if (total_steps <= 0) return base;
  const int64_t warmup = warmup_steps();
  if (step <= warmup) return base * static_cast<double>(step) / static_cast<double>(warmup);
  const double progress = std::clamp(static_cast<double>(step - warmup) / static_cast<double>(std::max<int64_t>(1, total_steps - warmup)), 0.0, 1.0);
  constexpr double kPi = 3.14159265358979323846;
  return base * (0.1 + 0.9 * 0.5 * (1 + std::cos(kPi * progress)));
}

}  // namespace chronos
