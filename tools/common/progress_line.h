// Progress of long work on stderr: on a terminal one line rewritten in place (count, percentage,
// rate, elapsed, ETA); elsewhere (logs, CI) an info log line every 10 %. The destructor ends an
// open line, so an error message printed after it starts on a line of its own.
#pragma once

#include <cstdint>
#include <string>

#include "chronos/core/timing.h"

namespace chronos::tools {

class ProgressLine {
 public:
  ProgressLine();
  ~ProgressLine() { done(); }
  ProgressLine(const ProgressLine&) = delete;
  ProgressLine& operator=(const ProgressLine&) = delete;
  // `unit` (e.g. "tokens") adds a rate; empty leaves it out.
  void update(const char* what, int64_t done, int64_t total, const char* unit = "");
  // A finished status line (e.g. the trainer's describe()): redrawn in place on a terminal, an info
  // log line elsewhere.
  void show(const std::string& line);
  // Ends the line and restarts the clock for the next phase.
  void done();

 private:
  bool tty_;
  bool shown_ = false;
  int next_decile_ = 1;
  Stopwatch watch_;
};

}  // namespace chronos::tools
