#include "chronos/serve/openai_service.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <sstream>

#include "chronos/core/log.h"
#include "chronos/core/memory.h"
#include "chronos/model/weight_format.h"
#include "chronos/routing/router_control.h"
#include "chronos/serve/completion_request.h"

namespace chronos {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

constexpr size_t kRecentTokens = 64;  // the IO monitor's rolling window (tokens)

int64_t unix_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

void ServiceConfig::validate() const {
  if (model_id.empty()) throw ConfigError("serve.model_id (--alias) must not be empty");
  if (default_max_tokens < 1) throw ConfigError(cat("serve.default_max_tokens must be >= 1 (got ", default_max_tokens, ")"));
  sampling.validate();
  if (router_control && !router_control->frozen()) throw ConfigError("serve.router_control must be frozen: concurrent runs share it");
}

OpenAiService::OpenAiService(ChronosForCausalLMImpl& model, Tokenizer tokenizer, ChatFormatter chat, ServiceConfig config,
                             SchedulerConfig scheduling, ExpertStore* store, OffloadEngine* engine)
    : model_(model), tokenizer_(std::move(tokenizer)), chat_(std::move(chat)), config_(std::move(config)), store_(store), engine_(engine) {
  config_.validate();
  if (engine_) scheduling.one_run_at_a_time = true;
  RequestScheduler::RunFactory factory;
  if (engine_) {
    factory = [this](const std::vector<int64_t>& prompt, GenerationOptions options) { return engine_->start(prompt, std::move(options)); };
  } else {
    factory = [this](const std::vector<int64_t>& prompt, GenerationOptions options) {
      options.expert_source = store_;
      return std::make_unique<DecodeRun>(model_, prompt, std::move(options));
    };
  }
  scheduler_ = std::make_unique<RequestScheduler>(scheduling, std::move(factory));
}

OpenAiService::~OpenAiService() { shutdown(); }

void OpenAiService::shutdown() { scheduler_->shutdown(); }

std::vector<int64_t> OpenAiService::prompt_ids(const CompletionRequest& request) const {
  if (request.endpoint == Endpoint::completion && !request.prompt_ids.empty()) {
    for (const int64_t id : request.prompt_ids)
      if (id >= model_.config().vocab_size)
        throw ApiError::bad_request(cat("'prompt' holds token id ", id, ", outside the vocabulary (", model_.config().vocab_size, ")"),
                                    "invalid_prompt");
    return request.prompt_ids;
  }
  std::string text = request.prompt;
  bool add_special = true;  // a plain prompt gets BOS as transformers adds it; a rendered template holds its own
  if (request.endpoint == Endpoint::chat) {
    try {
      text = chat_.render(request.messages, /*add_generation_prompt=*/true, request.tools, request.template_kwargs);
    } catch (const Error& e) {
      throw ApiError::bad_request(cat("the chat template refused the messages: ", e.what()), "invalid_messages");
    }
    add_special = false;
  }
  const std::vector<TokenId> ids = tokenizer_.encode(text, /*match_added_tokens=*/true, add_special);
  if (ids.empty()) throw ApiError::bad_request("the prompt encodes to no tokens", "invalid_prompt");
  return std::vector<int64_t>(ids.begin(), ids.end());
}

std::shared_ptr<CompletionStream> OpenAiService::complete(const std::string& body, Endpoint endpoint) {
  const CompletionRequest request = parse_completion_request(body, endpoint, config_.sampling);
  std::vector<int64_t> prompt = prompt_ids(request);
  const int64_t context = model_.config().max_position_embeddings;
  const int64_t prompt_len = static_cast<int64_t>(prompt.size());
  if (prompt_len >= context)
    throw ApiError::bad_request(cat("the prompt has ", prompt_len, " tokens; this model's context is ", context,
                                    " tokens, so a prompt may hold at most ", context - 1),
                                "context_length_exceeded");

  GenerationOptions options;
  options.max_new_tokens = request.max_tokens.value_or(config_.default_max_tokens);
  options.stop_ids = {model_.config().eos_token_id};
  options.stop_strings = request.stop;
  options.sampling = request.sampling;
  options.router_control = config_.router_control;
  options.kv_dtype = config_.kv_dtype;
  if (!request.seeded) options.sampling.seed = std::random_device{}() * uint64_t{0x9E3779B97F4A7C15} ^ std::random_device{}();
  options.validate();

  auto stream = std::make_shared<CompletionStream>(new_identity(endpoint, config_.model_id), request, tokenizer_, options, prompt_len,
                                                   config_.show_special, /*trim_leading_space=*/endpoint == Endpoint::chat);
  DecodeJob job;
  job.prompt = std::move(prompt);
  job.options = std::move(options);
  job.on_token = [this, stream](int64_t token) {
    const bool go_on = stream->push(token);
    after_token();
    return go_on;
  };
  job.on_end = [this, stream](const GenerationResult* result, std::exception_ptr error) {
    if (result) after_run(*result);
    stream->end(result, error);
  };
  stream->set_handle(scheduler_->submit(std::move(job)));
  std::lock_guard<std::mutex> lock(mutex_);
  ++totals_.requests;
  return stream;
}

void OpenAiService::after_token() {
  const Clock::time_point now = Clock::now();
  std::lock_guard<std::mutex> lock(mutex_);
  token_times_.push_back(now);
  while (token_times_.size() > kRecentTokens) token_times_.pop_front();
  if (engine_ && !engine_->metrics().tokens().empty()) {
    recent_.push_back(engine_->metrics().tokens().back());
    while (recent_.size() > kRecentTokens) recent_.pop_front();
  }
}

void OpenAiService::after_run(const GenerationResult& result) {
  std::lock_guard<std::mutex> lock(mutex_);
  totals_.prompt_tokens += result.stats.prompt_tokens;
  totals_.generated_tokens += static_cast<int64_t>(result.tokens.size());
  totals_.prefill_seconds += result.stats.prefill_seconds;
  totals_.decode_seconds += result.stats.decode_seconds;
}

json OpenAiService::models() const {
  const ModelConfig& c = model_.config();
  json model = {{"id", config_.model_id},
                {"object", "model"},
                {"created", unix_seconds()},
                {"owned_by", "chronos"},
                {"meta", {{"model_type", c.to_json().value("model_type", "chronos")},
                          {"n_ctx", c.max_position_embeddings},
                          {"n_vocab", c.vocab_size},
                          {"n_layers", c.num_hidden_layers}}}};
  return {{"object", "list"}, {"data", json::array({model})}};
}

json OpenAiService::tokenize(const std::string& body) const {
  const json request = parse_json_object(body);
  const auto content = request.find("content");
  if (content == request.end() || !content->is_string())
    throw ApiError::bad_request("'content' must be a string", "invalid_content");
  const auto flag = [&](const char* name) {
    const auto it = request.find(name);
    if (it == request.end() || it->is_null()) return false;
    if (!it->is_boolean()) throw ApiError::bad_request(cat("'", name, "' must be true or false"), cat("invalid_", name));
    return it->get<bool>();
  };
  const bool add_special = flag("add_special");
  const bool with_pieces = flag("with_pieces");
  const std::vector<TokenId> ids = tokenizer_.encode(content->get<std::string>(), /*match_added_tokens=*/true, add_special);
  json tokens = json::array();
  for (const TokenId id : ids) {
    if (!with_pieces) {
      tokens.push_back(id);
      continue;
    }
    // A piece that is not whole UTF-8 goes out as its bytes, as llama.cpp's server sends it.
    const std::string piece = tokenizer_.decode(std::vector<TokenId>{id});
    json shown = piece;
    try {
      (void)shown.dump();
    } catch (const json::type_error&) {
      shown = json::array();
      for (const unsigned char byte : piece) shown.push_back(byte);
    }
    tokens.push_back({{"id", id}, {"piece", shown}});
  }
  return {{"tokens", tokens}};
}

json OpenAiService::detokenize(const std::string& body) const {
  const json request = parse_json_object(body);
  const auto tokens = request.find("tokens");
  if (tokens == request.end() || !tokens->is_array()) throw ApiError::bad_request("'tokens' must be a list of token ids", "invalid_tokens");
  std::vector<TokenId> ids;
  for (const json& id : *tokens) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || !tokenizer_.contains(static_cast<TokenId>(id.get<int64_t>())))
      throw ApiError::bad_request(cat("'tokens' holds ", id.dump(), ", not a token id of this tokenizer"), "invalid_tokens");
    ids.push_back(static_cast<TokenId>(id.get<int64_t>()));
  }
  return {{"content", tokenizer_.decode(ids)}};
}

