// The OpenAI-compatible API without sockets (docs/serve.md): request bodies in, response bodies or
// completion streams out, over a loaded model, its tokenizer and chat template, and optionally the
// expert store and offload engine it decodes through. The HTTP transport (tools/chronos-serve)
// maps routes onto these calls and ApiError onto statuses. Thread-safe: every call may come from
// any HTTP thread; generation runs on the scheduler's decode thread.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <deque>
#include <memory>
#include <mutex>
#include <string>

#include "chronos/model/causal_lm.h"
#include "chronos/runtime/metrics.h"
#include "chronos/runtime/offload_engine.h"
#include "chronos/serve/completion_stream.h"
#include "chronos/serve/request_scheduler.h"
#include "chronos/store/expert_store.h"
#include "chronos/tokenizer/chat_formatter.h"
#include "chronos/tokenizer/tokenizer.h"

namespace chronos {

struct ServiceConfig {
  std::string model_id = "chronos";   // the id /v1/models lists and responses carry
  SamplingOptions sampling;           // for the sampling fields a request leaves out
  int64_t default_max_tokens = 1024;  // when a request gives no max_tokens (the context still bounds it)
  bool show_special = false;          // added tokens (<think>, <|im_end|>) appear in the text
  KvDtype kv_dtype = KvDtype::fp32;   // what every run's KV cache keeps (chronos/model/kv_cache.h)
  nlohmann::json description;         // shown by properties() (device, threads, weights format, offload)
  // A trained router control's bias every run routes with (frozen: runs only read it, so they may
  // share it); null: none. It must outlive the service.
  RouterControl* router_control = nullptr;
  // Throws ConfigError naming the field.
  void validate() const;
};

class OpenAiService {
 public:
  // `model` (and `store`, `engine` when given) must outlive the service. With an engine every run
  // decodes through it (one at a time: it follows one token stream).
  OpenAiService(ChronosForCausalLMImpl& model, Tokenizer tokenizer, ChatFormatter chat, ServiceConfig config,
                SchedulerConfig scheduling, ExpertStore* store = nullptr, OffloadEngine* engine = nullptr);
  ~OpenAiService();

  // POST /v1/chat/completions, /v1/completions: parses, renders the chat template, tokenizes,
  // checks the prompt against the context and queues the run. ApiError 400 / 429 / 503.
  std::shared_ptr<CompletionStream> complete(const std::string& body, Endpoint endpoint);
  // GET /v1/models
  nlohmann::json models() const;
  // POST /tokenize {"content", "add_special"?, "with_pieces"?} -> {"tokens"}
  nlohmann::json tokenize(const std::string& body) const;
  // POST /detokenize {"tokens"} -> {"content"}
  nlohmann::json detokenize(const std::string& body) const;
  // GET /props: the model tab (config, parameters, memory estimate, backend, slots).
  nlohmann::json properties() const;
  // GET /monitor: the IO monitor (per-layer expert states, hit rate, stall, SSD rate, prefetch lead,
  // queue depth, requests, tokens/s).
  nlohmann::json monitor() const;
  // GET /metrics: Prometheus text exposition.
  std::string metrics_text() const;
  SchedulerCounts counts() const { return scheduler_->counts(); }
  // Ends every request (cancelled) and stops decoding.
  void shutdown();

 private:
  std::vector<int64_t> prompt_ids(const CompletionRequest& request) const;
  // Decode thread: bookkeeping after each token and at the end of each run.
  void after_token();
  void after_run(const GenerationResult& result);

  ChronosForCausalLMImpl& model_;
  const Tokenizer tokenizer_;
  const ChatFormatter chat_;
  const ServiceConfig config_;
  ExpertStore* store_;
  OffloadEngine* engine_;
  const std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();

  mutable std::mutex mutex_;
  struct Totals {
    int64_t requests = 0;
    int64_t prompt_tokens = 0;
    int64_t generated_tokens = 0;
    double prefill_seconds = 0;
    double decode_seconds = 0;
  } totals_;
  std::deque<std::chrono::steady_clock::time_point> token_times_;  // recent tokens, for the live tokens/s
  std::deque<TokenMetrics> recent_;                                // the engine's recent per-token records
  mutable struct {
    std::chrono::steady_clock::time_point at{};
    int64_t ssd_bytes = 0;
    double mb_per_s = 0;
  } ssd_rate_;

  std::unique_ptr<RequestScheduler> scheduler_;  // last: its thread stops first
};

}  // namespace chronos
