// Errors of the OpenAI-compatible API: an HTTP status with OpenAI's error object
// {"error": {"message", "type", "code"}}. The service throws them; the HTTP transport turns them
// into the response. docs/serve.md "Errors".
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "chronos/core/error.h"

namespace chronos {

class ApiError : public Error {
 public:
  // `type`: OpenAI's error type (invalid_request_error, authentication_error, ...); `code`: a
  // short machine-readable reason, or empty for null.
  ApiError(int status, std::string type, std::string code, const std::string& message);
  int status() const { return status_; }
  const std::string& type() const { return type_; }
  const std::string& code() const { return code_; }
  // {"error": {"message", "type", "code"}}
  nlohmann::json body() const;

  static ApiError bad_request(const std::string& message, const std::string& code = "invalid_request");
  static ApiError unauthorized(const std::string& message);
  static ApiError not_found(const std::string& message);
  static ApiError too_large(const std::string& message);
  static ApiError too_many_requests(const std::string& message);
  static ApiError unavailable(const std::string& message);
  static ApiError internal(const std::string& message);

 private:
  int status_;
  std::string type_;
  std::string code_;
};

}  // namespace chronos
