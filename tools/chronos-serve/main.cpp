// chronos-serve: an OpenAI-compatible HTTP server over a model directory, resident or offloaded,
// with a web UI at /. The socket opens first (GET /health answers 503 while the model loads), then
// the model loads and requests are served until SIGINT or SIGTERM. docs/serve.md.
#include <pthread.h>

#include <csignal>
#include <filesystem>
#include <iostream>
#include <thread>

#include "chronos/core/backend.h"
#include "chronos/core/error.h"
#include "chronos/core/log.h"
#include "chronos/model/weight_format.h"
#include "chronos/serve/openai_service.h"
#include "chronos/tokenizer/chat_formatter.h"
#include "chronos-serve/http_server.h"
#include "common/decode_setup.h"
#include "common/flag_checks.h"
#include "common/offload_flags.h"
#include "common/runtime_flags.h"
#include "common/tool_main.h"

using namespace chronos;

namespace {

struct Flags {
  tools::DecodeFlags decode;  // --model, --tokenizer, --weights-dtype, --offload ..., --predict
  std::string alias;
  tools::HttpOptions http;
  SchedulerConfig scheduling;
  std::string when_full = "reject";
  ServiceConfig service;
  double temperature = 0.85;
  tools::RuntimeFlags runtime;
};

// SIGINT / SIGTERM stop the server from a thread of their own (blocked everywhere else).
sigset_t stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

int run(Flags flags) {
  const sigset_t signals = stop_signals();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);  // inherited by every thread started from here
  const tools::Runtime rt = tools::apply_runtime_flags(flags.runtime);
  flags.scheduling.wait_when_full = flags.when_full == "wait";
  flags.scheduling.validate();
  flags.service.sampling.greedy = flags.temperature == 0;
  if (flags.temperature > 0) flags.service.sampling.temperature = flags.temperature;
  flags.service.sampling.validate();
  // Every admitted or queued request holds a connection thread; a few more answer the rest (429, health).
  flags.http.threads = std::min(flags.scheduling.slots + flags.scheduling.max_queued + 8, 512);

  tools::HttpServer server(flags.http);
  const int port = server.bind();
  std::cerr << "chronos-serve: listening on http://" << flags.http.host << ":" << port << " (loading " << flags.decode.model << ")"
            << std::endl;
  std::thread listener([&] { server.serve(); });
  std::thread stopper([&] {
    int signal = 0;
    sigwait(&signals, &signal);
    log::info(cat("signal ", signal, ": stopping"));
    server.stop();
  });
  const auto stop_now = [&] {
    pthread_kill(stopper.native_handle(), SIGTERM);
    stopper.join();
    listener.join();
  };

