// chronos-train pretrain | sft | dpo | orpo | grpo | distill: the flags every stage shares, and the stages built on them.
#include <torch/utils.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>

#include "chronos-train/modes.h"
#include "chronos/core/error.h"
#include "chronos/core/log.h"
#include "chronos/model/pretrained.h"
#include "chronos/tokenizer/chat_formatter.h"
#include "chronos/tokenizer/tokenizer.h"
#include "chronos/train/checkpoint.h"
#include "chronos/train/process_group.h"
#include "chronos/train/stage_recipe.h"
#include "chronos/train/trainer.h"
#include "common/flag_checks.h"
#include "common/progress_line.h"
#include "common/router_control_flags.h"
#include "common/runtime_flags.h"

namespace fs = std::filesystem;

namespace chronos::train_cli {
namespace {

// Flags of every stage. Optional values stay unset so that the stage default or the checkpoint's
// value applies.
struct StageFlags {
  StageRecipe recipe;  // stage, data, seed, skip_bad_lines and the stage-specific knobs
  std::string out, from, config, tokenizer, resume, log_jsonl;
  int64_t steps = 0, epochs = 0, batch_size = 0, grad_accum = 0, max_seq_len = 0, save_every = 0, keep = 3, stop_at = 0,
          log_every = 10;
  double lr = 0, grad_clip = 1.0;
  std::optional<double> fallback_mask_prob;
  RouterWeightOverrides lambdas;
  std::string policy_objective = "clip";  // GRPO
  std::string teacher;                    // distillation
  tools::RouterControlFlags control;       // --chronovisor ... | --aux-free
  tools::RuntimeFlags runtime;
  std::string dist_backend = "auto";       // data-parallel (WORLD_SIZE > 1)
  double dist_timeout = 300;
  double bucket_mb = 25;
};

void add_stage_flags(CLI::App& cmd, StageFlags& f) {
  const StageDefaults& d = stage_defaults(f.recipe.stage);
  cmd.add_option("--data", f.recipe.data, "Training data (JSONL)")->required();
  cmd.add_option("--out", f.out, "Output model directory (checkpoints go to OUT/checkpoints)")->required();
  cmd.add_option("--tokenizer", f.tokenizer, "tokenizer.json (default: the one in --from / the resumed checkpoint)");
  cmd.add_option("--steps", f.steps, "Optimizer steps of the whole run (the schedule is built from it)")->check(tools::positive(1e9));
  cmd.add_option("--epochs", f.epochs, "Passes over the data, when --steps is not given")->check(tools::positive(1e6));
  cmd.add_option("--batch-size", f.batch_size, cat("Sequences per micro-batch (default ", d.batch_size, ")"))->check(tools::positive(1 << 16));
  cmd.add_option("--grad-accum", f.grad_accum, cat("Micro-batches per optimizer step (default ", d.grad_accum, ")"))->check(tools::positive(1 << 16));
  cmd.add_option("--max-seq-len", f.max_seq_len, cat("Tokens per sequence (default ", d.max_seq_len, ")"))->check(tools::positive(1 << 24));
  cmd.add_option("--lr", f.lr, cat("Peak learning rate (default ", d.lr, ")"))->check(tools::positive(10));
  cmd.add_option("--grad-clip", f.grad_clip, "Global gradient-norm clip (0 = off)")->capture_default_str()->check(tools::non_negative(1e6));
  cmd.add_option("--seed", f.recipe.seed, "Seed for data order, dropout and expert-miss simulation")->capture_default_str();
  cmd.add_option("--save-every", f.save_every, "Checkpoint every N optimizer steps (0 = only the final model)")->capture_default_str()->check(tools::non_negative(1e9));
  cmd.add_option("--keep", f.keep, "Checkpoints to keep")->capture_default_str()->check(tools::non_negative(1e6));
  cmd.add_option("--stop-at", f.stop_at, "End after step N as a crash would (for resume tests)")->check(tools::non_negative(1e9));
  cmd.add_option("--resume", f.resume, "Continue from the newest checkpoint under this run folder");
  cmd.add_option("--log-jsonl", f.log_jsonl, "Append one JSON line per log step (and per router-control tick) to this file");
  cmd.add_option("--log-every", f.log_every, "Optimizer steps between log lines")->capture_default_str()->check(tools::positive(1e9));
  cmd.add_flag("--skip-bad-lines", f.recipe.skip_bad_lines, "Skip and count malformed records instead of stopping");
  cmd.add_option("--fallback-mask-prob", f.fallback_mask_prob, cat("Simulated expert-miss rate while training (default ", d.fallback_mask_prob, ")"))->check(tools::number_in(0, 1, "in [0, 1]"));
  cmd.add_option("--lambda-balance", f.lambdas.balance, "Load-balance weight")->check(tools::non_negative(1e6));
  cmd.add_option("--lambda-temporal", f.lambdas.temporal, "Temporal smoothness weight")->check(tools::non_negative(1e6));
  cmd.add_option("--lambda-locality", f.lambdas.locality, "Router locality weight")->check(tools::non_negative(1e6));
  cmd.add_option("--lambda-lookahead", f.lambdas.lookahead, "Lookahead soft-CE weight (0 also turns off top-k and union)")->check(tools::non_negative(1e6));
  cmd.add_option("--lambda-lookahead-topk", f.lambdas.lookahead_topk, "Lookahead top-k hit weight")->check(tools::non_negative(1e6));
  cmd.add_option("--lambda-lookahead-union", f.lambdas.lookahead_union, "Lookahead union recall weight")->check(tools::non_negative(1e6));
  cmd.add_option("--lambda-anchor", f.lambdas.anchor, cat("Router KL anchor weight (default ", d.router_anchor, ")"))->check(tools::non_negative(1e6));
  tools::add_chronovisor_flags(cmd, f.control);
  tools::add_aux_free_flags(cmd, f.control);
  tools::add_runtime_flags(cmd, f.runtime);
  cmd.add_option("--dist-backend", f.dist_backend, "Data-parallel collectives when WORLD_SIZE > 1: gloo (CPU), nccl (CUDA) or auto")
      ->capture_default_str()->check(CLI::IsMember({"auto", "gloo", "nccl"}));
  cmd.add_option("--dist-timeout", f.dist_timeout, "Seconds a data-parallel rank waits for the others (rendezvous, each collective)")
      ->capture_default_str()->check(tools::positive(86400));
  cmd.add_option("--bucket-mb", f.bucket_mb, "Gradient all-reduce bucket size in MiB (data-parallel)")->capture_default_str()->check(tools::positive(1 << 16));
}

// A model that only gives targets (reference, teacher): loaded in fp32 with gradients off.
std::shared_ptr<ChronosForCausalLMImpl> load_frozen(const std::string& dir, const tools::Runtime& rt) {
  std::shared_ptr<ChronosForCausalLMImpl> model = load_pretrained(dir, tools::load_options(rt, c10::kFloat)).ptr();
  for (auto& p : model->parameters()) p.requires_grad_(false);
  return model;
}

int run_stage(StageFlags f) {
  tools::Runtime rt = tools::apply_runtime_flags(f.runtime);
  // Data-parallel when started as one rank of several (chronos-train launch, torchrun, a scheduler).
  const DistEnvironment dist = DistEnvironment::from_environment();
  // Each rank of a machine takes its own GPU unless --device names one.
  if (dist.distributed() && rt.device.is_cuda() && f.runtime.device.find(':') == std::string::npos)
    rt.device = c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(dist.local_rank));
  std::unique_ptr<DataParallelGroup> group;
  if (dist.distributed()) {
    group = DataParallelGroup::connect(dist, {parse_dist_backend(f.dist_backend), rt.device, f.dist_timeout});
    // Rank 0 tells the story; the others only warn, unless a log level was asked for.
    if (dist.rank > 0 && f.runtime.log_level.empty() && std::getenv("CHRONOS_LOG_LEVEL") == nullptr) log::set_level(log::Level::warn);
    log::info(cat("data-parallel: ", dist.world_size, " ranks over ", group->backend_name(), ", rendezvous at ", dist.master_addr, ":", dist.port));
  }
  const bool writer = dist.rank == 0;
  StageRecipe& recipe = f.recipe;
  const StageDefaults& d = stage_defaults(recipe.stage);
  if (f.batch_size <= 0) f.batch_size = d.batch_size;
  if (f.grad_accum <= 0) f.grad_accum = d.grad_accum;
  if (f.max_seq_len <= 0) f.max_seq_len = d.max_seq_len;
  if (f.lr <= 0) f.lr = d.lr;
  recipe.batch_size = f.batch_size;
  if (f.steps <= 0 && f.epochs <= 0) throw InvalidArgument("give --steps N or --epochs N");
  if (!fs::is_regular_file(recipe.data)) throw IoError(cat(recipe.data, ": training data not found"));
  const std::string stage_name = train_stage_name(recipe.stage);

