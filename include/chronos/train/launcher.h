// Starts the ranks of a data-parallel job on this machine, as torchrun does: each rank is the same
// command with RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT set (and OMP_NUM_THREADS, so
// the ranks share the cores instead of each taking all of them; GLOG_minloglevel=3, so c10d's own log
// lines do not repeat what the ranks report). With nnodes > 1 the same launch runs on every node,
// each with its node_rank and rank 0's node as MASTER_ADDR.
//
// The launcher watches its ranks: when one fails or is killed, it says which, gives the others a
// grace period to report what they saw, then stops them. SIGINT and SIGTERM are passed to every rank.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace chronos {

struct LaunchOptions {
  int64_t nproc = 1;                 // ranks on this node
  int64_t nnodes = 1, node_rank = 0;
  std::string master_addr;           // "": MASTER_ADDR, else 127.0.0.1 (one node only)
  int master_port = 0;               // 0: MASTER_PORT, else a free port (one node) or 29500 (several)
  int64_t threads_per_rank = 0;      // 0: OMP_NUM_THREADS when set, else this node's cores / nproc (at least 1)
  double grace_s = 30;               // after a rank fails, how long the others get before they are stopped
  std::vector<std::string> command;  // the rank's program and arguments

  // Throws ConfigError naming the field.
  void validate() const;
  // master_addr and master_port as the launch uses them, from MASTER_ADDR and MASTER_PORT where unset;
  // throws InvalidArgument for a MASTER_PORT that is not a port number.
  LaunchOptions resolved() const;
};

// Runs the ranks and waits for all of them. Returns 0 when every rank succeeded, else the exit code
// of the first rank that failed (128 + N for signal N). `report` gets one line per event worth
// saying (a rank that failed, ranks being stopped).
int launch_ranks(const LaunchOptions& options, const std::function<void(const std::string&)>& report);

// A TCP port on 127.0.0.1 that nothing listens on right now.
int free_local_port();

}  // namespace chronos