  std::unique_ptr<tools::DecodeSetup> loaded;
  std::shared_ptr<OpenAiService> service;  // destroyed before the model and store it decodes with
  try {
    loaded = std::make_unique<tools::DecodeSetup>(
        tools::load_for_decode(flags.decode, rt));
    tools::DecodeSetup& setup = *loaded;
    ChatFormatter chat = ChatFormatter::for_tokenizer(setup.tokenizer_path);
    log::info(cat("chat template: ", chat.description()));
    ServiceConfig config = flags.service;
    config.model_id = flags.alias.empty() ? std::filesystem::path(flags.decode.model).lexically_normal().filename().string() : flags.alias;
    if (config.model_id.empty() || config.model_id == ".") config.model_id = "chronos";
    const BackendInfo backend = probe_backend();
    config.description = {{"device", rt.device.str()},
                          {"threads", rt.threads},
                          {"compute_dtype", flags.runtime.dtype},
                          {"weights_format", to_string(weights_format(*setup.model))},
                          {"kv_dtype", flags.decode.kv_dtype},
                          {"blas", backend.blas},
                          {"torch", backend.torch_version},
                          {"offload", setup.store ? tools::describe_store(*setup.store) : "off: every expert resident"},
                          {"decode", setup.engine ? "one generation at a time (the offload engine follows one token stream)"
                                                  : cat(flags.scheduling.slots, " slot(s), one token each in turn")}};
    if (setup.router_control) config.description["router_control"] = to_string(setup.router_control->kind());
    config.router_control = setup.router_control ? &*setup.router_control : nullptr;
    config.kv_dtype = parse_kv_dtype(flags.decode.kv_dtype);
    if (setup.engine && flags.scheduling.slots > 1)
      log::warn(cat("--parallel ", flags.scheduling.slots, " with --offload: generations run one at a time; the others queue"));
    service = std::make_shared<OpenAiService>(*setup.model, setup.tokenizer, std::move(chat), config, flags.scheduling,
                                              setup.store.get(), setup.engine.get());
  } catch (...) {
    stop_now();
    throw;
  }
  server.set_service(service);
  std::cerr << "chronos-serve: ready: " << service->models()["data"][0]["id"].get<std::string>() << " on http://" << flags.http.host
            << ":" << port << "/ (" << flags.scheduling.slots << " slot(s); Ctrl-C stops)" << std::endl;
  listener.join();
  stopper.join();
  server.set_service(nullptr);
  service.reset();
  std::cerr << "chronos-serve: stopped" << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  tools::configure_openmp_waiting(argv);
  return tools::run_tool("chronos-serve", [&] {
    Flags flags;
    CLI::App app{"chronos-serve: an OpenAI-compatible HTTP server (chat and completions, streaming) with a web UI at /"};
    tools::add_decode_flags(app, flags.decode);
    app.add_option("--alias", flags.alias, "Model id in /v1/models and responses (default: the directory's name)");
    app.add_option("--host", flags.http.host, "Address to listen on")->capture_default_str();
    app.add_option("--port", flags.http.port, "Port to listen on (0: any free port)")->capture_default_str()->check(CLI::Range(0, 65535));
    app.add_option("--parallel", flags.scheduling.slots, "Decode slots: requests generating at once, one token each in turn")
        ->capture_default_str()->check(CLI::Range(1, 256));
    app.add_option("--max-queue", flags.scheduling.max_queued, "Requests waiting for a slot before more are refused")
        ->capture_default_str()->check(CLI::Range(0, 4096));
    app.add_option("--queue-full", flags.when_full, "A request beyond the queue: reject (429) or wait for room")
        ->capture_default_str()->check(CLI::IsMember({"reject", "wait"}));
    app.add_option("--api-key", flags.http.api_key, "Require 'Authorization: Bearer KEY' on the API (not on / and /health)");
    app.add_option("--max-body-bytes", flags.http.max_body_bytes, "Largest request body; larger ones get 413")
        ->capture_default_str()->check(CLI::Range(size_t{1024}, size_t{1} << 30));
    app.add_flag("--metrics", flags.http.metrics, "Answer GET /metrics (Prometheus text)");
    app.add_option("--cors", flags.http.cors_origin, "Allow this browser origin (Access-Control-Allow-Origin); none by default");
    app.add_option("--max-tokens", flags.service.default_max_tokens, "Tokens to generate when a request gives no max_tokens")
        ->capture_default_str()->check(tools::positive());
    app.add_option("--temperature", flags.temperature, "Default temperature (0: greedy)")->capture_default_str()->check(CLI::Range(0.0, 2.0));
    app.add_option("--top-k", flags.service.sampling.top_k, "Default top-k (0 = off)")->capture_default_str()->check(tools::non_negative(1 << 24));
    app.add_option("--top-p", flags.service.sampling.top_p, "Default top-p (1 = off)")->capture_default_str()->check(tools::number_in(1e-9, 1, "in (0, 1]"));
    app.add_option("--min-p", flags.service.sampling.min_p, "Default min-p (0 = off)")->capture_default_str()->check(tools::number_in(0, 0.999999, "in [0, 1)"));
    app.add_flag("--show-special", flags.service.show_special, "Keep added tokens (<think>, <|im_end|>, ...) in the text");
    tools::add_runtime_flags(app, flags.runtime);
    if (auto code = tools::parse_command_line(app, argc, argv, "chronos-serve")) return *code;
    return run(flags);
  });
}
