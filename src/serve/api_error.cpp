#include "chronos/serve/api_error.h"

namespace chronos {

ApiError::ApiError(int status, std::string type, std::string code, const std::string& message)
    : Error(message), status_(status), type_(std::move(type)), code_(std::move(code)) {}

nlohmann::json ApiError::body() const {
  return {{"error", {{"message", what()}, {"type", type_}, {"code", code_.empty() ? nlohmann::json(nullptr) : nlohmann::json(code_)}}}};
}

ApiError ApiError::bad_request(const std::string& message, const std::string& code) {
  return ApiError(400, "invalid_request_error", code, message);
}
ApiError ApiError::unauthorized(const std::string& message) { return ApiError(401, "authentication_error", "invalid_api_key", message); }
ApiError ApiError::not_found(const std::string& message) { return ApiError(404, "not_found_error", "not_found", message); }
ApiError ApiError::too_large(const std::string& message) { return ApiError(413, "invalid_request_error", "request_too_large", message); }
ApiError ApiError::too_many_requests(const std::string& message) { return ApiError(429, "rate_limit_error", "server_busy", message); }
ApiError ApiError::unavailable(const std::string& message) { return ApiError(503, "unavailable_error", "loading_model", message); }
ApiError ApiError::internal(const std::string& message) { return ApiError(500, "server_error", "internal_error", message); }

}  // namespace chronos
