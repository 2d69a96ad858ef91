// Progress of long work on stderr: on a terminal one line rewritten in place (count, percentage,
// rate, elapsed, ETA); elsewhere (logs, CI) an info log line every 10 %.
#pragma once

#include <cstdint>

#include "chronos/core/timing.h"

namespace chronos::tools {

class ProgressLine {
 public:
  ProgressLine();
  // `unit` (e.g. "tokens") adds a rate; empty leaves it out.
  void update(const char* what, int64_t done, int64_t total, const char* unit = "");
  // Ends the line and restarts the clock for the next phase.
  void done();

 private:
  bool tty_;
  bool shown_ = false;
  int next_decile_ = 1;
  Stopwatch watch_;
};

}  // namespace chronos::tools
