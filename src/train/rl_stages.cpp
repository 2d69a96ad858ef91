#include "chronos/train/rl_stages.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>

#include "chronos/core/error.h"
#include "chronos/model/pretrained.h"
#include "chronos/routing/router_control.h"
#include "chronos/tokenizer/chat_template.h"
#include "chronos/train/global_batch.h"
#include "chronos/train/sequence_log_probs.h"

namespace chronos {
namespace fs = std::filesystem;

// ---- rewards ----

ModelReward::ModelReward(const std::string& model_dir, double clip) : clip_(clip) {
  model_ = load_pretrained(model_dir);
  for (auto& p : model_->parameters()) p.requires_grad_(false);
  const std::string tokenizer = (fs::path(model_dir) / "tokenizer.json").string();
  if (!fs::is_regular_file(tokenizer)) throw IoError(cat(model_dir, ": the reward model has no tokenizer.json"));
  tokenizer_ = std::make_unique<Tokenizer>(Tokenizer::from_file(tokenizer));
}

float ModelReward::score(const std::string& prompt, const std::string& response) {
  ChatTemplateOptions options;
  options.add_generation_prompt = true;
  const std::vector<TokenId> context = tokenizer_->encode(render_chat({{"user", prompt, std::nullopt, {}}}, {}, options));
  const std::vector<TokenId> answer = tokenizer_->encode(response + "<|im_end|>");
  std::vector<int64_t> ids(context.begin(), context.end());
  ids.insert(ids.end(), answer.begin(), answer.end());
  at::NoGradGuard no_grad;
  const at::Tensor tokens = at::tensor(ids, at::kLong).unsqueeze(0).to(model_->lm_head_weight().device());
  at::Tensor mask = at::zeros_like(tokens);
  mask.narrow(1, static_cast<int64_t>(context.size()), static_cast<int64_t>(answer.size())).fill_(1);
  const double mean = sequence_log_probs(model_->forward(tokens).logits, tokens, mask).mean.item<double>();
  return static_cast<float>(std::clamp(mean, -clip_, clip_));
}

std::unique_ptr<RewardFunction> make_reward(const std::string& spec) {
  if (spec == "toy" || spec.empty()) return std::make_unique<ToyReward>();
  if (spec.rfind("model:", 0) == 0 && spec.size() > 6) return std::make_unique<ModelReward>(spec.substr(6));
  throw InvalidArgument(cat("reward '", spec, "': expected toy or model:DIR"));
}

// ---- GRPO ----

GrpoStage::GrpoStage(const Tokenizer& tokenizer, const EncoderOptions& encoder, GrpoStageOptions options,
                     std::shared_ptr<ChronosForCausalLMImpl> reference, std::unique_ptr<RewardFunction> reward)
    : options_(std::move(options)),
      tokenizer_(tokenizer),
      encoder_(tokenizer, encoder),
      records_(options_.data.data_path, options_.data.seed, /*shuffle=*/true, options_.data.skip_bad_lines),
      reference_(std::move(reference)),
      reward_(std::move(reward)) {
  if (!reference_) throw InvalidArgument("grpo needs the frozen reference model (the starting model)");
  if (options_.group_size < 2) throw InvalidArgument(cat("grpo.group_size must be >= 2 (got ", options_.group_size, ")"));
  if (!(options_.temperature > 0)) throw InvalidArgument(cat("grpo.temperature must be > 0 (got ", options_.temperature, ")"));
  options_.loss.validate();
}

MicroStep GrpoStage::micro_step(ChronosForCausalLMImpl& model) {
  auto [prompt_ids, prompt_text] = records_.next([&](const nlohmann::json& r, const std::string& w) { return encoder_.prompt(r, w); });
  const int64_t G = options_.group_size, P = static_cast<int64_t>(prompt_ids.size());
  const c10::Device device = model.lm_head_weight().device();
  const int64_t eos = model.config().eos_token_id;

  // 1. Rollouts: all G at once with the KV cache, in eval mode (no dropout, no simulated misses),
  //    sampling from softmax(logits / T) with the global (checkpointed) generator.
  model.eval();
  std::vector<std::vector<int64_t>> responses(static_cast<size_t>(G));
  {
    at::NoGradGuard no_grad;
    KVCache cache = model.make_cache();
    ForwardOptions forward;
    forward.cache = &cache;
    forward.logits_to_keep = 1;
    forward.router_bias = router_bias_;  // the rollouts come from the policy as it routes
    at::Tensor input = at::tensor(prompt_ids, at::kLong).to(device).unsqueeze(0).repeat({G, 1});
    std::vector<bool> done(static_cast<size_t>(G), false);
    for (int64_t step = 0; step < options_.max_new_tokens; ++step) {
      const at::Tensor logits = model.forward(input, forward).logits.select(1, 0).to(at::kFloat);
      const at::Tensor next = at::multinomial(at::softmax(logits / options_.temperature, -1), 1).to(at::kCPU);
      bool all_done = true;
      for (int64_t g = 0; g < G; ++g) {
        if (done[static_cast<size_t>(g)]) continue;
        const int64_t token = next[g][0].item<int64_t>();
        responses[static_cast<size_t>(g)].push_back(token);
        done[static_cast<size_t>(g)] = token == eos;
        all_done &= done[static_cast<size_t>(g)];
      }
      if (all_done) break;
      input = next.to(device);  // finished rows keep decoding; their tokens are not used
    }
  }

  // 2. Rewards and group-relative advantages.
  std::vector<std::string> texts;
  for (const auto& r : responses) {
    // Ids of a model vocabulary padded beyond the tokenizer's decode to nothing, as in TextStream.
    std::vector<TokenId> known;
    for (int64_t id : r)
      if (id >= 0 && id <= INT32_MAX && tokenizer_.contains(static_cast<TokenId>(id))) known.push_back(static_cast<TokenId>(id));
    texts.push_back(tokenizer_.decode(known, /*skip_special=*/true));
  }
  const std::vector<float> rewards = reward_->score_group(prompt_text, texts);
  const at::Tensor reward = at::tensor(rewards, at::kFloat);
  const at::Tensor advantages = group_relative_advantages(reward).to(device);

  // 3. Log-probs of the responses under the policy (eval mode, with gradients: the distribution the
  //    rollouts came from, B4), the frozen reference, and the policy before this update.
  std::vector<Example> rows;
  for (const auto& r : responses) {
    Example e;
    e.ids = prompt_ids;
    e.ids.insert(e.ids.end(), r.begin(), r.end());
    e.labels.assign(e.ids.size(), -100);
    for (size_t t = static_cast<size_t>(P); t < e.ids.size(); ++t) e.labels[t] = e.ids[t];
    rows.push_back(std::move(e));
  }
  const Batch batch = make_batch(rows, 0);
  const at::Tensor ids = batch.input_ids.to(device);
  const at::Tensor mask = (batch.labels.to(device) >= 0).narrow(1, 1, ids.size(1) - 1);  // next-token alignment
  ForwardOptions forward;
  forward.attention_mask = batch.attention_mask.to(device);
  ForwardOptions trained = forward;
  trained.router_bias = router_bias_;
  const ForwardOutput out = model.forward(ids, trained);
  const at::Tensor policy = next_token_log_probs(out.logits, ids);
  ForwardOutput ref;
  {
    at::NoGradGuard no_grad;
    ref = reference_->forward(ids, forward);
  }
  const at::Tensor reference = next_token_log_probs(ref.logits, ids).detach();
  const GrpoLossOutput g = grpo_loss(policy, reference, policy.detach(), mask, advantages, options_.loss);

  RouterLossInputs inputs = RouterLossInputs::from_forward(out, model.config().num_experts_per_tok, forward.attention_mask);
  inputs.reference_router_probs = mean_router_probs(ref.router_probs).detach();
  const RouterLossTerms terms = chronos_router_losses(inputs, options_.data.weights);
  model.train();

  MicroStep step;
  step.loss = g.loss + terms.total;
  step.tokens = batch.tokens();
  step.routing_counts = expert_choice_counts(out.selected, forward.attention_mask, model.config().num_experts);
  step.log = {{"pg", g.policy_loss}, {"kl", g.kl}, {"reward", batch_mean(reward)}, {"la", terms.lookahead}, {"clip_fraction", g.clip_fraction}};
  if (terms.anchor_active) step.log["anchor"] = terms.anchor;
  return step;
}

nlohmann::json GrpoStage::data_state() const { return cursor_to_json(records_.cursor()); }
void GrpoStage::restore_data_state(const nlohmann::json& state) { records_.seek(cursor_from_json(state)); }

// ---- distillation ----

DistillStage::DistillStage(const Tokenizer& tokenizer, const EncoderOptions& encoder, LmStageOptions options, DistillConfig config,
                           std::shared_ptr<ChronosForCausalLMImpl> teacher, std::shared_ptr<ChronosForCausalLMImpl> reference)
    : options_(std::move(options)),
      config_(config),
      encoder_(tokenizer, encoder),
      records_(options_.data_path, options_.seed, /*shuffle=*/true, options_.skip_bad_lines),
      teacher_(std::move(teacher)),
      reference_(std::move(reference)) {
  if (!teacher_) throw InvalidArgument("distill needs a teacher model");
  config_.validate();
}

MicroStep DistillStage::micro_step(ChronosForCausalLMImpl& model) {
  const std::vector<Example> examples = next_supervised_batch(records_, encoder_, options_.batch_size, without_targets_);
  const Batch batch = make_batch(examples, 0);
  const c10::Device device = model.lm_head_weight().device();
  const at::Tensor ids = batch.input_ids.to(device), labels = batch.labels.to(device);
  ForwardOptions forward;
  forward.attention_mask = batch.attention_mask.to(device);
  ForwardOptions trained = forward;
  trained.router_bias = router_bias_;
  const ForwardOutput out = model.forward(ids, trained);
  at::Tensor teacher_logits;
  RouterLossInputs inputs = RouterLossInputs::from_forward(out, model.config().num_experts_per_tok, forward.attention_mask);
  {
    at::NoGradGuard no_grad;
    teacher_logits = teacher_->forward(ids, forward).logits;
    if (reference_ && options_.weights.router_anchor > 0)
      inputs.reference_router_probs = mean_router_probs(reference_->forward(ids, forward).router_probs);
  }
  const DistillOutput d = distill_loss(out.logits, teacher_logits, labels, config_);
  const RouterLossTerms terms = chronos_router_losses(inputs, options_.weights);
  MicroStep step;
  step.loss = d.loss + terms.total;
  step.tokens = batch.tokens();
  step.routing_counts = expert_choice_counts(out.selected, forward.attention_mask, model.config().num_experts);
  step.log = {{"kd", d.kd}, {"ce", d.ce}, {"la", terms.lookahead}, {"balance", terms.balance}};
  if (terms.anchor_active) step.log["anchor"] = terms.anchor;
  return step;
}

int64_t DistillStage::micro_batches_per_epoch() {
  return (static_cast<int64_t>(records_.records_per_epoch()) + options_.batch_size - 1) / options_.batch_size;
}
nlohmann::json DistillStage::data_state() const {
  nlohmann::json state = cursor_to_json(records_.cursor());
  state["without_targets"] = without_targets_;
  return state;
}

void DistillStage::restore_data_state(const nlohmann::json& state) {
  records_.seek(cursor_from_json(state));
  without_targets_ = optional_state_count(state, "without_targets");
}

}  // namespace chronos