json OpenAiService::properties() const {
  const ModelConfig& c = model_.config();
  int64_t parameters = 0, weight_bytes = 0;
  for (const at::Tensor& p : model_.parameters()) {
    parameters += p.numel();
    weight_bytes += static_cast<int64_t>(p.nbytes());
  }
  for (const at::Tensor& b : model_.buffers()) weight_bytes += static_cast<int64_t>(b.nbytes());
  json memory = {{"resident_weights_bytes", weight_bytes}, {"process_resident_bytes", resident_bytes()}};
  json offload = nullptr;
  if (store_) {
    const ClusterManifest& m = store_->manifest();
    offload = {{"routed_expert_bytes", m.total_expert_bytes()},
               {"ram_slots", store_->ram_slots()},
               {"compute_slots", store_->compute_slots()},
               {"experts", m.num_layers * m.num_experts},
               {"predict", engine_ ? to_string(engine_->config().predict) : "none"},
               {"direct_io", store_->direct_io()}};
    memory["routed_expert_bytes_on_ssd"] = m.total_expert_bytes();
  }
  const SchedulerConfig& s = scheduler_->config();
  return {{"model", config_.model_id},
          {"config", c.to_json()},
          {"parameters", parameters},
          {"weights_format", to_string(weights_format(model_))},
          {"memory", memory},
          {"backend", config_.description},
          {"offload", offload},
          {"slots", {{"parallel", s.slots}, {"stepped_at_once", scheduler_->slots()}, {"max_queued", s.max_queued},
                     {"when_full", s.wait_when_full ? "wait" : "reject"}}},
          {"chat_template", chat_.description()},
          {"default_sampling", {{"temperature", config_.sampling.greedy ? 0 : config_.sampling.temperature},
                                {"top_k", config_.sampling.top_k}, {"top_p", config_.sampling.top_p},
                                {"min_p", config_.sampling.min_p}, {"max_tokens", config_.default_max_tokens}}}};
}

