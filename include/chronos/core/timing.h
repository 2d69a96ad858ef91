// Wall-clock timing helpers for benchmarks and progress reports.
#pragma once

#include <chrono>
#include <vector>

namespace chronos {

// Monotonic stopwatch; starts at construction.
class Stopwatch {
 public:
  Stopwatch() : start_(std::chrono::steady_clock::now()) {}
  void reset() { start_ = std::chrono::steady_clock::now(); }
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }
  double millis() const { return seconds() * 1e3; }

 private:
  std::chrono::steady_clock::time_point start_;
};

// Seconds on the steady clock since an arbitrary start: for ordering events within one process.
inline double steady_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Median of the samples (mean of the two middle ones for an even count); 0 for none.
double median(std::vector<double> samples);

}  // namespace chronos
