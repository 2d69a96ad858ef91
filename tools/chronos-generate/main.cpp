// chronos-generate: text in, text out. Streams tokens as they are produced (UTF-8 safe), with the
// chat template, sampling controls, stop strings, statistics, a REPL on a terminal, and --json.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <iostream>

#include "chronos/core/error.h"
#include "chronos/core/log.h"
#include "chronos/io/append_file.h"
#include "chronos/io/json_number.h"
#include "chronos/io/regular_file.h"
#include "chronos/runtime/generation.h"
#include "chronos/runtime/offload_engine.h"
#include "chronos/runtime/text_stream.h"
#include "chronos/tokenizer/chat_formatter.h"
#include "chronos/tokenizer/tokenizer.h"
#include "common/decode_setup.h"
#include "common/flag_checks.h"
#include "common/offload_flags.h"
#include "common/router_control_flags.h"
#include "common/runtime_flags.h"
#include "common/tool_main.h"

using namespace chronos;

namespace {

struct Flags {
  tools::DecodeFlags decode;  // --model, --tokenizer, --weights-dtype, --offload ..., --predict
  std::string prompt;
  std::string prompt_file;
  std::string system;
  bool chat = false;
  bool show_special = false;
  bool no_kv_cache = false;
  bool stats = false;
  bool json = false;
  int64_t max_new_tokens = 256;
  std::vector<std::string> stops;
  SamplingOptions sampling;
  tools::RuntimeFlags runtime;
  std::string metrics_jsonl;     // --metrics-jsonl FILE: one JSON line per generated token (with --offload)
  tools::RouterControlFlags control;  // --chronovisor and its settings
  std::string chronovisor_log;        // --chronovisor-log FILE: one JSON line per tick
};

std::string read_file(const std::string& path) {
  return read_regular_file(path);
}

nlohmann::json stats_json(const GenerationStats& s) {
  return {{"prompt_tokens", s.prompt_tokens},
          {"generated_tokens", s.generated_tokens},
          {"prefill_tokens_per_s", s.prefill_tokens_per_s()},
          {"decode_tokens_per_s", s.decode_tokens_per_s()},
          {"time_to_first_token_ms", s.time_to_first_token * 1e3},
          {"peak_memory_mb", static_cast<double>(s.peak_rss_bytes) / (1 << 20)}};
}

struct Session {
  const Flags& flags;
  ChronosForCausalLMImpl& model;
  const Tokenizer& tokenizer;
  ExpertStore* store = nullptr;  // routed experts come from here when --offload is given
  OffloadEngine* engine = nullptr;  // the predictive decode over `store`
  AppendFile* metrics = nullptr;    // --metrics-jsonl: one line per generated token
  RouterControl* control = nullptr;  // --chronovisor, or the model's trained router control (frozen)
  const ChatFormatter& chat;        // the model's chat template, or the built-in one
  nlohmann::ordered_json history = nlohmann::ordered_json::array();