json OpenAiService::monitor() const {
  const ModelConfig& c = model_.config();
  const SchedulerCounts counts = scheduler_->counts();
  json out = {{"offload", store_ != nullptr}, {"requests", {{"processing", counts.processing}, {"queued", counts.queued}}}};
  // Letters per expert: h HOT, p COPYING, w WARM, r READING, c COLD; resident models are all HOT.
  json states = json::array();
  int64_t reading = 0, copying = 0;
  const int64_t layers = store_ ? store_->manifest().num_layers : (c.use_moe ? c.num_hidden_layers : 0);
  const int64_t experts = store_ ? store_->manifest().num_experts : (c.use_moe ? c.num_experts : 0);
  for (int64_t l = 0; l < layers; ++l) {
    std::string row(static_cast<size_t>(experts), 'h');
    if (store_)
      for (int64_t e = 0; e < experts; ++e) {
        const ExpertState s = store_->state(ExpertKey{static_cast<int32_t>(l), static_cast<int32_t>(e)});
        static constexpr char letter[] = {'c', 'r', 'w', 'p', 'h'};
        row[static_cast<size_t>(e)] = letter[static_cast<int>(s)];
        reading += s == ExpertState::reading;
        copying += s == ExpertState::copying;
      }
    states.push_back(row);
  }
  out["layers"] = layers;
  out["experts"] = experts;
  out["states"] = states;
  out["queue_depth"] = reading + copying;

  std::lock_guard<std::mutex> lock(mutex_);
  const Clock::time_point now = Clock::now();
  double tokens_per_s = 0;
  if (token_times_.size() >= 2 && now - token_times_.back() < std::chrono::seconds(2))
    tokens_per_s = (token_times_.size() - 1) / std::chrono::duration<double>(token_times_.back() - token_times_.front()).count();
  out["tokens_per_s"] = tokens_per_s;
  out["generated_tokens_total"] = totals_.generated_tokens;
  int64_t hits = 0, uses = 0, used_prefetches = 0;
  double stall_ms = 0, lead_ms = 0;
  for (const TokenMetrics& t : recent_) {
    hits += t.hits;
    uses += t.hits + t.warm + t.cold;
    stall_ms += t.stall_ms;
    lead_ms += t.prefetch_lead_ms * static_cast<double>(t.prefetched_used);
    used_prefetches += t.prefetched_used;
  }
  out["window_tokens"] = recent_.size();
  out["hit_rate"] = uses > 0 ? static_cast<double>(hits) / static_cast<double>(uses) : 1.0;
  out["stall_ms_per_token"] = recent_.empty() ? 0.0 : stall_ms / static_cast<double>(recent_.size());
  out["prefetch_lead_ms"] = used_prefetches > 0 ? lead_ms / static_cast<double>(used_prefetches) : 0.0;
  double ssd_mb_per_s = 0;
  if (store_) {
    const int64_t bytes = store_->stats().ssd_bytes;
    const double since = std::chrono::duration<double>(now - ssd_rate_.at).count();
    if (ssd_rate_.at != Clock::time_point{} && since >= 0.25) {
      ssd_rate_.mb_per_s = static_cast<double>(bytes - ssd_rate_.ssd_bytes) / 1e6 / since;
    }
    if (ssd_rate_.at == Clock::time_point{} || since >= 0.25) {
      ssd_rate_.at = now;
      ssd_rate_.ssd_bytes = bytes;
    }
    ssd_mb_per_s = ssd_rate_.mb_per_s;
  }
  out["ssd_mb_per_s"] = ssd_mb_per_s;
  return out;
}

