#include "chronos/model/causal_lm.h"

#include <ATen/ATen.h>
#include <torch/nn/init.h>

#include <unistd.h>

#include <cmath>

#include "chronos/core/error.h"
#include "chronos/model/linear.h"
#include "chronos/model/weight_format.h"
#include "model/stored_rows.h"
#include "model/token_buffer.h"

namespace chronos {

ChronosModelImpl::ChronosModelImpl(const ModelConfig& c, const BuildOptions& build) {
  embed_tokens = register_module("embed_tokens", torch::nn::Embedding(c.vocab_size, c.hidden_size));
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) layers->push_back(DecoderLayer(c, l, build.routed_experts));
  norm = register_module("norm", RMSNorm(c.hidden_size, c.rms_norm_eps));
  if (c.has_lookahead_router()) lookahead_router = register_module("lookahead_router", LookaheadRouter(c));
  // The tied lm_head's init wins in the reference: U(-1/sqrt(H), 1/sqrt(H)).
  torch::NoGradGuard no_grad;
  const double bound = 1.0 / std::sqrt(static_cast<double>(c.hidden_size));
  embed_tokens->weight.uniform_(-bound, bound);
}

namespace {
// The modules allocate every parameter in float32 at construction: refuse a config that cannot fit
// in this machine's memory with one line, before the allocator fails somewhere inside LibTorch.
void check_allocatable(const ModelConfig& config, const BuildOptions& build) {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page_size = ::sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page_size <= 0) return;
  const double gib = 1024.0 * 1024.0 * 1024.0;
  const int64_t parameters = count_parameters(config, build.routed_experts);
  const double need = 4.0 * static_cast<double>(parameters);
  const double have = static_cast<double>(pages) * static_cast<double>(page_size);
  if (need > have)
    throw ConfigError(cat("the config has ", parameters, build.routed_experts ? "" : " resident", " parameters: ", need / gib, " GiB in float32, more than this machine's ",
                          have / gib, " GiB of memory"));
}
}  // namespace

ChronosForCausalLMImpl::ChronosForCausalLMImpl(ModelConfig config, const BuildOptions& build) : config_(std::move(config)) {
  config_.validate();
  check_allocatable(config_, build);
  model = register_module("model", ChronosModel(config_, build));
  if (!config_.tie_word_embeddings) lm_head = register_module("lm_head", make_linear(config_.hidden_size, config_.vocab_size));
  rope_full_ = std::make_unique<RotaryTable>(config_, config_.resolved_head_dim());
  if (config_.use_hybrid_attention && config_.mla_proper_rope)
    rope_mla_ = std::make_unique<RotaryTable>(config_, config_.rope_width());
}

namespace {
// The embedding rows of input_ids in the compute dtype (that of the norms), from a table in the
// compute dtype or in a weight format (weight_format.h), whose looked-up rows are widened.
at::Tensor embed(ChronosModelImpl& model, const at::Tensor& input_ids) {
  const at::Tensor& table = model.embed_tokens->weight;
  const at::ScalarType compute = model.norm->weight.scalar_type();
  const int64_t hidden = model.embed_tokens->options.embedding_dim();
  // One CPU token at inference into float32: its row widened straight into a reused buffer (the
  // lookup's reshape, casts and views were 3% of a fine.json int8 step).
  if (input_ids.numel() == 1 && input_ids.dim() == 2 && input_ids.is_cpu() && input_ids.scalar_type() == at::kLong &&
      compute == at::kFloat && is_stored_matrix(table, hidden)) {
    thread_local TokenBuffer buffer;
    at::Tensor x = buffer.get({1, 1, hidden}, at::TensorOptions().dtype(at::kFloat));
    widen_row_into(table, input_ids.data_ptr<int64_t>()[0], hidden, x.data_ptr<float>());
    return x;
  }
  if (table.scalar_type() == compute) return model.embed_tokens(input_ids);
  std::vector<int64_t> shape(input_ids.sizes().begin(), input_ids.sizes().end());
  shape.push_back(hidden);
  return widen_selected_rows(table, input_ids.reshape({-1}).to(table.device()), hidden).to(table.device(), compute).view(shape);
}
}  // namespace