  // The starting weights: the checkpoint being resumed, else --from, else (pretrain) a fresh --config model.
  std::optional<std::string> checkpoint;
  if (!f.resume.empty()) {
    checkpoint = latest_checkpoint(f.resume);
    if (!checkpoint) throw IoError(cat(f.resume, ": no checkpoint to resume (expected ", f.resume, "/checkpoints/step_*)"));
  }
  torch::manual_seed(recipe.seed);
  ChronosForCausalLM model{nullptr};
  std::string start;
  if (checkpoint) {
    start = *checkpoint;
    model = load_pretrained(start, tools::load_options(rt, c10::kFloat));
  } else if (!f.from.empty()) {
    start = f.from;
    model = load_pretrained(start, tools::load_options(rt, c10::kFloat));
  } else if (!f.config.empty()) {
    start = f.config;
    model = ChronosForCausalLM(ModelConfig::load(f.config));
    model->to(rt.device);
  } else {
    throw InvalidArgument(recipe.stage == TrainStage::Pretrain ? "give --config FILE (a fresh model) or --from DIR" : "give --from DIR (the starting model)");
  }
  model->set_fallback_mask_prob(f.fallback_mask_prob.value_or(stage_fallback_mask_prob(recipe.stage, model->config())));

  std::string tokenizer_path = f.tokenizer;
  for (const std::string& dir : {f.from, checkpoint.value_or("")})
    if (tokenizer_path.empty() && !dir.empty() && fs::is_regular_file(fs::path(dir) / "tokenizer.json"))
      tokenizer_path = (fs::path(dir) / "tokenizer.json").string();
  if (tokenizer_path.empty()) throw InvalidArgument("give --tokenizer FILE (no tokenizer.json in the starting model directory)");
  const Tokenizer tokenizer = Tokenizer::from_file(tokenizer_path);
  if (tokenizer.vocab_size() > model->config().vocab_size)
    throw ConfigError(cat(tokenizer_path, ": ", tokenizer.vocab_size(), " tokens do not fit the model's vocab_size ", model->config().vocab_size));

