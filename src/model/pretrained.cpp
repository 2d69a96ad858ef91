#include "chronos/model/pretrained.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <filesystem>
#include <map>
#include <memory>
#include <set>

#include <xxhash.h>

#include "chronos/core/dtype.h"
#include "chronos/core/error.h"
#include "chronos/core/log.h"
#include "chronos/io/atomic_file.h"
#include "chronos/io/json_file.h"
#include "chronos/io/safetensors.h"
#include "chronos/model/quantized.h"
#include "chronos/model/weight_arena.h"
#include "model/checkpoint_layout.h"
#include "model/checkpoint_tensors.h"
#include "model/row_groups.h"

namespace chronos {
namespace fs = std::filesystem;

namespace {

constexpr const char* kLmHead = "lm_head.weight";
constexpr const char* kEmbedding = "model.embed_tokens.weight";

// The safetensors metadata of a converted model (docs/formats.md "Weight formats").
constexpr const char* kFormatKey = "chronos.weights_format";
constexpr const char* kBlockSizeKey = "chronos.block_size";
constexpr const char* kBlockLayoutKey = "chronos.block_layout";
constexpr const char* kBlockLayout =
    "each row of a [rows, cols] matrix is ceil(cols / block_size) blocks, the last zero-padded; a block is its fp16 scale d "
    "(little endian) then its quants q, a weight is d * q; int8: block_size int8 quants; int4: block_size / 2 bytes, byte j "
    "holding q + 8 of weight j (low nibble) and of weight j + block_size / 2 (high nibble)";

std::string shape_string(at::IntArrayRef shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

}  // namespace

std::vector<std::pair<std::string, at::Tensor>> reference_state_dict(ChronosForCausalLMImpl& model) {
  const ModelConfig& config = model.config();
  // Block-format matrices leave the groups of four rows they decode from for the row-major layout.
  std::map<std::string, int64_t> formatted;
  for (const FormattedMatrix& m : formatted_matrices(model)) formatted[m.name] = m.cols;
  const auto row_major = [](const at::Tensor& t, int64_t cols) { return grouped_format(t, cols) ? ungroup_rows(t, 0, t.size(0)) : t; };
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& item : model.named_parameters(/*recurse=*/true)) {
    const auto matrix = formatted.find(item.key());
    const at::Tensor value = item.value().detach();
    out.emplace_back(checkpoint_tensor_name(config, item.key()), matrix == formatted.end() ? value : row_major(value, matrix->second));
  }
  if (config.is_chronos()) out.emplace_back(kLmHead, row_major(model.lm_head_weight().detach(), config.hidden_size));
  return out;
}

namespace {
const char* torch_dtype_name(at::ScalarType dtype) {
  return dtype == at::kFloat ? "float32" : dtype == at::kHalf ? "float16" : dtype == at::kBFloat16 ? "bfloat16" : nullptr;
}
at::ScalarType dtype_of_name(const std::string& name) {
  return name == "bfloat16" ? at::kBFloat16 : name == "float16" ? at::kHalf : at::kFloat;
}
}  // namespace

void save_pretrained(ChronosForCausalLMImpl& model, const std::string& dir) {
  make_directories(dir);
  auto tensors = reference_state_dict(model);
  ModelConfig config = model.config();
  std::map<std::string, std::string> metadata{{"format", "pt"}};
  const WeightFormat format = weights_format(model);
  if (format != WeightFormat::fp32) {
    // Matrices as they are, everything else in float32.
    metadata[kFormatKey] = to_string(format);
    if (format == WeightFormat::int8 || format == WeightFormat::int4) {
      metadata[kBlockSizeKey] = std::to_string(kQuantBlock);
      metadata[kBlockLayoutKey] = kBlockLayout;
    }
    config.torch_dtype = format == WeightFormat::bf16 ? "bfloat16" : "float32";
    for (auto& [name, tensor] : tensors) tensor = tensor.to(at::kCPU);
  } else if (config.is_chronos()) {
    const at::ScalarType dtype = model.lm_head_weight().scalar_type();
    config.torch_dtype = torch_dtype_name(dtype) ? torch_dtype_name(dtype) : dtype_name(dtype);
  } else {
    // A family's checkpoint keeps the dtype it was loaded in, whatever the compute dtype was.
    const at::ScalarType dtype = dtype_of_name(config.torch_dtype);
    config.torch_dtype = torch_dtype_name(dtype);
    for (auto& [name, tensor] : tensors) tensor = tensor.to(at::kCPU, dtype);
  }
  save_safetensors((fs::path(dir) / "model.safetensors").string(), tensors, metadata);
  config.save((fs::path(dir) / "config.json").string());
}

namespace {

void check_finite(const at::Tensor& param, const std::string& name, const std::string& file) {
  const int64_t bad = at::logical_not(at::isfinite(param)).sum().item<int64_t>();
  if (bad == 0) return;
  const int64_t nan = at::isnan(param).sum().item<int64_t>();
  throw FormatError(cat(file, ": tensor '", name, "' holds ", nan, " NaN and ", bad - nan,
                        " infinite values (a damaged or diverged checkpoint; LoadOptions::allow_nonfinite loads it anyway)"));
}
}  // namespace

std::string expert_weights_fingerprint(const std::string& dir, const ModelConfig& config) {
  const CheckpointTensors checkpoint(dir);
  const int64_t units = config.num_hidden_layers * config.num_experts;
  const int64_t samples = std::min<int64_t>(64, units);
  std::unique_ptr<XXH3_state_t, decltype(&XXH3_freeState)> state(XXH3_createState(), XXH3_freeState);
  XXH3_64bits_reset(state.get());
  const auto add = [&](const void* bytes, size_t size) { XXH3_64bits_update(state.get(), bytes, size); };
  for (int64_t s = 0; s < samples; ++s) {
    const int64_t unit = s * units / samples;
    const int64_t layer = unit / config.num_experts, expert = unit % config.num_experts;
    for (const ExpertMatrix matrix : {ExpertMatrix::gate, ExpertMatrix::up, ExpertMatrix::down}) {
      const std::string name = routed_expert_tensor_name(config, layer, expert, matrix);
      if (!checkpoint.contains(name)) throw FormatError(cat(dir, ": checkpoint lacks tensor '", name, "'"));
      const SafetensorsFile& file = checkpoint.file_of(name);
      const safetensors::TensorEntry& entry = file.entry(name);
      const std::string header = cat(name, "|", safetensors::dtype_string(entry.dtype), "|", shape_string(entry.shape));
      add(header.data(), header.size());
      const at::Tensor tensor = file.tensor(name);
      const auto* bytes = static_cast<const unsigned char*>(tensor.data_ptr());
      const size_t size = tensor.nbytes(), edge = std::min<size_t>(256, size);
      add(bytes, edge);
      add(bytes + size - edge, edge);
    }
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(XXH3_64bits_digest(state.get())));
  return cat("xxh3_64:", hex);
}

void require_model_directory(const std::string& dir) {
  std::error_code ec;
  const fs::file_status status = fs::status(dir, ec);
  if (!fs::exists(status)) throw IoError(cat(dir, ": no such model directory"));
  if (!fs::is_directory(status)) throw IoError(cat(dir, ": not a directory (a model is a folder with config.json and model.safetensors)"));
  if (!fs::exists(fs::path(dir) / "config.json")) throw IoError(cat(dir, ": not a model directory (no config.json)"));
}

namespace {

// The weight format a directory's files name in their metadata (fp32 when none does); every file
// must agree, and a block format must use this build's block size.
WeightFormat directory_format(const CheckpointTensors& checkpoint) {
  std::optional<WeightFormat> format;
  std::string previous_file;
  for (const std::string& name : checkpoint.names()) {
    const SafetensorsFile& file = checkpoint.file_of(name);
    if (!previous_file.empty() && file.path() == previous_file) continue;
    const auto& metadata = file.metadata();
    const auto it = metadata.find(kFormatKey);
    WeightFormat here = WeightFormat::fp32;
    if (it != metadata.end()) {
      try {
        here = parse_weight_format(it->second);
      } catch (const InvalidArgument& e) {
        throw FormatError(cat(file.path(), ": metadata ", kFormatKey, ": ", e.what()));
      }
      if (here == WeightFormat::int8 || here == WeightFormat::int4) {
        const auto block = metadata.find(kBlockSizeKey);
        if (block == metadata.end() || block->second != std::to_string(kQuantBlock))
          throw FormatError(cat(file.path(), ": metadata ", kBlockSizeKey, " is '", block == metadata.end() ? "" : block->second,
                                "'; this build reads ", to_string(here), " blocks of ", kQuantBlock));
      }
    }
    if (format && *format != here)
      throw FormatError(cat(file.path(), ": stores ", to_string(here), " weights, ", previous_file, " ", to_string(*format)));
    format = here;
    previous_file = file.path();
  }
  return format.value_or(WeightFormat::fp32);
}

}  // namespace

ChronosForCausalLM load_pretrained(const std::string& dir, const LoadOptions& options) {
  require_model_directory(dir);
  check_compute_dtype(options.device, options.dtype);
  const ModelConfig config = ModelConfig::load((fs::path(dir) / "config.json").string());
  const CheckpointTensors checkpoint(dir);
  const WeightFormat stored = directory_format(checkpoint);
  const WeightFormat target = options.weights_format.value_or(stored);
  if (target != WeightFormat::fp32 && (!options.device.is_cpu() || options.dtype != at::kFloat))
    throw ConfigError(cat(dir, ": ", to_string(target), " weights", options.weights_format ? "" : " (as the directory stores them)",
                          " are for float32 compute on the CPU, not ", c10::toString(options.dtype), " on ", options.device.str()));

  BuildOptions build;
  build.routed_experts = !options.skip_routed_experts;
  ChronosForCausalLM model(config, build);
  torch::NoGradGuard no_grad;
  std::map<std::string, int64_t> formatted;  // parameter -> logical columns, for the matrices a format applies to
  for (const FormattedMatrix& m : formatted_matrices(*model)) formatted[m.name] = m.cols;
  std::vector<std::pair<at::Tensor, at::Tensor>> stored_as_is;  // (parameter, its stored-format value), set after to()
  std::set<std::string> used;
  for (auto& item : model->named_parameters(/*recurse=*/true)) {
    const std::string& name = item.key();
    at::Tensor& param = item.value();
    std::string source = checkpoint_tensor_name(config, name);
    if (options.skip_routed_experts && is_routed_expert_parameter(name)) {
      if (checkpoint.contains(source)) used.insert(source);
      continue;
    }
    if (!checkpoint.contains(source)) {
      // A file holding only lm_head still carries the tied matrix.
      if (name == kEmbedding && config.tie_word_embeddings && checkpoint.contains(kLmHead)) {
        source = kLmHead;
      } else {
        throw FormatError(cat(dir, ": checkpoint lacks tensor '", source, "' (expected shape ", shape_string(param.sizes()), ")"));
      }
    }
    const at::Tensor value = checkpoint.tensor(source);
    const std::string& file = checkpoint.file_of(source).path();
    const auto matrix = formatted.find(name);
    if (value.scalar_type() == at::kByte || (value.scalar_type() == at::kBFloat16 && stored == WeightFormat::bf16 && matrix != formatted.end())) {
      // A matrix kept in its weight format: its rows must be those of the directory's format.
      if (matrix == formatted.end())
        throw FormatError(cat(file, ": tensor '", source, "' is ", dtype_name(value.scalar_type()), " but '", name, "' is kept in float32"));
      const int64_t cols = matrix->second;
      const int64_t row_size = stored == WeightFormat::bf16 ? cols : weight_row_bytes(stored, cols);  // elements per row
      if (stored == WeightFormat::fp32 || value.dim() != 2 || value.size(0) != param.size(0) || value.size(1) != row_size)
        throw FormatError(cat(file, ": tensor '", source, "' is ", dtype_name(value.scalar_type()), " ", shape_string(value.sizes()), "; ",
                              stored == WeightFormat::fp32 ? std::string("the metadata names no weight format")
                                                           : cat(to_string(stored), " rows of ", cols, " weights are [", param.size(0), ", ",
                                                                 row_size, "]"),
                              " (a corrupt block layout)"));
      if (!options.allow_nonfinite) check_finite(widen_weight(value, cols), source, file);
      stored_as_is.emplace_back(param, options.huge_pages ? value.clone() : value);
      used.insert(source);
      continue;
    }
    if (value.sizes() != param.sizes())
      throw FormatError(cat(file, ": tensor '", source, "' has shape ", shape_string(value.sizes()), ", the config needs ",
                            shape_string(param.sizes())));
    if (!at::isFloatingType(value.scalar_type()))
      throw FormatError(cat(file, ": tensor '", source, "' has non-float dtype ", dtype_name(value.scalar_type())));
    // Zero-copy: a CPU tensor already in the compute dtype stays a view of the (copy-on-write)
    // mapping, unless the weights are about to be gathered into huge pages anyway.
    if (value.scalar_type() == options.dtype && options.device.is_cpu() && !options.huge_pages) param.set_data(value);
    else param.copy_(value);  // into the storage the model was built with: no second copy of the weights
    if (!options.allow_nonfinite) check_finite(param, source, file);
    used.insert(source);
  }
  if (config.tie_word_embeddings && checkpoint.contains(kLmHead)) used.insert(kLmHead);  // tied: the embedding is authoritative
  size_t unexpected = 0;
  for (const auto& name : checkpoint.names()) {
    if (used.count(name)) continue;
    if (++unexpected <= 5) log::warn(cat(dir, ": ignoring unexpected tensor '", name, "'"));
  }
  if (unexpected > 5) log::warn(cat(dir, ": ignored ", unexpected, " unexpected tensors in all"));
  model->to(options.device, options.dtype);
  for (auto& [param, value] : stored_as_is) {
    param.requires_grad_(false);
    param.set_data(value);
  }
  if (target != WeightFormat::fp32 || !stored_as_is.empty()) convert_weights(*model, target);
  if (options.huge_pages && options.device.is_cpu()) gather_weights_in_huge_pages(*model);
  model->eval();
  return model;
}

}  // namespace chronos
