#include "chronos/serve/completion_stream.h"

#include "chronos/core/log.h"

namespace chronos {

ApiError api_error_from(std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
  } catch (const ApiError& e) {
    return e;
  } catch (const InvalidArgument& e) {
    return ApiError::bad_request(e.what());
  } catch (const ConfigError& e) {
    return ApiError::bad_request(e.what());
  } catch (const std::exception& e) {
    return ApiError::internal(cat("generation failed: ", e.what()));
  } catch (...) {
    return ApiError::internal("generation failed");
  }
}

CompletionStream::CompletionStream(ResponseIdentity identity, const CompletionRequest& request, const Tokenizer& tokenizer,
                                   const GenerationOptions& options, int64_t prompt_tokens, bool show_special, bool trim_leading_space)
    : identity_(std::move(identity)),
      streaming_(request.stream),
      include_usage_(request.include_usage),
      prompt_tokens_(prompt_tokens),
      trim_(trim_leading_space),
      text_(tokenizer, options, show_special) {
  // The first chunk names the role at once, before the prompt's forward: clients see the stream open.
  if (streaming_ && identity_.endpoint == Endpoint::chat) events_.push_back(sse_event(chunk_json(identity_, "", /*first=*/true)));
}

void CompletionStream::emit(std::string events) {
  events_.push_back(std::move(events));
  changed_.notify_all();
}

bool CompletionStream::push(int64_t token) {
  const bool go_on = text_.push(token);
  std::string delta = text_.take();
  if (trim_) {
    delta.erase(0, std::min(delta.size(), delta.find_first_not_of(" \t\r\n")));
    trim_ = delta.empty();
  }
  if (delta.empty()) return go_on;
  std::lock_guard<std::mutex> lock(mutex_);
  content_ += delta;
  if (streaming_) emit(sse_event(chunk_json(identity_, delta, /*first=*/false)));
  return go_on;
}

void CompletionStream::end(const GenerationResult* result, std::exception_ptr error) {
  std::string tail;
  if (result) {
    text_.finish();
    tail = text_.take();
    if (trim_) tail.erase(0, std::min(tail.size(), tail.find_first_not_of(" \t\r\n")));
  }
  std::lock_guard<std::mutex> lock(mutex_);
  ended_ = true;
  if (!result) {
    error_ = api_error_from(error);
    log::warn(cat(identity_.id, ": ", error_->what()));
    if (streaming_) emit(sse_event(error_->body()));
    changed_.notify_all();
    return;
  }
  content_ += tail;
  const Usage usage{prompt_tokens_, static_cast<int64_t>(result->tokens.size())};
  const std::string finish = finish_reason(text_.stop_reason(*result));
  if (streaming_) {
    std::string events;
    if (!tail.empty()) events += sse_event(chunk_json(identity_, tail, false));
    events += sse_event(chunk_json(identity_, "", false, finish));
    if (include_usage_) events += sse_event(usage_chunk_json(identity_, usage));
    events += sse_done();
    emit(std::move(events));
  } else {
    body_ = completion_json(identity_, content_, finish, usage);
  }
  changed_.notify_all();
}

bool CompletionStream::wait(double seconds) {
  std::unique_lock<std::mutex> lock(mutex_);
  return changed_.wait_for(lock, std::chrono::duration<double>(seconds), [&] { return !events_.empty() || ended_; });
}

std::optional<std::string> CompletionStream::next_events() {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [&] { return !events_.empty() || ended_; });
  if (events_.empty()) return std::nullopt;
  std::string out;
  while (!events_.empty()) {
    out += events_.front();
    events_.pop_front();
  }
  return out;
}

nlohmann::json CompletionStream::body() {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [&] { return ended_; });
  if (error_) throw *error_;
  return body_;
}

void CompletionStream::set_handle(std::shared_ptr<JobHandle> handle) {
  std::lock_guard<std::mutex> lock(mutex_);
  handle_ = std::move(handle);
}

void CompletionStream::cancel() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (handle_) handle_->cancel();
}

}  // namespace chronos
