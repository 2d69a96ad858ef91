#include "common/progress_line.h"

#include <unistd.h>

#include <cstdio>
#include <string>

#include "chronos/core/error.h"
#include "chronos/core/log.h"

namespace chronos::tools {

ProgressLine::ProgressLine() : tty_(isatty(STDERR_FILENO) != 0) {}

void ProgressLine::update(const char* what, int64_t done, int64_t total, const char* unit) {
  const double fraction = total > 0 ? static_cast<double>(done) / static_cast<double>(total) : 1.0;
  const double elapsed = watch_.seconds();
  const double eta = fraction > 0 ? elapsed * (1 - fraction) / fraction : 0;
  const std::string units = *unit ? std::string(" ") + unit : std::string();
  if (tty_) {
    std::fprintf(stderr, "\r\033[K%s %lld/%lld%s (%3.0f%%)", what, static_cast<long long>(done), static_cast<long long>(total),
                 units.c_str(), fraction * 100);
    if (*unit && elapsed > 0) std::fprintf(stderr, ", %.0f%s/s", static_cast<double>(done) / elapsed, units.c_str());
    std::fprintf(stderr, ", %.1f s, ETA %.1f s", elapsed, eta);
    std::fflush(stderr);
    shown_ = true;
  } else if (fraction * 10 >= next_decile_) {
    log::info(cat(what, " ", done, "/", total, units, " (", static_cast<int>(fraction * 100), "%), ", elapsed, " s"));
    next_decile_ = static_cast<int>(fraction * 10) + 1;
  }
}

void ProgressLine::show(const std::string& line) {
  if (tty_) {
    std::fprintf(stderr, "\r\033[K%s", line.c_str());
    std::fflush(stderr);
    shown_ = true;
  } else {
    log::info(line);
  }
}

void ProgressLine::done() {
  if (shown_) std::fprintf(stderr, "\n");
  shown_ = false;
  next_decile_ = 1;
  watch_.reset();
}

}  // namespace chronos::tools