ForwardOutput ChronosForCausalLMImpl::forward(const at::Tensor& input_ids, const ForwardOptions& options) {
  if (input_ids.dim() != 2) throw InvalidArgument(cat("forward: input_ids must be [batch, seq] (got ", input_ids.dim(), " dims)"));
  const int64_t B = input_ids.size(0), S = input_ids.size(1), L = config_.num_hidden_layers;
  if (S == 0) throw InvalidArgument("forward: empty input sequence");
  KVCache* cache = options.cache;
  if (cache && cache->num_layers() != L)
    throw InvalidArgument(cat("forward: cache has ", cache->num_layers(), " layers, model has ", L));
  if (options.available_expert_masks && static_cast<int64_t>(options.available_expert_masks->size()) != L)
    throw InvalidArgument(cat("forward: ", options.available_expert_masks->size(), " expert masks for ", L, " layers"));

  const int64_t P = cache ? cache->position() : 0;
  at::Tensor x = embed(*model, input_ids);
  if (is_training() && config_.dropout > 0) x = at::dropout(x, config_.dropout, true);

  at::Tensor loss_mask;
  if (options.attention_mask.defined()) {
    const at::Tensor& m = options.attention_mask;
    loss_mask = m.size(1) >= S ? m.narrow(1, m.size(1) - S, S) : at::Tensor();
  }

  ForwardOutput out;
  out.aux_raw.reserve(L);
  out.router_probs.reserve(L);
  at::Tensor aux_total = at::zeros({}, x.options().dtype(at::kFloat));
  for (int64_t l = 0; l < L; ++l) {
    AttentionContext attention;
    attention.position = P;
    attention.cache = cache ? &cache->layer(l) : nullptr;
    attention.key_padding = options.attention_mask;
    attention.rope_full = rope_full_.get();
    attention.rope_mla = rope_mla_ ? rope_mla_.get() : rope_full_.get();
    MoECall call;
    call.layer = l;
    call.source = options.expert_source;
    if (options.available_expert_masks) call.availability = (*options.available_expert_masks)[l];
    call.loss_mask = loss_mask;
    call.on_input = &options.on_moe_input;
    if (options.router_bias && l < static_cast<int64_t>(options.router_bias->per_layer.size())) {
      call.router_bias = options.router_bias->per_layer[static_cast<size_t>(l)];
      call.bias_target = options.router_bias->target;
    }

    DecoderOutput d = layer(l).forward(x, attention, call);
    x = std::move(d.hidden);
    // A layer at inference reports a zero aux_raw: nothing to add (two tensor operations a layer saved).
    if (layer(l).is_training()) aux_total = aux_total + d.aux_raw * config_.router_aux_loss_coef;
    out.aux_raw.push_back(std::move(d.aux_raw));
    if (d.router_probs.defined()) out.router_probs.push_back(std::move(d.router_probs));
    if (d.selected.defined()) out.selected.push_back(std::move(d.selected));
    if (l == 0 && options.lookahead && !model->lookahead_router.is_empty()) {
      out.lookahead_probs = model->lookahead_router(x);
      if (options.on_lookahead) options.on_lookahead(out.lookahead_probs);
    }
  }
  if (cache) cache->advance(S);

  out.hidden_states = model->norm(x);
  const at::Tensor kept = options.logits_to_keep > 0 && options.logits_to_keep < S
                              ? out.hidden_states.narrow(1, S - options.logits_to_keep, options.logits_to_keep)
                              : out.hidden_states;
  out.logits = project(kept, lm_head_weight());
  out.aux_loss = aux_total;
  if (options.labels.defined()) {
    if (kept.size(1) != S) throw InvalidArgument("forward: labels need logits for every position (logits_to_keep = 0)");
    const at::Tensor shifted = out.logits.narrow(1, 0, S - 1).reshape({-1, out.logits.size(-1)});
    const at::Tensor targets = options.labels.narrow(1, 1, S - 1).reshape({-1});
    out.loss = at::cross_entropy_loss(shifted.to(at::kFloat), targets, {}, at::Reduction::Mean, -100);
  }
  (void)B;
  return out;
}

void ChronosForCausalLMImpl::set_fallback_mask_prob(double p) {
  if (!(p >= 0 && p <= 1)) throw ConfigError(cat("fallback_mask_prob must be in [0, 1] (got ", p, ")"));
  config_.fallback_mask_prob = p;
  for (int64_t l = 0; l < config_.num_hidden_layers; ++l)
    if (!layer(l).moe.is_empty()) layer(l).moe->set_fallback_mask_prob(p);
}

at::Tensor mean_router_probs(const std::vector<at::Tensor>& router_probs) {
  if (router_probs.empty()) throw InvalidArgument("mean_router_probs: no MoE layers");
  return at::stack(router_probs, 0).mean(0);
}

}  // namespace chronos