std::string OpenAiService::metrics_text() const {
  const SchedulerCounts counts = scheduler_->counts();
  Totals t;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    t = totals_;
  }
  std::ostringstream out;
  out.precision(12);
  const auto metric = [&](const char* name, const char* type, const char* help, double value) {
    out << "# HELP chronos_" << name << ' ' << help << "\n# TYPE chronos_" << name << ' ' << type << "\nchronos_" << name << ' '
        << value << '\n';
  };
  metric("prompt_tokens_total", "counter", "Prompt tokens processed.", static_cast<double>(t.prompt_tokens));
  metric("generated_tokens_total", "counter", "Tokens generated.", static_cast<double>(t.generated_tokens));
  metric("prompt_seconds_total", "counter", "Seconds spent on prompt forwards (prefill).", t.prefill_seconds);
  metric("decode_seconds_total", "counter", "Seconds spent on decode steps.", t.decode_seconds);
  metric("prompt_tokens_per_second", "gauge", "Prefill throughput over all finished requests.",
         t.prefill_seconds > 0 ? static_cast<double>(t.prompt_tokens) / t.prefill_seconds : 0);
  metric("generated_tokens_per_second", "gauge", "Decode throughput over all finished requests.",
         t.decode_seconds > 0 ? static_cast<double>(t.generated_tokens) / t.decode_seconds : 0);
  metric("requests_total", "counter", "Completion requests accepted.", static_cast<double>(t.requests));
  metric("requests_processing", "gauge", "Requests decoding in a slot.", static_cast<double>(counts.processing));
  metric("requests_queued", "gauge", "Requests waiting for a slot.", static_cast<double>(counts.queued));
  metric("requests_rejected_total", "counter", "Requests refused with 429 (queue full).", static_cast<double>(counts.rejected));
  metric("requests_cancelled_total", "counter", "Requests whose client went away before the end.", static_cast<double>(counts.cancelled));
  metric("requests_failed_total", "counter", "Requests ended by an error.", static_cast<double>(counts.failed));
  if (store_) {
    const StoreStats s = store_->stats();
    metric("expert_hits_total", "counter", "Routed experts HOT at use.", static_cast<double>(s.hits));
    metric("expert_misses_total", "counter", "Routed experts not HOT at use (WARM or COLD).", static_cast<double>(s.warm_hits + s.cold_misses));
    metric("expert_cold_misses_total", "counter", "Routed experts read from SSD on the critical path.", static_cast<double>(s.cold_misses));
    metric("expert_fallbacks_total", "counter", "Experts skipped under the fallback miss policy.", static_cast<double>(s.fallbacks));
    metric("expert_stall_seconds_total", "counter", "Seconds decode waited for experts.", s.stall_seconds);
    metric("ssd_read_bytes_total", "counter", "Bytes read from the expert cache files.", static_cast<double>(s.ssd_bytes));
    metric("expert_copy_bytes_total", "counter", "Bytes copied to the compute tier.", static_cast<double>(s.copy_bytes));
  }
  metric("process_resident_bytes", "gauge", "Resident set size of the server.", static_cast<double>(resident_bytes()));
  return out.str();
}

}  // namespace chronos
