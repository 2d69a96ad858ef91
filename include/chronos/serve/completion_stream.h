// One completion's response while it is produced: the decode thread pushes tokens (turned into
// text by a TextStream: whole UTF-8 characters, stop strings held back and applied) and the end of
// the run; the HTTP thread takes server-sent events as they come (stream: true) or waits for the
// whole body (stream: false). Thread-safe between those two sides.
#pragma once

#include <nlohmann/json.hpp>

#include <condition_variable>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "chronos/runtime/text_stream.h"
#include "chronos/serve/api_error.h"
#include "chronos/serve/completion_response.h"
#include "chronos/serve/request_scheduler.h"

namespace chronos {

class CompletionStream {
 public:
  // `options` gives the stop ids and strings. `trim_leading_space`: the reply's text starts at its
  // first visible character (chat: the blank lines after a template's think block are not content).
  CompletionStream(ResponseIdentity identity, const CompletionRequest& request, const Tokenizer& tokenizer,
                   const GenerationOptions& options, int64_t prompt_tokens, bool show_special, bool trim_leading_space);

  // Decode thread. push(): false once a stop string completed (DecodeJob::on_token).
  bool push(int64_t token);
  // Decode thread: the run ended (DecodeJob::on_end).
  void end(const GenerationResult* result, std::exception_ptr error);

  // HTTP thread: waits up to `seconds` for events to send or the end; true when either is there.
  bool wait(double seconds);
  // HTTP thread, stream: true. The next server-sent events to send (blocks); nullopt after the
  // last ("data: [DONE]", or an error event when the run failed).
  std::optional<std::string> next_events();
  // HTTP thread, stream: false. Blocks until the run ended; the response body, or the ApiError
  // the run ended with.
  nlohmann::json body();

  void set_handle(std::shared_ptr<JobHandle> handle);
  // The client went away: the run stops before its next token.
  void cancel();
  bool streaming() const { return streaming_; }
  const ResponseIdentity& identity() const { return identity_; }

 private:
  void emit(std::string events);  // with mutex_ held

  const ResponseIdentity identity_;
  const bool streaming_;
  const bool include_usage_;
  const int64_t prompt_tokens_;
  bool trim_;
  TextStream text_;  // decode thread only

  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<std::string> events_;
  std::string content_;  // the whole text (stream: false)
  bool ended_ = false;
  std::optional<ApiError> error_;
  nlohmann::json body_;
  std::shared_ptr<JobHandle> handle_;
};

// An exception from a run as the API reports it: InvalidArgument and ConfigError are 400, the rest 500.
ApiError api_error_from(std::exception_ptr error);

}  // namespace chronos
