#include "chronos/train/trainer.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/nn/utils/clip_grad.h>

#include <cmath>
#include <cstring>
#include <iomanip>
#include <memory>
#include <optional>
#include <sstream>

#include "chronos/core/autocast.h"
#include "chronos/core/error.h"
#include "chronos/core/log.h"
#include "chronos/core/timing.h"
#include "chronos/io/append_file.h"
#include "chronos/io/atomic_file.h"
#include "chronos/model/causal_lm.h"
#include "chronos/model/pretrained.h"
#include "chronos/train/checkpoint.h"
#include "chronos/train/global_batch.h"
#include "chronos/train/gradient_sync.h"
#include "chronos/train/process_group.h"
#include "chronos/train/schedule.h"

namespace chronos {
namespace {

std::string eta_text(double seconds) {
  const auto s = static_cast<int64_t>(seconds);
  std::ostringstream out;
  if (s >= 3600) out << s / 3600 << "h";
  out << std::setw(s >= 3600 ? 2 : 1) << std::setfill('0') << (s / 60) % 60 << "m" << std::setw(2) << s % 60 << "s";
  return out.str();
}

// Drops every gradient (PyTorch's set_to_none): a parameter no token reached in a step then has no
// gradient and AdamW leaves it alone, exactly as after a resume, where no gradient exists yet.
// (Zeroed gradients would still move it through the moments, so a resumed run would diverge.)
void clear_gradients(const std::vector<at::Tensor>& params) {
  for (const auto& p : params) p.mutable_grad() = at::Tensor();
}

// Puts the resumed checkpoint's router control in place of the fresh one: a run resumes with the
// control it was trained with, or it would not continue exactly.
void restore_router_control(const std::string& checkpoint, const TrainerState& saved, std::optional<RouterControl>& control) {
  const std::string source = cat(checkpoint, "/", kRouterControlFile);
  if (saved.router_control.is_null()) {
    if (control) throw InvalidArgument(cat(checkpoint, ": the run was trained without a router control; resume it without one"));
    return;
  }
  RouterControl restored = RouterControl::from_state(saved.router_control, source);
  if (!control || control->kind() != restored.kind())
    throw InvalidArgument(cat(checkpoint, ": the run was trained with router control ", to_string(restored.kind()), "; resume it with the same flags"));
  if (restored.num_layers() != control->num_layers() || restored.num_experts() != control->num_experts())
    throw FormatError(cat(source, ": steers ", restored.num_layers(), " layers of ", restored.num_experts(), " experts, the model has ",
                          control->num_layers(), " of ", control->num_experts()));
  if (restored.kind() == RouterControlKind::chronovisor &&
      control->chronovisor()->state().at("config") != restored.chronovisor()->state().at("config"))
    log::warn(cat(source, ": the checkpoint's Chronovisor settings apply, not this command's"));
  control.emplace(std::move(restored));
}

// Gradient communication over the steps of one log window, for the JSON line.
struct CommunicationWindow {
  double all_reduce = 0, overlapped = 0, waited = 0;
  int64_t steps = 0, bytes = 0, buckets = 0;
  void add(const GradientSyncTiming& t) {
    all_reduce += t.all_reduce;
    overlapped += t.overlapped;
    waited += t.waited;
    bytes = t.bytes;
    buckets = t.buckets;
    ++steps;
  }
  void write(nlohmann::json& line) const {
    if (steps == 0) return;
    const double n = static_cast<double>(steps);
    line["allreduce_ms"] = all_reduce / n * 1e3;                                  // first bucket start to last end, per step
    line["allreduce_overlap"] = all_reduce > 0 ? overlapped / all_reduce : 0.0;  // share of it hidden behind backward
    line["allreduce_wait_ms"] = waited / n * 1e3;                                // backward end to gradients ready
    line["gradient_bytes"] = bytes;
    line["buckets"] = buckets;
  }
};

// Keeps the ranks' random streams apart (GRPO samples rollouts per rank).
constexpr uint64_t kRankSeedStride = 1000003;

// Rank 0's parameters and buffers on every rank.
void broadcast_model(DataParallelGroup& group, ChronosForCausalLMImpl& model) {
  std::vector<at::Tensor> tensors;
  for (const auto& p : model.parameters()) tensors.push_back(p.detach());
  for (const auto& b : model.buffers()) tensors.push_back(b);
  at::NoGradGuard no_grad;
  group.broadcast(tensors, 0, "the broadcast of rank 0's starting weights");
}

std::string generator_state_bytes() {
  const at::Tensor state = at::detail::getDefaultCPUGenerator().get_state().contiguous();
  return std::string(static_cast<const char*>(state.data_ptr()), static_cast<size_t>(state.nbytes()));
}

// Every rank's data cursor and generator state, for rank 0's checkpoint.
void gather_rank_states(DataParallelGroup& group, const TrainingStage& stage, TrainerState& state) {
  const std::vector<std::string> data = group.gather(stage.data_state().dump(), 0, "gathering the ranks' data cursors");
  const std::vector<std::string> rng = group.gather(generator_state_bytes(), 0, "gathering the ranks' generator states");
  state.world_size = group.world_size();
  state.rank_data = nlohmann::json::array();
  state.rank_rng.clear();
  if (group.rank() != 0) return;
  for (size_t r = 0; r < data.size(); ++r) {
    state.rank_data.push_back(nlohmann::json::parse(data[r]));
    at::Tensor bytes = at::empty({static_cast<int64_t>(rng[r].size())}, at::kByte);
    std::memcpy(bytes.data_ptr(), rng[r].data(), rng[r].size());
    state.rank_rng.push_back(bytes);
  }
}

// The logged values of every rank added up: each is the rank's share of the global batch's value.
std::map<std::string, at::Tensor> sum_logged_values(DataParallelGroup& group, const std::map<std::string, at::Tensor>& logged) {
  if (logged.empty()) return logged;
  std::vector<at::Tensor> flat;
  for (const auto& [k, v] : logged) flat.push_back(v.to(at::kCPU, at::kDouble).reshape({-1}));
  const at::Tensor summed = group.sum(at::cat(flat), "the step's logged values");
  std::map<std::string, at::Tensor> out;
  int64_t offset = 0;
  for (const auto& [k, v] : logged) {
    out[k] = summed.narrow(0, offset, v.numel()).reshape(v.sizes()).to(at::kFloat);
    offset += v.numel();
  }
  return out;
}

}  // namespace

std::string describe(const TrainingProgress& p) {
  std::ostringstream text;
  text << std::fixed << std::setprecision(4) << p.stage << " step " << p.step << "/" << p.total_steps << "  loss " << p.loss << "  lr "
       << std::setprecision(2) << std::scientific << p.lr << std::fixed << std::setprecision(0) << "  " << p.tokens_per_s
       << " tok/s  ETA " << eta_text(p.eta_seconds);
  return text.str();
}

void TrainerOptions::validate() const {
  const auto rule = [](bool ok, const char* field, const std::string& text) {
    if (!ok) throw ConfigError(cat("trainer.", field, " ", text));
  };
  rule(!out_dir.empty(), "out_dir", "must name the output folder");
  rule(steps >= 0 && epochs >= 0, "steps", cat("and epochs must be >= 0 (got ", steps, " and ", epochs, ")"));
  rule(steps > 0 || epochs > 0, "steps", "or epochs must be > 0");
  rule(grad_accum >= 1, "grad_accum", cat("must be >= 1 (got ", grad_accum, ")"));
  rule(std::isfinite(grad_clip) && grad_clip >= 0, "grad_clip", cat("must be >= 0, 0 = off (got ", grad_clip, ")"));
  rule(save_every >= 0, "save_every", cat("must be >= 0 (got ", save_every, ")"));
  rule(keep >= 0, "keep", cat("must be >= 0 (got ", keep, ")"));
  rule(stop_at >= 0, "stop_at", cat("must be >= 0 (got ", stop_at, ")"));
  rule(log_every >= 1, "log_every", cat("must be >= 1 (got ", log_every, ")"));
  rule(max_bad_steps >= 1, "max_bad_steps", cat("must be >= 1 (got ", max_bad_steps, ")"));
  rule(std::isfinite(adamw.lr) && adamw.lr > 0, "adamw.lr", cat("must be a finite number > 0 (got ", adamw.lr, ")"));
  rule(bucket_bytes > 0, "bucket_bytes", cat("must be > 0 (got ", bucket_bytes, ")"));
  router_control.validate();
}

TrainingSummary run_training(ChronosForCausalLMImpl& model, TrainingStage& stage, const TrainerOptions& o) {
  o.validate();
  DataParallelGroup* const group = o.data_parallel;
  const int64_t rank = group ? group->rank() : 0, ranks = group ? group->world_size() : 1;
  const bool writer = rank == 0;  // the rank that logs and writes files
  if (writer) make_directories(o.out_dir);
  if (group) stage.set_data_shard({rank, ranks});

  // The schedule counts optimizer steps; with --epochs the last window may be partial.
  int64_t total_micro = 0, total_steps = o.steps;
  if (o.steps <= 0) {
    const int64_t per_epoch = stage.micro_batches_per_epoch();
    if (per_epoch <= 0) throw InvalidArgument(cat(stage.name(), ": trainer.epochs needs a dataset of known size; set trainer.steps"));
    total_micro = o.epochs * per_epoch;
    total_steps = (total_micro + o.grad_accum - 1) / o.grad_accum;
  }
  const LrSchedule schedule{o.adamw.lr, total_steps};
  auto optimizer = make_adamw(model, o.adamw);

  std::optional<RouterControl> control;
  if (o.router_control.kind != RouterControlKind::none)
    control.emplace(o.router_control, model.config().num_hidden_layers, model.config().num_experts);

  TrainerState state;
  state.stage = stage.name();
  state.total_steps = total_steps;
  state.seed = o.seed;
  if (group) {
    // One starting point everywhere (a fresh model is initialised on each rank), then each rank its own random stream.
    broadcast_model(*group, model);
    if (rank > 0) at::manual_seed(o.seed + static_cast<uint64_t>(rank) * kRankSeedStride);
  }
  if (!o.resume_checkpoint.empty()) {
    const TrainerState saved = read_trainer_state(o.resume_checkpoint);
    if (saved.stage != stage.name())
      throw InvalidArgument(cat(o.resume_checkpoint, ": a ", saved.stage, " checkpoint cannot resume a ", stage.name(), " run"));
    if (saved.total_steps != total_steps && writer)
      log::warn(cat("resuming a run planned for ", saved.total_steps, " steps as a run of ", total_steps, " steps: the schedule changes"));
    const bool has_rng = restore_optimizer_and_rng(o.resume_checkpoint, model, *optimizer, saved.world_size == ranks ? rank : 0);
    if (!has_rng) throw FormatError(cat(o.resume_checkpoint, "/rng.safetensors: no generator state for rank ", rank));
    restore_router_control(o.resume_checkpoint, saved, control);
    if (saved.world_size == ranks) {
      stage.restore_data_state(ranks > 1 ? saved.rank_data.at(static_cast<size_t>(rank)) : saved.data);
    } else {
      if (writer)
        log::warn(cat(o.resume_checkpoint, " was written by ", saved.world_size, " rank", saved.world_size == 1 ? "" : "s", ", this run has ",
                      ranks, ": the data order changes (each rank continues its share of epoch ", cursor_from_json(saved.data).epoch,
                      " from rank 0's place in it; some records of this epoch may be seen twice or not at all)"));
      stage.restore_data_state(reshard_data_state(saved.data, saved.world_size, ranks));
      if (rank > 0) at::manual_seed(o.seed + static_cast<uint64_t>(saved.step) + static_cast<uint64_t>(rank) * kRankSeedStride);
    }
    state.step = saved.step;
    if (writer) log::info(cat("resumed ", o.resume_checkpoint, " at step ", state.step, " of ", total_steps));
  }

  std::unique_ptr<AppendFile> jsonl;
  if (!o.log_jsonl.empty() && writer) jsonl = std::make_unique<AppendFile>(o.log_jsonl, AppendFile::Mode::append);
  std::vector<at::Tensor> params;
  for (const auto& p : model.parameters())
    if (p.requires_grad()) params.push_back(p);
  std::unique_ptr<GradientSync> sync;
  if (group) sync = std::make_unique<GradientSync>(*group, params, o.bucket_bytes);

  model.train();
  TrainingSummary summary;
  Stopwatch clock;
  int64_t tokens_since_log = 0, tokens_total = 0, bad_in_row = 0;
  std::vector<double> all_reduce_ms, overlapped_ms;
  CommunicationWindow window_comm;
  const int64_t first_step = state.step + 1;
  Stopwatch log_clock;
  for (int64_t step = first_step; step <= total_steps; ++step) {
    if (o.stop_at > 0 && step > o.stop_at) break;
    if (group) group->mark_step(step);
    const double lr = schedule.at(step);
    set_learning_rate(*optimizer, lr);
    const int64_t window = total_micro > 0 ? std::min(o.grad_accum, total_micro - (step - 1) * o.grad_accum) : o.grad_accum;
    // Values stay on the device until a log step reads them: the loss check below is the step's one sync.
    at::Tensor loss_sum;
    std::map<std::string, at::Tensor> logged;
    at::Tensor routing_counts;
    int64_t step_tokens = 0;
    stage.set_router_bias(control ? control->bias() : nullptr);
    for (int64_t m = 0; m < window; ++m) {
      MicroStep micro = [&] {
        const AutocastGuard autocast(model.lm_head_weight().device(), o.autocast);  // bf16 matmuls on CUDA
        const GlobalBatchScope global_batch(group ? &group->global_batch_reducer() : nullptr);
        return stage.micro_step(model);
      }();
      const at::Tensor scaled = micro.loss / static_cast<double>(window);
      if (sync && m == window - 1) sync->prepare(scaled);  // only the last micro-batch talks to the other ranks
      scaled.backward();
      const at::Tensor micro_loss = micro.loss.detach().to(at::kFloat) / static_cast<double>(window);
      loss_sum = loss_sum.defined() ? loss_sum + micro_loss : micro_loss;
      for (auto& [k, v] : micro.log) {
        const at::Tensor value = v.detach().to(at::kFloat) / static_cast<double>(window);
        logged[k] = logged.count(k) ? logged[k] + value : value;
      }
      step_tokens += micro.tokens;
      if (control) {
        if (!micro.routing_counts.defined())
          throw InvalidArgument(cat(stage.name(), ": the stage reports no routing, so a router control (", to_string(control->kind()), ") has nothing to tick"));
        routing_counts = routing_counts.defined() ? routing_counts + micro.routing_counts.detach() : micro.routing_counts.detach();
      }
    }
    if (sync) {
      const GradientSyncTiming timing = sync->finish();
      all_reduce_ms.push_back(timing.all_reduce * 1e3);
      overlapped_ms.push_back(timing.overlapped * 1e3);
      window_comm.add(timing);
      summary.gradient_bytes = timing.bytes;
      // The loss, the tokens and the routing of the whole step: each rank's loss is its share of the global mean.
      const at::Tensor totals = group->sum(at::stack({loss_sum.to(at::kDouble).cpu(), at::full({}, static_cast<double>(step_tokens), at::kDouble)}),
                                           "the step's loss");
      loss_sum = totals[0].to(at::kFloat);
      step_tokens = static_cast<int64_t>(totals[1].item<double>());
      if (routing_counts.defined()) routing_counts = group->sum(routing_counts, "the step's expert counts");
    }
    tokens_since_log += step_tokens;
    tokens_total += step_tokens;
    const double grad_norm = o.grad_clip > 0 ? torch::nn::utils::clip_grad_norm_(params, o.grad_clip)
                                             : torch::nn::utils::clip_grad_norm_(params, 1e30);
    const double loss_value = loss_sum.item<double>();
    if (!std::isfinite(loss_value) || !std::isfinite(grad_norm)) {
      clear_gradients(params);
      ++summary.skipped_steps;
      if (writer) log::warn(cat("step ", step, ": non-finite ", std::isfinite(loss_value) ? "gradient" : "loss", "; update skipped"));
      if (++bad_in_row >= o.max_bad_steps)
        throw Error(cat("stopping: ", bad_in_row, " non-finite steps in a row (lower the learning rate, check the data)"));
    } else {
      bad_in_row = 0;
      optimizer->step();
      clear_gradients(params);
    }
    state.step = step;
    summary.last_loss = loss_value;
    if (control) {
      const nlohmann::json tick = control->tick(routing_counts);
      if (jsonl) jsonl->write_line(nlohmann::json{{"stage", stage.name()}, {"step", step}, {to_string(control->kind()), tick}}.dump());
    }

    if (step % o.log_every == 0 || step == total_steps || step == o.stop_at) {
      if (group) logged = sum_logged_values(*group, logged);
      const double seconds = log_clock.seconds();
      const double tokens_per_s = seconds > 0 ? static_cast<double>(tokens_since_log) / seconds : 0;
      const double eta = (clock.seconds() / static_cast<double>(step - first_step + 1)) * static_cast<double>(total_steps - step);
      nlohmann::json line = {{"stage", stage.name()}, {"step", step}, {"total_steps", total_steps}, {"loss", loss_value},
                             {"lr", lr}, {"grad_norm", grad_norm}, {"tokens_per_s", tokens_per_s}, {"skipped_steps", summary.skipped_steps}};
      if (group) {
        line["world_size"] = ranks;
        window_comm.write(line);
        window_comm = CommunicationWindow();
      }
      for (const auto& [k, device_value] : logged) {
        const at::Tensor v = device_value.to(at::kCPU);
        if (v.dim() == 0) {
          line[k] = v.item<double>();
        } else {  // per-layer rows, e.g. expert load [L, E]
          const at::Tensor rows = v.reshape({v.size(0), -1}).contiguous();
          nlohmann::json nested = nlohmann::json::array();
          for (int64_t r = 0; r < rows.size(0); ++r)
            nested.push_back(std::vector<float>(rows[r].data_ptr<float>(), rows[r].data_ptr<float>() + rows.size(1)));
          line[k] = nested;
        }
      }
      state.metrics = line;
      if (jsonl) jsonl->write_line(line.dump());
      const TrainingProgress progress{stage.name(), step, total_steps, loss_value, lr, tokens_per_s, eta};
      if (writer && o.on_progress) {
        o.on_progress(progress);
      } else if (writer) {
        log::info(describe(progress));
      }
      tokens_since_log = 0;
      log_clock.reset();
    }
    if (o.save_every > 0 && step % o.save_every == 0) {
      state.data = stage.data_state();
      state.router_control = control ? control->state() : nlohmann::json();
      if (group) gather_rank_states(*group, stage, state);
      if (writer) {
        const std::string where = save_checkpoint(o.out_dir, model, *optimizer, state, o.keep);
        if (o.on_checkpoint) {
          o.on_checkpoint(where);
        } else {
          log::info(cat("checkpoint ", where));
        }
      }
    }
  }
  if (jsonl) jsonl->close();
  summary.steps = state.step;
  summary.seconds = clock.seconds();
  summary.tokens_per_s = summary.seconds > 0 ? static_cast<double>(tokens_total) / summary.seconds : 0;
  summary.finished = state.step >= total_steps;
  summary.all_reduce_ms = median(all_reduce_ms);
  summary.all_reduce_overlapped_ms = median(overlapped_ms);
  if (summary.finished && writer) {
    model.eval();
    save_pretrained(model, o.out_dir);
    if (control) save_router_control(*control, o.out_dir);
    log::info(cat("saved the ", stage.name(), " model to ", o.out_dir));
  }
  // The job ends together: no rank leaves while rank 0 still writes (or a peer still needs the store).
  if (group) group->barrier("the end-of-run barrier");
  return summary;
}

}  // namespace chronos
