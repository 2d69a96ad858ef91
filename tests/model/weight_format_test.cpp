// Models converted to a weight format (chronos/model/weight_format.h): which matrices convert, the
// one-token paths against the general path in every format, save/load round trips of converted
// directories, and corrupt block layouts refused with one line naming the tensor.
#include "chronos/model/weight_format.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <string>

#include "chronos/core/error.h"
#include "chronos/io/safetensors.h"
#include "chronos/model/causal_lm.h"
#include "chronos/model/flops.h"
#include "chronos/model/pretrained.h"
#include "support/temp_dir.h"
#include "support/tiny_config.h"

namespace chronos {
namespace {

namespace fs = std::filesystem;

const std::vector<WeightFormat> kFormats = {WeightFormat::bf16, WeightFormat::int8, WeightFormat::int4};

ChronosForCausalLM tiny_model(bool hybrid = true, int64_t vocab = 97) {
  at::manual_seed(0);
  ModelConfig config = testing::tiny_config();
  config.use_hybrid_attention = hybrid;
  config.vocab_size = vocab;
  ChronosForCausalLM model(config);
  model->eval();
  return model;
}

// Logits of one sequence fed token by token through the cache (the one-token paths).
at::Tensor token_by_token(ChronosForCausalLMImpl& model, const at::Tensor& ids) {
  at::NoGradGuard no_grad;
  KVCache cache = model.make_cache();
  ForwardOptions options;
  options.cache = &cache;
  std::vector<at::Tensor> parts;
  for (int64_t t = 0; t < ids.size(1); ++t) parts.push_back(model.forward(ids.narrow(1, t, 1), options).logits);
  return at::cat(parts, 1);
}

at::Tensor whole(ChronosForCausalLMImpl& model, const at::Tensor& ids) {
  at::NoGradGuard no_grad;
  return model.forward(ids).logits;
}

std::map<std::string, at::ScalarType> dtypes(ChronosForCausalLMImpl& model) {
  std::map<std::string, at::ScalarType> out;
  for (const auto& item : model.named_parameters()) out[item.key()] = item.value().scalar_type();
  return out;
}

TEST(WeightFormat, NamesParseAndRowBytes) {
  EXPECT_EQ(parse_weight_format("bf16"), WeightFormat::bf16);
  EXPECT_EQ(parse_weight_format("bfloat16"), WeightFormat::bf16);
  EXPECT_EQ(parse_weight_format("float32"), WeightFormat::fp32);
  EXPECT_EQ(parse_weight_format("int4"), WeightFormat::int4);
  EXPECT_THROW(parse_weight_format("q4_0"), InvalidArgument);
  EXPECT_EQ(weight_row_bytes(WeightFormat::fp32, 64), 256);
  EXPECT_EQ(weight_row_bytes(WeightFormat::bf16, 64), 128);
  EXPECT_EQ(weight_row_bytes(WeightFormat::int8, 64), 68);
  EXPECT_EQ(weight_row_bytes(WeightFormat::int4, 65), 54);
  EXPECT_DOUBLE_EQ(bytes_per_weight(WeightFormat::int8, 512), 34.0 / 32);
  const at::Tensor w = at::randn({3, 40});
  for (const WeightFormat f : {WeightFormat::fp32, WeightFormat::bf16, WeightFormat::int8, WeightFormat::int4}) {
    const at::Tensor stored = to_weight_format(w, f);
    EXPECT_EQ(stored_format(stored, 40), f);
    EXPECT_TRUE(is_stored_matrix(stored, 40));
    EXPECT_EQ(widen_weight(stored, 40).sizes(), w.sizes());
  }
  EXPECT_THROW(stored_format(at::zeros({3, 50}, at::kByte), 40), InvalidArgument);
  EXPECT_THROW(stored_format(at::zeros({3, 40}, at::kDouble), 40), InvalidArgument);
  EXPECT_FALSE(is_stored_matrix(w.t(), 3));  // not contiguous
}

// Matrices convert; norms, biases, the routers and MLA's absorbed matrices stay float32.
TEST(WeightFormat, ConvertsTheMatricesAndKeepsTheRestInFloat32) {
  ChronosForCausalLM model = tiny_model();
  const int64_t fp32_bytes = convert_weights(*model, WeightFormat::fp32);
  for (const WeightFormat format : kFormats) {
    ChronosForCausalLM m = tiny_model();
    const int64_t bytes = convert_weights(*m, format);
    EXPECT_LT(bytes, fp32_bytes * (format == WeightFormat::bf16 ? 0.51 : format == WeightFormat::int8 ? 0.27 : 0.15)) << to_string(format);
    EXPECT_EQ(weights_format(*m), format);
    const auto kinds = dtypes(*m);
    const at::ScalarType matrix = format == WeightFormat::bf16 ? at::kBFloat16 : at::kByte;
    EXPECT_EQ(kinds.at("model.embed_tokens.weight"), matrix);
    EXPECT_EQ(kinds.at("model.layers.1.self_attn.q_proj.weight"), matrix);
    EXPECT_EQ(kinds.at("model.layers.0.self_attn.q_nope_proj.weight"), matrix);
    EXPECT_EQ(kinds.at("model.layers.0.mlp.experts.3.down_proj.weight"), matrix);
    EXPECT_EQ(kinds.at("model.layers.0.mlp.shared_experts.0.up_proj.weight"), matrix);
    for (const char* kept : {"model.layers.0.self_attn.k_nope_proj.weight", "model.layers.0.self_attn.v_proj.weight",
                             "model.layers.0.mlp.gate.weight", "model.layers.0.input_layernorm.weight", "model.norm.weight"})
      EXPECT_EQ(kinds.at(kept), at::kFloat) << kept;
    for (const auto& [name, kind] : kinds)
      if (name.find("lookahead_router") != std::string::npos) EXPECT_EQ(kind, at::kFloat) << name;
    for (const auto& item : m->named_parameters()) EXPECT_FALSE(item.value().requires_grad()) << item.key();
    // The block formats decode from groups of four rows where a matrix's rows allow (97 embedding
    // rows do not); the checkpoint state dict has every matrix row-major.
    const int64_t grouped_dims = format == WeightFormat::bf16 ? 2 : 3;
    EXPECT_EQ(m->layer(1).window->q_proj->weight.dim(), grouped_dims);
    EXPECT_EQ(m->model->embed_tokens->weight.dim(), 2);
    for (const auto& [name, t] : reference_state_dict(*m)) EXPECT_LE(t.dim(), 2) << name;
  }
  EXPECT_EQ(weights_format(*model), WeightFormat::fp32);
}

// Converting again goes through the float values: int8 -> int4 equals fp32 -> int4 of the int8 values.
TEST(WeightFormat, ConvertsBetweenFormats) {
  ChronosForCausalLM a = tiny_model();
  convert_weights(*a, WeightFormat::int8);
  convert_weights(*a, WeightFormat::int4);
  EXPECT_EQ(weights_format(*a), WeightFormat::int4);
  convert_weights(*a, WeightFormat::fp32);
  EXPECT_EQ(weights_format(*a), WeightFormat::fp32);
  const at::Tensor ids = at::randint(97, {1, 6});
  EXPECT_TRUE(whole(*a, ids).isfinite().all().item<bool>());
}

// The bytes a decode step reads, measured on the model: float32 equals the config's count; the
// formats shrink it by their bytes per weight.
TEST(WeightFormat, DecodeBytesFollowTheFormat) {
  ChronosForCausalLM model = tiny_model();
  const double fp32 = decode_weight_bytes(*model);
  EXPECT_NEAR(fp32, decode_weight_bytes(model->config(), 4.0), 1.0);
  double previous = fp32;
  for (const WeightFormat format : kFormats) {
    ChronosForCausalLM m = tiny_model();
    convert_weights(*m, format);
    const double bytes = decode_weight_bytes(*m);
    EXPECT_LT(bytes, previous) << to_string(format);
    previous = bytes;
  }
}

struct PathCase {
  WeightFormat format;
  bool hybrid;
  int64_t vocab = 97;  // 96: the tied embedding and lm_head in row groups too
};

class OneTokenPath : public ::testing::TestWithParam<PathCase> {};

// One token at a time through the kernels equals the whole sequence through the general path (which
// widens the weights and rounds the input as the kernels do), and the one-token paths are taken. bf16
// agrees to float rounding. The block formats round their inputs to int8 steps, and an input within
// float rounding of a step boundary may land on either side in the two paths (their sums run in other
// orders); a few such flips move the logits by far less than the format itself does: the difference
// between the paths stays under a tenth of the format's own difference from float32, and the greedy
// tokens agree.
TEST_P(OneTokenPath, EqualsTheGeneralPath) {
  ChronosForCausalLM model = tiny_model(GetParam().hybrid, GetParam().vocab);
  const at::Tensor ids = at::randint(GetParam().vocab, {1, 20});
  const at::Tensor float32 = whole(*model, ids);
  convert_weights(*model, GetParam().format);
  {
    at::NoGradGuard no_grad;
    const at::Tensor token = at::randn({1, 1, model->config().hidden_size});
    KVCache cache = model->make_cache();
    AttentionContext context;
    context.cache = &cache.layer(0);
    DecoderLayerImpl& first = model->layer(0);
    EXPECT_TRUE(first.is_mla() ? first.mla->one_token_path_applies(token, context) : first.window->one_token_path_applies(token, context));
    EXPECT_TRUE(model->layer(1).moe->one_token_path_applies(token));
  }
  const at::Tensor general = whole(*model, ids), step = token_by_token(*model, ids);
  if (GetParam().format == WeightFormat::bf16) {
    EXPECT_LE((general - step).abs().max().item<float>(), 2e-4 * (1 + general.abs().max().item<float>()));
  } else {
    const double paths = (general - step).abs().mean().item<double>(), format = (general - float32).abs().mean().item<double>();
    EXPECT_LT(paths, 0.1 * format) << "format error " << format;
  }
  EXPECT_GE((general.argmax(-1) == step.argmax(-1)).to(at::kFloat).mean().item<float>(), 0.9f);
}

INSTANTIATE_TEST_SUITE_P(Formats, OneTokenPath,
                         ::testing::Values(PathCase{WeightFormat::bf16, true}, PathCase{WeightFormat::int8, true},
                                           PathCase{WeightFormat::int4, true}, PathCase{WeightFormat::int8, false},
                                           PathCase{WeightFormat::int4, false}, PathCase{WeightFormat::int8, true, 96},
                                           PathCase{WeightFormat::int4, false, 96}),
                         [](const auto& info) {
                           return std::string(to_string(info.param.format)) + (info.param.hybrid ? "_hybrid" : "_gqa") +
                                  (info.param.vocab % 4 == 0 ? "_grouped_lm_head" : "");
                         });

// The formats stay close to float32: bf16 and int8 within a small fraction of the logits' spread.
TEST(WeightFormat, LogitsStayCloseToFloat32) {
  ChronosForCausalLM reference = tiny_model();
  const at::Tensor ids = at::randint(97, {1, 12});
  const at::Tensor want = whole(*reference, ids);
  const double spread = want.std().item<double>();
  for (const auto& [format, bound] : std::vector<std::pair<WeightFormat, double>>{
           {WeightFormat::bf16, 0.02}, {WeightFormat::int8, 0.05}, {WeightFormat::int4, 0.5}}) {
    ChronosForCausalLM m = tiny_model();
    convert_weights(*m, format);
    const double error = (whole(*m, ids) - want).abs().mean().item<double>();
    EXPECT_LT(error, bound * spread) << to_string(format);
    EXPECT_GT(error, 0.0) << to_string(format);
  }
}

TEST(WeightFormat, SaveLoadRoundTripKeepsTheFormat) {
  for (const WeightFormat format : kFormats) {
    SCOPED_TRACE(to_string(format));
    ChronosForCausalLM model = tiny_model();
    convert_weights(*model, format);
    testing::TempDir dir;
    save_pretrained(*model, dir.path());
    const SafetensorsFile file(dir.file("model.safetensors"));
    EXPECT_EQ(file.metadata().at("chronos.weights_format"), to_string(format));
    if (format != WeightFormat::bf16) EXPECT_EQ(file.metadata().at("chronos.block_size"), "32");
    for (const bool huge_pages : {true, false}) {
      LoadOptions options;
      options.huge_pages = huge_pages;
      ChronosForCausalLM loaded = load_pretrained(dir.path(), options);
      EXPECT_EQ(weights_format(*loaded), format);
      EXPECT_EQ(dtypes(*loaded), dtypes(*model));
      const at::Tensor ids = at::randint(97, {1, 9});
      EXPECT_TRUE(at::equal(whole(*model, ids), whole(*loaded, ids)));
    }
    // Asked for another format, the loader converts: float32 from the stored values.
    LoadOptions widen;
    widen.weights_format = WeightFormat::fp32;
    ChronosForCausalLM wide = load_pretrained(dir.path(), widen);
    EXPECT_EQ(weights_format(*wide), WeightFormat::fp32);
    EXPECT_TRUE(at::equal(wide->layer(1).window->q_proj->weight, widen_weight(model->layer(1).window->q_proj->weight, 64)));
  }
}

// Row groups stay in memory: a directory holds every matrix row-major, and loading groups them again,
// the tied embedding and lm_head included (96 rows).
TEST(WeightFormat, RowGroupsSaveRowMajorAndLoadGrouped) {
  ChronosForCausalLM model = tiny_model(true, 96);
  convert_weights(*model, WeightFormat::int8);
  ASSERT_EQ(model->model->embed_tokens->weight.dim(), 3);
  testing::TempDir dir;
  save_pretrained(*model, dir.path());
  const SafetensorsFile file(dir.file("model.safetensors"));
  EXPECT_EQ(file.tensor("model.embed_tokens.weight").sizes(), (std::vector<int64_t>{96, 68}));
  EXPECT_EQ(file.tensor("lm_head.weight").sizes(), (std::vector<int64_t>{96, 68}));
  ChronosForCausalLM loaded = load_pretrained(dir.path());
  EXPECT_EQ(loaded->model->embed_tokens->weight.dim(), 3);
  EXPECT_TRUE(loaded->model->embed_tokens->weight.equal(model->model->embed_tokens->weight));
  const at::Tensor ids = at::randint(96, {1, 9});
  EXPECT_TRUE(at::equal(whole(*model, ids), whole(*loaded, ids)));
  EXPECT_TRUE(at::equal(token_by_token(*model, ids), token_by_token(*loaded, ids)));
}

// A float32 directory loaded with a format equals converting after loading.
TEST(WeightFormat, LoadingWithAFormatConverts) {
  ChronosForCausalLM model = tiny_model();
  testing::TempDir dir;
  save_pretrained(*model, dir.path());
  LoadOptions options;
  options.weights_format = WeightFormat::int4;
  ChronosForCausalLM loaded = load_pretrained(dir.path(), options);
  convert_weights(*model, WeightFormat::int4);
  const at::Tensor ids = at::randint(97, {1, 7});
  EXPECT_TRUE(at::equal(whole(*model, ids), whole(*loaded, ids)));
  // The formats are float32-compute CPU formats: another compute dtype is refused in one line.
  options.dtype = at::kBFloat16;
  EXPECT_THROW(load_pretrained(dir.path(), options), ConfigError);
}

// Rewrites dir/model.safetensors with `edit` applied to its tensors and metadata.
template <typename Edit>
void rewrite(const std::string& dir, Edit&& edit) {
  const std::string path = (fs::path(dir) / "model.safetensors").string();
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  std::map<std::string, std::string> metadata;
  {
    const SafetensorsFile file(path);
    metadata = file.metadata();
    for (const std::string& name : file.names()) tensors.emplace_back(name, file.tensor(name).clone());
  }
  edit(tensors, metadata);
  save_safetensors(path, tensors, metadata);
}

void expect_load_error(const std::string& dir, std::initializer_list<std::string> fragments) {
  try {
    load_pretrained(dir);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    for (const std::string& f : fragments) EXPECT_NE(std::string(e.what()).find(f), std::string::npos) << e.what();
  }
}

TEST(WeightFormat, CorruptBlockLayoutsAreOneClearError) {
  ChronosForCausalLM model = tiny_model();
  convert_weights(*model, WeightFormat::int8);
  const std::string q = "model.layers.1.self_attn.q_proj.weight";
  {  // rows of the wrong length
    testing::TempDir dir;
    save_pretrained(*model, dir.path());
    rewrite(dir.path(), [&](auto& tensors, auto&) {
      for (auto& [name, t] : tensors)
        if (name == q) t = t.narrow(1, 0, t.size(1) - 2).contiguous();
    });
    expect_load_error(dir.path(), {q, "corrupt block layout", "int8 rows of 64 weights are [64, 68]"});
  }
  {  // another block size
    testing::TempDir dir;
    save_pretrained(*model, dir.path());
    rewrite(dir.path(), [&](auto&, auto& metadata) { metadata["chronos.block_size"] = "64"; });
    expect_load_error(dir.path(), {"chronos.block_size", "'64'"});
  }
  {  // no format named: uint8 matrices nobody described
    testing::TempDir dir;
    save_pretrained(*model, dir.path());
    rewrite(dir.path(), [&](auto&, auto& metadata) { metadata.erase("chronos.weights_format"); });
    expect_load_error(dir.path(), {"names no weight format", "corrupt block layout"});
  }
  {  // an unknown format
    testing::TempDir dir;
    save_pretrained(*model, dir.path());
    rewrite(dir.path(), [&](auto&, auto& metadata) { metadata["chronos.weights_format"] = "int3"; });
    expect_load_error(dir.path(), {"chronos.weights_format", "int3"});
  }
  {  // a matrix that stays float32 stored as blocks
    testing::TempDir dir;
    save_pretrained(*model, dir.path());
    rewrite(dir.path(), [&](auto& tensors, auto&) {
      for (auto& [name, t] : tensors)
        if (name == "model.layers.0.mlp.gate.weight") t = to_weight_format(t, WeightFormat::int8);
    });
    expect_load_error(dir.path(), {"model.layers.0.mlp.gate.weight", "kept in float32"});
  }
  {  // a block scale that is NaN
    testing::TempDir dir;
    save_pretrained(*model, dir.path());
    rewrite(dir.path(), [&](auto& tensors, auto&) {
      for (auto& [name, t] : tensors)
        if (name == q) {
          t[0][0] = 0xff;  // fp16 0x7eff... little endian: low byte first
          t[0][1] = 0x7e;
        }
    });
    expect_load_error(dir.path(), {q, "NaN"});
  }
}

}  // namespace
}  // namespace chronos
