#include "common/flag_checks.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <thread>

#include "chronos/core/error.h"

namespace chronos::tools {
namespace {

// The value as given, cut to 40 characters for the message.
std::string shown(const std::string& text) { return text.size() > 40 ? text.substr(0, 37) + "..." : text; }

// The value of `text` as a number, or an error message.
std::string read_number(const std::string& text, long double& value) {
  if (text.empty()) return "expects a number";
  char* end = nullptr;
  errno = 0;
  value = std::strtold(text.c_str(), &end);
  if (end == text.c_str() || *end != '\0') return cat("expects a number (got \"", shown(text), "\")");
  if (!std::isfinite(value) || errno == ERANGE) return cat("must be a finite number (got \"", shown(text), "\")");
  return {};
}

}  // namespace

CLI::Validator number_in(double low, double high, const std::string& what) {
  return CLI::Validator(
      [low, high, what](std::string& text) -> std::string {
        long double value = 0;
        if (std::string error = read_number(text, value); !error.empty()) return error;
        if (value < low || value > high) return cat("must be ", what, " (got ", shown(text), ")");
        return {};
      },
      what);
}

CLI::Validator positive(double high) {
  return CLI::Validator(
      [high](std::string& text) -> std::string {
        long double value = 0;
        if (std::string error = read_number(text, value); !error.empty()) return error;
        if (!(value > 0)) return cat("must be > 0 (got ", shown(text), ")");
        if (value > high) return cat("must be at most ", high, " (got ", shown(text), ")");
        return {};
      },
      "> 0");
}

CLI::Validator non_negative(double high) { return number_in(0, high, cat(">= 0 and at most ", high)); }

CLI::Validator thread_count() {
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  return number_in(0, 8.0 * cores, cat("0 (all cores) to ", 8 * cores, " (8 per core of this machine)"));
}

}  // namespace chronos::tools
