// The ranks of a data-parallel job, on PyTorch's c10d: rendezvous through a TCPStore that rank 0
// hosts at MASTER_ADDR:MASTER_PORT, collectives on Gloo (CPU) or NCCL (CUDA builds that have it).
// The environment follows torchrun's conventions (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR,
// MASTER_PORT), so torchrun, a cluster scheduler or `chronos-train launch` can start the ranks.
//
// A rank that dies or hangs must not leave the others waiting forever: every collective has a
// timeout, every rank beats a heartbeat into the store and marks the step it is in, and a failed
// collective throws DistributedError with one line that names the rank at fault.
#pragma once

#include <ATen/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "chronos/core/error.h"
#include "chronos/train/global_batch.h"

namespace chronos {

class DistributedError : public Error {
 public:
  using Error::Error;
};

enum class DistBackend { automatic, gloo, nccl };
// "auto", "gloo" or "nccl"; throws ConfigError listing them.
DistBackend parse_dist_backend(const std::string& name);

// Where this process stands in the job, from the environment.
struct DistEnvironment {
  int64_t rank = 0, world_size = 1, local_rank = 0;
  std::string master_addr = "127.0.0.1";
  int port = 29500;
  bool distributed() const { return world_size > 1; }

  // RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT. WORLD_SIZE unset (or 1): one process.
  // Throws InvalidArgument naming the variable that is malformed or missing.
  static DistEnvironment from_environment();
};

// MASTER_PORT when set; InvalidArgument when it is not a port number in [1, 65535].
std::optional<int> master_port_from_environment();

struct ProcessGroupOptions {
  DistBackend backend = DistBackend::automatic;
  c10::Device device = c10::kCPU;  // where the tensors to reduce live (NCCL needs CUDA)
  double timeout_s = 300;          // rendezvous, and each collective
};

// A collective in flight (a gradient bucket's sum).
class PendingCollective {
 public:
  virtual ~PendingCollective() = default;
  // Blocks until done; throws DistributedError naming the rank at fault.
  virtual void wait() = 0;
  // Seconds on the steady clock (core/timing.h now_seconds) when it finished; 0 while running.
  virtual double finished_at() const = 0;
};

class DataParallelGroup {
 public:
  // Joins the job described by `env` (which must be distributed()). Throws DistributedError with one
  // line for a store that cannot be reached or served, ranks that do not all join within the timeout,
  // or a backend this build lacks.
  static std::unique_ptr<DataParallelGroup> connect(const DistEnvironment& env, const ProcessGroupOptions& options);
  ~DataParallelGroup();
  DataParallelGroup(const DataParallelGroup&) = delete;
  DataParallelGroup& operator=(const DataParallelGroup&) = delete;

  int64_t rank() const;
  int64_t world_size() const;
  const char* backend_name() const;  // "gloo" or "nccl"

  // Collectives: every rank calls the same ones in the same order. `what` names the operation in a
  // failure ("the gradient all-reduce").
  at::Tensor sum(const at::Tensor& local, const char* what = "a sum over the ranks");  // a summed copy
  int64_t max(int64_t local, const char* what = "a maximum over the ranks");
  void broadcast(std::vector<at::Tensor>& tensors, int64_t root, const char* what = "a broadcast");
  void barrier(const char* what = "a barrier");
  // Sums `tensor` in place in the background (the gradient buckets of a step, overlapping backward).
  std::unique_ptr<PendingCollective> start_sum(at::Tensor& tensor, const char* what = "the gradient all-reduce");
  // Every rank's bytes, in rank order, on `root` (the others get an empty list). Through the store:
  // for small things (data cursors, RNG states), not tensors.
  std::vector<std::string> gather(const std::string& bytes, int64_t root = 0, const char* what = "a gather");

  // The step this rank is in, for a peer that names a stuck rank.
  void mark_step(int64_t step);
  // sum() and max() for GlobalBatchScope (train/global_batch.h).
  const GlobalBatchReducer& global_batch_reducer() const;

  struct Impl;

 private:
  explicit DataParallelGroup(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace chronos
