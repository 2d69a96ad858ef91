// Logging front-end. spdlog does the work inside the library; callers pass finished strings
// (build them with chronos::cat). The level comes from set_level() (the tools apply CHRONOS_LOG_LEVEL).
#pragma once

#include <string>

namespace chronos::log {

enum class Level { trace, debug, info, warn, error, off };

// Parses "trace|debug|info|warn|error|off"; throws InvalidArgument otherwise.
Level parse_level(const std::string& name);
void set_level(Level level);

void trace(const std::string& message);
void debug(const std::string& message);
void info(const std::string& message);
void warn(const std::string& message);
void error(const std::string& message);

}  // namespace chronos::log