  if (f.max_seq_len > model->config().max_position_embeddings)
    throw InvalidArgument(cat("--max-seq-len ", f.max_seq_len, " is beyond the model's context of ", model->config().max_position_embeddings,
                              " tokens (max_position_embeddings)"));
  recipe.weights = stage_router_weights(recipe.stage, model->config(), f.lambdas);
  recipe.objective = parse_policy_objective(f.policy_objective);
  // A Hugging Face family trains on its own chat template; a Chronos model on the built-in one.
  const ChatFormatter chat = model->config().is_chronos() ? ChatFormatter() : ChatFormatter::for_tokenizer(tokenizer_path);
  const EncoderOptions encoder{f.max_seq_len, static_cast<TokenId>(model->config().bos_token_id),
                               static_cast<TokenId>(model->config().eos_token_id),
                               model->config().is_chronos() ? nullptr : &chat};
  // The frozen starting model: DPO's and GRPO's reference, and the router anchor's target on the same batch.
  std::shared_ptr<ChronosForCausalLMImpl> reference, teacher;
  if (recipe.stage != TrainStage::Pretrain && stage_needs_reference(recipe)) {
    if (f.from.empty()) throw InvalidArgument("this stage needs the starting model as its reference: give --from DIR (also when resuming)");
    reference = load_frozen(f.from, rt);
  }
  if (recipe.stage == TrainStage::Distill) teacher = load_frozen(f.teacher, rt);
  const std::unique_ptr<TrainingStage> stage =
      make_training_stage(recipe, tokenizer, encoder, model->config().vocab_size, reference, teacher);

