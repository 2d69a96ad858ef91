// The training loop shared by every stage: AdamW with decay groups, warmup + cosine over optimizer
// steps, gradient accumulation (a trailing partial window is applied, scaled by its own size),
// gradient clipping, a guard against non-finite losses (skip and count; stop after N in a row),
// checkpoints every N steps with exact resume, progress reports through a callback and JSON lines for plots,
// and an optional router control (the Chronovisor, or aux-loss-free balancing) ticked every step.
// Data-parallel over c10d when given a DataParallelGroup (docs/training.md): each rank trains on its
// shard of the data, gradients are summed in buckets during backward (train/gradient_sync.h), and
// rank 0 alone writes logs, checkpoints and the final model.
#pragma once

#include <c10/core/ScalarType.h>

#include <cstdint>
#include <functional>
#include <string>

#include "chronos/routing/router_control.h"
#include "chronos/train/optimizer.h"
#include "chronos/train/stage.h"

namespace chronos {

class ChronosForCausalLMImpl;
class DataParallelGroup;

// One log step of a run, for a progress display.
struct TrainingProgress {
  std::string stage;
  int64_t step = 0, total_steps = 0;
  double loss = 0, lr = 0, tokens_per_s = 0;
  double eta_seconds = 0;  // at the pace so far
};
// "pretrain step 10/100  loss 2.3456  lr 5.00e-04  1234 tok/s  ETA 1m02s"
std::string describe(const TrainingProgress& progress);

struct TrainerOptions {
  std::string out_dir;            // final model directory; checkpoints go to out_dir/checkpoints
  int64_t steps = 0;              // optimizer steps of the whole run (the schedule's T); 0: from epochs
  int64_t epochs = 0;             // with steps == 0: passes over the data
  int64_t grad_accum = 1;         // micro-batches per optimizer step
  double grad_clip = 1.0;         // global gradient-norm clip (0: off)
  uint64_t seed = 42;
  int64_t save_every = 0;         // checkpoint every N optimizer steps (0: none)
  int64_t keep = 3;               // checkpoints kept
  int64_t stop_at = 0;            // > 0: end after this step as a crash would (schedule unchanged, no final save)
  int64_t log_every = 10;         // optimizer steps between log lines
  std::string log_jsonl;          // one JSON line per log step ("" = none)
  int64_t max_bad_steps = 8;      // non-finite steps in a row before the run stops
  std::string resume_checkpoint;  // continue from this checkpoint folder ("" = fresh)
  AdamWSettings adamw;            // adamw.lr is the peak learning rate
  c10::ScalarType autocast = c10::kBFloat16;  // CUDA matmul dtype under autocast (kFloat: off); no effect elsewhere
  // Steers the trained model's routers (routing/router_control.h): the Chronovisor or the
  // aux-loss-free balancer, ticked once per optimizer step with the step's routing (every
  // micro-batch of it), its ticks written to log_jsonl; kind none: off.
  RouterControlOptions router_control;
  // Called on every log step and after every checkpoint; unset: each is an info log line.
  std::function<void(const TrainingProgress&)> on_progress;
  std::function<void(const std::string& checkpoint_dir)> on_checkpoint;
  // Data-parallel training: the job's group (null: one process). Every rank calls run_training with
  // the same options; the stage's batch size is per rank. Rank 0 alone logs, calls on_progress and
  // on_checkpoint and writes files; every rank's data cursor and RNG state go into the checkpoints.
  DataParallelGroup* data_parallel = nullptr;
  int64_t bucket_bytes = int64_t{25} << 20;  // gradient all-reduce bucket size

  // Throws ConfigError naming the field ("trainer.grad_accum must be >= 1 (got 0)"): an empty
  // out_dir, neither steps nor epochs, negative counts, a non-finite or negative clip, a learning
  // rate that is not a finite positive number.
  void validate() const;
};

struct TrainingSummary {
  int64_t steps = 0;          // optimizer steps done in total
  int64_t skipped_steps = 0;  // non-finite steps skipped
  double last_loss = 0;
  double seconds = 0;
  double tokens_per_s = 0;     // over every rank
  bool finished = false;      // reached the planned steps (not stopped by --stop-at)
  // Data-parallel runs: median per step of the gradient all-reduce (first bucket start to last end),
  // its part overlapped with backward, and the gradient bytes summed per step.
  double all_reduce_ms = 0, all_reduce_overlapped_ms = 0;
  int64_t gradient_bytes = 0;
};

// Trains `model` with `stage` (the model's weights must already be the starting point: a fresh
// model, a --from directory, or the checkpoint being resumed). Saves the final model directory to
// options.out_dir when the planned steps are done.
TrainingSummary run_training(ChronosForCausalLMImpl& model, TrainingStage& stage, const TrainerOptions& options);

}  // namespace chronos
