// chronos-train launch --nproc N STAGE ...: a data-parallel job of N local ranks (train/launcher.h).
#include <unistd.h>

#include <climits>
#include <iostream>
#include <memory>

#include "chronos-train/modes.h"
#include "chronos/core/error.h"
#include "chronos/train/launcher.h"
#include "common/flag_checks.h"

namespace chronos::train_cli {
namespace {

// This program, to start as each rank.
std::string own_executable() {
  char path[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", path, sizeof path - 1);
  if (n <= 0) throw IoError("cannot find this program's path (/proc/self/exe)");
  return std::string(path, static_cast<size_t>(n));
}

}  // namespace

tools::Subcommand add_launch_mode(CLI::App& app) {
  auto options = std::make_shared<LaunchOptions>();
  CLI::App* cmd = app.add_subcommand("launch",
                                     "Run a training stage data-parallel: N local ranks of `chronos-train STAGE ...` "
                                     "(torchrun's RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT; several nodes with --nnodes)");
  cmd->add_option("--nproc", options->nproc, "Ranks on this machine")->required()->check(tools::positive(1024));
  cmd->add_option("--nnodes", options->nnodes, "Machines in the job (run the same launch on each)")->capture_default_str()->check(tools::positive(1 << 16));
  cmd->add_option("--node-rank", options->node_rank, "This machine's index among --nnodes")->capture_default_str()->check(tools::non_negative(1 << 16));
  cmd->add_option("--master-addr", options->master_addr, "Host of rank 0 (default: MASTER_ADDR, else 127.0.0.1)");
  cmd->add_option("--master-port", options->master_port, "Rank 0's rendezvous port (default: MASTER_PORT, else a free port)")
      ->check(CLI::Range(1, 65535));
  cmd->add_option("--threads-per-rank", options->threads_per_rank, "CPU threads of each rank (0: OMP_NUM_THREADS, else cores / nproc)")
      ->capture_default_str()->check(tools::non_negative(4096));
  cmd->add_option("--grace", options->grace_s, "Seconds the other ranks get to report after one fails, before they are stopped")
      ->capture_default_str()->check(tools::non_negative(86400));
  cmd->prefix_command();  // everything from the stage name on is the ranks' command line
  cmd->footer("Example: chronos-train launch --nproc 2 pretrain --config configs/small.json --data corpus.jsonl --out runs/dp");
  return {cmd, [options, cmd] {
            const std::vector<std::string> rest = cmd->remaining();
            if (rest.empty()) throw InvalidArgument("launch: give the stage to run, e.g. `chronos-train launch --nproc 2 pretrain --data ...`");
            if (rest.front() == "launch") throw InvalidArgument("launch: the ranks' command cannot be another launch");
            options->command = {own_executable()};
            options->command.insert(options->command.end(), rest.begin(), rest.end());
            return launch_ranks(*options, [](const std::string& line) { std::cerr << "chronos-train launch: " << line << std::endl; });
          }};
}

}  // namespace chronos::train_cli
