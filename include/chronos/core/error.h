// Chronos error types. The library reports every failure by throwing one of these; it never exits.
// CLIs catch chronos::Error in main, print what() as one line and exit non-zero.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace chronos {

// Base of every error the library throws on purpose.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// A configuration value breaks a rule: the message names the field, the value and the rule.
class ConfigError : public Error {
 public:
  using Error::Error;
};

// A file is missing, unreadable, or its contents are malformed: the message names the file.
class IoError : public Error {
 public:
  using Error::Error;
};

// A file parsed but its contents do not fit (tensor names, shapes, dtypes).
class FormatError : public IoError {
 public:
  using IoError::IoError;
};

// A caller passed arguments that cannot work (wrong shapes, unknown names, unsupported device).
class InvalidArgument : public Error {
 public:
  using Error::Error;
};

// Concatenates any streamable values into one string: cat("got ", 3, " > ", 2).
template <typename... Args>
std::string cat(Args&&... args) {
  std::ostringstream out;
  (out << ... << std::forward<Args>(args));
  return out.str();
}

}  // namespace chronos
