// Range checks for numeric flags, with short messages: CLI11's own NonNegativeNumber prints the
// largest double in 309 digits. Each check reads the text before conversion, so it also refuses
// "inf", "nan" and values that would wrap when converted ("--steps 1e30").
#pragma once

#include <CLI/CLI.hpp>

#include <string>

namespace chronos::tools {

// A finite number in [low, high]; `what` describes the range in the message ("> 0", "in [0, 1]").
CLI::Validator number_in(double low, double high, const std::string& what);
// A finite number > 0 (and at most `high`).
CLI::Validator positive(double high = 1e15);
// A finite number >= 0 (and at most `high`).
CLI::Validator non_negative(double high = 1e15);
// A thread count: 0 (all cores) up to 8 threads per core of this machine.
CLI::Validator thread_count();

}  // namespace chronos::tools