  TrainerOptions trainer;
  trainer.out_dir = f.out;
  trainer.steps = f.steps;
  trainer.epochs = f.epochs;
  trainer.grad_accum = f.grad_accum;
  trainer.grad_clip = f.grad_clip;
  trainer.seed = recipe.seed;
  trainer.save_every = f.save_every;
  trainer.keep = f.keep;
  trainer.stop_at = f.stop_at;
  trainer.log_every = std::max<int64_t>(1, f.log_every);
  trainer.log_jsonl = f.log_jsonl;
  trainer.resume_checkpoint = checkpoint.value_or("");
  trainer.adamw.lr = f.lr;
  trainer.router_control = tools::router_control_options(f.control);
  if (trainer.router_control.kind != RouterControlKind::none)
    log::info(cat("router control: ", to_string(trainer.router_control.kind), f.log_jsonl.empty() ? " (give --log-jsonl to keep its ticks)" : ""));
  // fp32 master weights everywhere; on CUDA the matmuls run under bf16 autocast (fp16 would need loss scaling).
  trainer.autocast = rt.device.is_cuda() ? c10::kBFloat16 : c10::kFloat;
  trainer.data_parallel = group.get();
  trainer.bucket_bytes = static_cast<int64_t>(f.bucket_mb * (1 << 20));
  log::info(cat(stage_name, " from ", start, " on ", recipe.data, ": batch ", f.batch_size, " x ", f.max_seq_len, " tokens, grad-accum ",
                f.grad_accum, ", lr ", f.lr, ", seed ", recipe.seed, ", threads ", rt.threads));
  tools::ProgressLine progress;
  trainer.on_progress = [&](const TrainingProgress& p) { progress.show(describe(p)); };
  trainer.on_checkpoint = [&](const std::string& dir) {
    progress.done();
    log::info(cat("checkpoint ", dir));
  };
  const TrainingSummary summary = run_training(*model, *stage, trainer);
  progress.done();
  if (!writer) return 0;
  if (summary.finished) {
    std::error_code ec;
    fs::copy_file(tokenizer_path, fs::path(f.out) / "tokenizer.json", fs::copy_options::overwrite_existing, ec);
    const fs::path side = fs::path(tokenizer_path).parent_path() / "tokenizer_config.json";
    if (fs::is_regular_file(side)) fs::copy_file(side, fs::path(f.out) / "tokenizer_config.json", fs::copy_options::overwrite_existing, ec);
  }
  std::cout << stage_name << ": " << summary.steps << " steps, last loss " << summary.last_loss << ", " << summary.skipped_steps
            << " skipped, " << static_cast<int64_t>(summary.seconds) << " s" << (summary.finished ? ", model in " + f.out : ", stopped early")
            << std::endl;
  if (group)
    std::cout << "data-parallel: " << group->world_size() << " ranks (" << group->backend_name() << "), " << summary.tokens_per_s
              << " tok/s over all ranks; gradient all-reduce " << summary.all_reduce_ms << " ms per step (median), "
              << summary.all_reduce_overlapped_ms << " ms of it during backward, " << summary.gradient_bytes / (1 << 20) << " MiB" << std::endl;
  return 0;
}

tools::Subcommand add_lm_stage(CLI::App& app, TrainStage stage, const char* help) {
  auto flags = std::make_shared<StageFlags>();
  flags->recipe.stage = stage;
  CLI::App* cmd = app.add_subcommand(train_stage_name(stage), help);
  add_stage_flags(*cmd, *flags);
  cmd->add_option("--from", flags->from, "Starting model directory");
  if (stage == TrainStage::Pretrain) cmd->add_option("--config", flags->config, "Model config JSON for a fresh model");
  if (stage == TrainStage::Dpo || stage == TrainStage::Orpo)
    cmd->add_option("--beta", flags->recipe.beta, cat("Inverse temperature of the preference loss (default ", stage_defaults(stage).beta, ")"))->check(tools::non_negative(1e3));
  if (stage == TrainStage::Orpo) cmd->add_option("--lambda-or", flags->recipe.lambda_or, "Weight of the odds-ratio term")->capture_default_str()->check(tools::non_negative(1e6));
  if (stage == TrainStage::Grpo) {
    cmd->add_option("--reward", flags->recipe.reward, "toy, or model:DIR (a Chronos model's log-likelihood of the answer)")->capture_default_str();
    cmd->add_option("--group-size", flags->recipe.group_size, "Rollouts per prompt")->capture_default_str()->check(tools::number_in(2, 1024, "in [2, 1024] (advantages compare the rollouts of a group)"));
    cmd->add_option("--max-gen-len", flags->recipe.max_new_tokens, "Tokens per rollout")->capture_default_str()->check(tools::positive(1 << 16));
    cmd->add_option("--temperature", flags->recipe.temperature, cat("Rollout sampling temperature (default ", stage_defaults(stage).temperature, ")"))->check(tools::positive(1e3));
    cmd->add_option("--beta", flags->recipe.beta, cat("Weight of the k3 KL to the starting model (default ", stage_defaults(stage).beta, ")"))->check(tools::non_negative(1e3));
    cmd->add_option("--clip-eps", flags->recipe.clip_eps, "PPO ratio clip")->capture_default_str()->check(tools::number_in(1e-6, 1, "in (0, 1]"));
    cmd->add_option("--policy-objective", flags->policy_objective, "clip (PPO clipped ratio) or reinforce")->capture_default_str()->check(CLI::IsMember({"clip", "reinforce"}));
  }
  if (stage == TrainStage::Distill) {
    cmd->add_option("--teacher", flags->teacher, "Teacher model directory (same tokenizer, any size)")->required();
    cmd->add_option("--alpha", flags->recipe.alpha, "Weight of the KD term (CE gets 1 - alpha)")->capture_default_str()->check(tools::number_in(0, 1, "in [0, 1]"));
    cmd->add_option("--temperature", flags->recipe.temperature, cat("Distillation temperature (default ", stage_defaults(stage).temperature, ")"))->check(tools::positive(1e3));
  }
  return {cmd, [flags] { return run_stage(*flags); }};
}

}  // namespace

tools::Subcommand add_pretrain_mode(CLI::App& app) {
  return add_lm_stage(app, TrainStage::Pretrain, "Pretrain on text (packed sequences, CE + router regulariser)");
}

tools::Subcommand add_sft_mode(CLI::App& app) {
  return add_lm_stage(app, TrainStage::Sft, "Supervised fine-tuning on conversations (CE on assistant answers + router regulariser + anchor)");
}

tools::Subcommand add_dpo_mode(CLI::App& app) {
  return add_lm_stage(app, TrainStage::Dpo, "Direct preference optimisation on chosen/rejected pairs against the frozen starting model");
}

tools::Subcommand add_orpo_mode(CLI::App& app) {
  return add_lm_stage(app, TrainStage::Orpo, "Odds-ratio preference optimisation on chosen/rejected pairs (no reference model)");
}

tools::Subcommand add_grpo_mode(CLI::App& app) {
  return add_lm_stage(app, TrainStage::Grpo, "Group-relative policy optimisation with rollouts, a reward and a KL to the starting model");
}

tools::Subcommand add_distill_mode(CLI::App& app) {
  return add_lm_stage(app, TrainStage::Distill, "Distil a teacher model directory into the student (forward KL + CE)");
}

}  // namespace chronos::train_cli
