// A measured figure as JSON: JSON has no NaN or infinity, so a figure that is not finite (a rate over
// no tokens, a ratio against zero) is written as null rather than as invalid text.
#pragma once

#include <nlohmann/json.hpp>

#include <cmath>

namespace chronos {

inline nlohmann::json json_number(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

}  // namespace chronos