  // Runs one generation for `user_text`; prints as it goes unless --json.
  int answer(const std::string& user_text) {
    std::string prompt_text = user_text;
    if (flags.chat) {
      if (history.empty() && !flags.system.empty()) history.push_back({{"role", "system"}, {"content", flags.system}});
      history.push_back({{"role", "user"}, {"content", user_text}});
      prompt_text = chat.render(history, /*add_generation_prompt=*/true);
    }
    // A plain prompt gets the tokenizer's special tokens (BOS) as transformers adds them; a rendered
    // chat template already holds them as text.
    const std::vector<TokenId> ids32 = tokenizer.encode(prompt_text, /*match_added_tokens=*/true, /*add_special_tokens=*/!flags.chat);
    const std::vector<int64_t> prompt(ids32.begin(), ids32.end());
    if (prompt.empty()) throw InvalidArgument("the prompt encodes to no tokens");

    GenerationOptions options;
    options.max_new_tokens = flags.max_new_tokens;
    options.stop_ids = {model.config().eos_token_id};
    options.use_kv_cache = !flags.no_kv_cache;
    options.kv_dtype = parse_kv_dtype(flags.decode.kv_dtype);
    options.sampling = flags.sampling;
    options.expert_source = store;
    options.router_control = control;
    if (store) store->reset_stats();

    options.stop_strings = flags.stops;
    TextStream stream(tokenizer, options, flags.show_special);
    // A chat reply is printed from its first visible character: the blank lines a model emits after
    // the template's empty think block are not part of the answer.
    bool started = !flags.chat;
    const auto print = [&](std::string piece) {
      if (!started) piece.erase(0, std::min(piece.size(), piece.find_first_not_of(" \t\r\n")));
      started = started || !piece.empty();
      std::cout << piece << std::flush;
    };
    const TokenCallback on_token = [&](int64_t token) {
      const bool go_on = stream.push(token);
      if (!flags.json) print(stream.take());
      return go_on;
    };
    const GenerationResult result = engine ? engine->generate(prompt, options, on_token) : generate(model, prompt, options, on_token);
    if (engine && metrics)
      for (const TokenMetrics& t : engine->metrics().tokens()) metrics->write_line(to_json_line(t));
    stream.finish();
    if (!flags.json) print(stream.take());
    const std::string stop_reason = stream.stop_reason(result);
    if (flags.chat) history.push_back({{"role", "assistant"}, {"content", stream.text()}});
    nlohmann::json offload;
    if (store) offload = to_json(store->stats(), std::max<int64_t>(1, result.stats.generated_tokens));  // per token: prefill included
    if (engine) {
      const MetricsSummary m = engine->metrics().summary();
      offload["predict"] = to_string(engine->config().predict);
      offload["prefetch_lead_ms"] = m.prefetch_lead_ms;
      offload["misses_by_cause"] = {{"late", m.late}, {"not_started", m.not_started}, {"unpredicted", m.unpredicted}};
      for (const char* key : {"lookahead_recall", "lookahead_precision", "router_recall", "router_precision", "layer_ahead_recall",
                              "layer_ahead_precision"})
        offload[key] = nlohmann::json::array();
      for (const PrecisionRecall& pr : m.lookahead) {
        offload["lookahead_recall"].push_back(json_number(pr.recall()));
        offload["lookahead_precision"].push_back(json_number(pr.precision()));
      }
      for (const PrecisionRecall& pr : m.router) {
        offload["router_recall"].push_back(json_number(pr.recall()));
        offload["router_precision"].push_back(json_number(pr.precision()));
      }
      for (const PrecisionRecall& pr : m.layer_ahead) {
        offload["layer_ahead_recall"].push_back(json_number(pr.recall()));
        offload["layer_ahead_precision"].push_back(json_number(pr.precision()));
      }
    }

    if (flags.json) {
      nlohmann::json out = {{"prompt", user_text},       {"text", stream.text()},
                            {"prompt_ids", prompt},       {"tokens", result.tokens},
                            {"stop_reason", stop_reason}, {"stats", stats_json(result.stats)}};
      if (store) out["stats"]["offload"] = offload;
      if (control) out["router_control"] = {{"kind", to_string(control->kind())}, {"live", !control->frozen()}, {"ticks", control->ticks()}};
      std::cout << out.dump() << std::endl;
      return 0;
    }
    std::cout << std::endl;
    if (flags.stats) {
      const GenerationStats& s = result.stats;
      std::cerr << std::fixed << std::setprecision(1) << "[stats] prompt " << s.prompt_tokens << " tokens, generated "
                << s.generated_tokens << " (" << stop_reason << "); prefill " << s.prefill_tokens_per_s()
                << " tokens/s, decode " << s.decode_tokens_per_s() << " tokens/s, first token "
                << s.time_to_first_token * 1e3 << " ms, peak memory " << static_cast<double>(s.peak_rss_bytes) / (1 << 20)
                << " MiB" << std::endl;
      if (store)
        std::cerr << std::setprecision(2) << "[stats] offload: hit rate " << offload["hit_rate"].get<double>() * 100 << "% of "
                  << offload["uses"] << " expert uses, " << offload["warm_hits"].get<int64_t>() + offload["cold_misses"].get<int64_t>()
                  << " misses (" << offload["cold_misses"]
                  << " from SSD), " << offload["fallbacks"] << " fallbacks; per generated token (prefill included): stall "
                  << offload["stall_ms_per_token"].get<double>() << " ms, SSD " << offload["ssd_mb_per_token"].get<double>()
                  << " MB, copied " << offload["copied_mb_per_token"].get<double>() << " MB" << std::endl;
      if (engine) {
        const MetricsSummary m = engine->metrics().summary();
        std::cerr << std::setprecision(2) << "[stats] predict " << to_string(engine->config().predict) << ": prefetch lead "
                  << m.prefetch_lead_ms << " ms";
        if (!m.lookahead.empty())
          std::cerr << ", lookahead@t+1 recall " << m.lookahead[0].recall() * 100 << "% precision " << m.lookahead[0].precision() * 100
                    << "% (the LookaheadRouter alone: recall " << m.router[0].recall() * 100 << "%)";
        if (!m.layer_ahead.empty())
          std::cerr << ", layer-ahead@1 recall " << m.layer_ahead[0].recall() * 100 << "% precision " << m.layer_ahead[0].precision() * 100 << "%";
        std::cerr << std::endl;
      }
    }
    return 0;
  }
};

int run(const Flags& flags) {
  const tools::Runtime rt = tools::apply_runtime_flags(flags.runtime);
  if (!flags.prompt.empty() && !flags.prompt_file.empty()) throw InvalidArgument("give --prompt or --prompt-file, not both");
  tools::DecodeSetup setup =
      tools::load_for_decode(flags.decode, rt);
  ChronosForCausalLM& model = setup.model;
  const Tokenizer& tokenizer = setup.tokenizer;
  const std::string& tokenizer_path = setup.tokenizer_path;
  ExpertStore* store = setup.store.get();
  OffloadEngine* engine = setup.engine.get();
  std::unique_ptr<AppendFile> metrics;
  if (engine && !flags.metrics_jsonl.empty()) metrics = std::make_unique<AppendFile>(flags.metrics_jsonl, AppendFile::Mode::truncate);
  const ChatFormatter chat = flags.chat ? ChatFormatter::for_tokenizer(tokenizer_path) : ChatFormatter();
  if (flags.chat) log::info(cat("chat template: ", chat.description()));
  // --chronovisor: a live controller, started fresh (a decode step's routing is one token's, not a
  // training batch's, so a trained controller's windows do not carry over); it replaces a trained bias.
  std::unique_ptr<AppendFile> ticks;
  if (flags.control.chronovisor) {
    if (setup.router_control) log::warn(cat("--chronovisor replaces the bias of the model's trained router control (", to_string(setup.router_control->kind()), ")"));
    setup.router_control.emplace(tools::router_control_options(flags.control), model->config().num_hidden_layers, model->config().num_experts);
    if (!flags.chronovisor_log.empty()) {
      ticks = std::make_unique<AppendFile>(flags.chronovisor_log, AppendFile::Mode::truncate);
      setup.router_control->on_tick = [&ticks](const nlohmann::json& record) { ticks->write_line(nlohmann::json{{"chronovisor", record}}.dump()); };
    }
  }
  RouterControl* control = setup.router_control ? &*setup.router_control : nullptr;
  Session session{flags, *model, tokenizer, store, engine, metrics.get(), control, chat};

  int status = 0;
  if (!flags.prompt.empty()) {
    status = session.answer(flags.prompt);
  } else if (!flags.prompt_file.empty()) {
    status = session.answer(read_file(flags.prompt_file));
  } else {
    if (!isatty(STDIN_FILENO)) throw InvalidArgument("no prompt: give --prompt TEXT or --prompt-file FILE (or run on a terminal for a REPL)");
    std::cerr << "chronos-generate: " << flags.decode.model << (flags.chat ? " (chat)" : "") << "; an empty line or Ctrl-D ends" << std::endl;
    std::string line;
    while (std::cout << "> " << std::flush, std::getline(std::cin, line) && !line.empty()) session.answer(line);
  }
  if (metrics) metrics->close();  // a metrics file that could not be written fails the run
  if (ticks) ticks->close();
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  tools::configure_openmp_waiting(argv);
  return tools::run_tool("chronos-generate", [&] {
    Flags flags;
    CLI::App app{"chronos-generate: generate text with a Chronos model directory"};
    tools::add_decode_flags(app, flags.decode);
    app.add_option("--prompt", flags.prompt, "Prompt text");
    app.add_option("--prompt-file", flags.prompt_file, "File holding the prompt");
    app.add_flag("--chat", flags.chat,
                 "Wrap the prompt in the chat template (user turn + generation prompt): the tokenizer_config.json chat_template "
                 "beside the tokenizer, else the built-in one");
    app.add_flag("--show-special", flags.show_special, "Print added tokens (<think>, <|im_end|>, ...) in the generated text");
    app.add_option("--system", flags.system, "System message for --chat");
    app.add_option("--max-new-tokens", flags.max_new_tokens, "Most tokens to generate")->capture_default_str()->check(tools::positive());
    app.add_flag("--greedy", flags.sampling.greedy, "Greedy decoding (argmax)");
    app.add_option("--temperature", flags.sampling.temperature, "Sampling temperature")->capture_default_str()->check(tools::positive(1e3));
    app.add_option("--top-k", flags.sampling.top_k, "Keep the k most likely tokens (0 = off)")->capture_default_str()->check(tools::non_negative(1 << 24));
    app.add_option("--top-p", flags.sampling.top_p, "Nucleus sampling mass (1 = off)")->capture_default_str()->check(tools::number_in(1e-9, 1, "in (0, 1]"));
    app.add_option("--min-p", flags.sampling.min_p, "Drop tokens below min-p x the top probability (0 = off)")->capture_default_str()->check(tools::number_in(0, 1, "in [0, 1]"));
    app.add_option("--repetition-penalty", flags.sampling.repetition_penalty, "Penalty for tokens already in the context (1 = off)")
        ->capture_default_str()->check(tools::positive(1e3));
    app.add_option("--seed", flags.sampling.seed, "Seed for sampling")->capture_default_str();
    app.add_option("--stop", flags.stops, "Stop when this string is generated (repeatable)");
    app.add_flag("--no-kv-cache", flags.no_kv_cache, "Recompute the whole sequence at every step (verification)");
    app.add_flag("--stats", flags.stats, "Print prefill/decode tokens/s, time to first token and peak memory");
    app.add_flag("--json", flags.json, "Print the result and statistics as one JSON object");
    tools::add_runtime_flags(app, flags.runtime);
    app.add_option("--metrics-jsonl", flags.metrics_jsonl, "With --offload: write one JSON line of expert metrics per generated token");
    tools::add_chronovisor_flags(app, flags.control);
    app.add_option("--chronovisor-log", flags.chronovisor_log, "With --chronovisor: write one JSON line per tick (coherence, pressure, lens)")
        ->needs(app.get_option("--chronovisor"));
    if (auto code = tools::parse_command_line(app, argc, argv, "chronos-generate")) return *code;
    for (const auto& s : flags.stops)
      if (s.empty()) throw InvalidArgument("--stop: empty stop string");
    return run(flags);
  });
}
