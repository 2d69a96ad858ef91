#include "common/decode_setup.h"

#include <filesystem>

#include "chronos/core/error.h"
#include "chronos/core/log.h"
#include "chronos/io/regular_file.h"
#include "chronos/model/pretrained.h"

namespace chronos::tools {

namespace fs = std::filesystem;

void add_decode_flags(CLI::App& app, DecodeFlags& flags) {
  app.add_option("--model", flags.model, "Model directory (config.json, model.safetensors, tokenizer.json)")->required();
  app.add_option("--tokenizer", flags.tokenizer, "tokenizer.json to use instead of the model directory's");
  add_weights_dtype_flag(app, flags.weights_dtype);
  add_kv_dtype_flag(app, flags.kv_dtype);
  add_offload_flags(app, flags.offload);
  app.add_option("--predict", flags.predict, "With --offload: which predictors fetch experts ahead: none, lookahead, intent or both")
      ->capture_default_str()
      ->check(CLI::IsMember({"none", "lookahead", "intent", "both"}));
}

DecodeSetup load_for_decode(const DecodeFlags& flags, const Runtime& runtime) {
  const std::string& model_dir = flags.model;
  const std::string& tokenizer_path = flags.tokenizer;
  const OffloadFlags& offload = flags.offload;
  require_model_directory(model_dir);
  const std::string path = tokenizer_path.empty() ? (fs::path(model_dir) / "tokenizer.json").string() : tokenizer_path;
  if (!fs::is_regular_file(path)) throw IoError(cat(model_dir, ": the model directory has no tokenizer.json (give --tokenizer FILE)"));
  DecodeSetup setup{path, Tokenizer::from_file(path)};
  LoadOptions load = load_options(runtime, runtime.dtype);
  load.skip_routed_experts = !offload.cache_dir.empty();
  load.weights_format = parse_weights_dtype(flags.weights_dtype);
  setup.model = load_pretrained(model_dir, load);
  const ModelConfig& config = setup.model->config();
  if (setup.tokenizer.vocab_size() > config.vocab_size)
    throw FormatError(cat(path, ": ", setup.tokenizer.vocab_size(), " tokens, more than the model's vocab_size ", config.vocab_size));
  setup.router_control = load_router_control(model_dir);
  if (setup.router_control) {
    setup.router_control->freeze();
    log::info(cat(model_dir, ": routing with the bias of its trained router control (", to_string(setup.router_control->kind()), ")"));
  }
  if (offload.cache_dir.empty()) return setup;

  setup.store = open_expert_store(offload, offload.cache_dir, model_dir, config, runtime);
  log::info(describe_store(*setup.store));
  OffloadEngineConfig engine_config;
  engine_config.predict = parse_predict_mode(flags.predict);
  if (engine_config.predict == PredictMode::intent || engine_config.predict == PredictMode::both) {
    setup.classifier = load_intent_classifier(model_dir, config);
    if (!setup.classifier)
      log::info(cat(model_dir, " has no intent classifier: the prefill hot set comes from the running expert frequency"));
  }
  setup.engine = std::make_unique<OffloadEngine>(*setup.model, *setup.store, engine_config,
                                                 setup.classifier ? setup.classifier->get() : nullptr);
  return setup;
}

}  // namespace chronos::tools
