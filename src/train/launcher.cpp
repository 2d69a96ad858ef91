#include "chronos/train/launcher.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <thread>

#include "chronos/core/error.h"
#include "chronos/core/timing.h"
#include "chronos/train/process_group.h"

extern char** environ;

namespace chronos {
namespace {

std::atomic<int> forwarded_signal{0};

void remember_signal(int signal) { forwarded_signal = signal; }

// The environment of one rank: ours, with the job's variables replaced.
std::vector<std::string> rank_environment(const std::map<std::string, std::string>& overrides) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry = *e;
    const std::string name = entry.substr(0, entry.find('='));
    if (!overrides.count(name)) env.push_back(entry);
  }
  for (const auto& [name, value] : overrides) env.push_back(name + "=" + value);
  return env;
}

std::string how_it_ended(int status) {
  if (WIFEXITED(status)) return cat("exited with status ", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return cat("was killed by signal ", WTERMSIG(status), " (", ::strsignal(WTERMSIG(status)), ")");
  return "ended";
}

int exit_code(int status) { return WIFEXITED(status) ? WEXITSTATUS(status) : WIFSIGNALED(status) ? 128 + WTERMSIG(status) : 1; }

}  // namespace

void LaunchOptions::validate() const {
  const auto rule = [](bool ok, const char* field, const std::string& text) {
    if (!ok) throw ConfigError(cat("launch.", field, " ", text));
  };
  rule(nproc >= 1 && nproc <= 1024, "nproc", cat("must be in [1, 1024] (got ", nproc, ")"));
  rule(nnodes >= 1, "nnodes", cat("must be >= 1 (got ", nnodes, ")"));
  rule(node_rank >= 0 && node_rank < nnodes, "node_rank", cat("must be in [0, ", nnodes, ") (got ", node_rank, ")"));
  rule(nnodes == 1 || !master_addr.empty() || std::getenv("MASTER_ADDR") != nullptr, "master_addr",
       "must name rank 0's node when there are several nodes (--master-addr or MASTER_ADDR)");
  rule(master_port >= 0 && master_port <= 65535, "master_port", cat("must be a port number (got ", master_port, ")"));
  rule(threads_per_rank >= 0, "threads_per_rank", cat("must be >= 0 (got ", threads_per_rank, ")"));
  rule(grace_s >= 0, "grace_s", cat("must be >= 0 (got ", grace_s, ")"));
  rule(!command.empty(), "command", "must name the program each rank runs");
}

LaunchOptions LaunchOptions::resolved() const {
  LaunchOptions out = *this;
  if (const char* addr = std::getenv("MASTER_ADDR"); out.master_addr.empty() && addr != nullptr) out.master_addr = addr;
  if (out.master_addr.empty()) out.master_addr = "127.0.0.1";
  if (out.master_port == 0) out.master_port = master_port_from_environment().value_or(0);
  if (out.master_port == 0) out.master_port = nnodes == 1 ? free_local_port() : 29500;
  return out;
}

int free_local_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw IoError(cat("socket: ", std::strerror(errno)));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof address;
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0;
  const int error = errno;
  ::close(fd);
  if (!ok) throw IoError(cat("cannot find a free port on 127.0.0.1: ", std::strerror(error)));
  return ntohs(address.sin_port);
}

int launch_ranks(const LaunchOptions& options, const std::function<void(const std::string&)>& report) {
  options.validate();
  const LaunchOptions o = options.resolved();
  const int64_t world = o.nproc * o.nnodes;
  const std::string& master = o.master_addr;
  const int port = o.master_port;
  int64_t threads = o.threads_per_rank;
  if (threads == 0 && std::getenv("OMP_NUM_THREADS") == nullptr) {
    const auto cores = static_cast<int64_t>(std::thread::hardware_concurrency());
    threads = std::max<int64_t>(1, cores / o.nproc);
  }

  struct sigaction forward{};
  forward.sa_handler = remember_signal;
  sigemptyset(&forward.sa_mask);
  struct sigaction old_int{}, old_term{};
  ::sigaction(SIGINT, &forward, &old_int);
  ::sigaction(SIGTERM, &forward, &old_term);

  std::map<pid_t, int64_t> running;  // pid -> rank
  const auto signal_all = [&](int signal) {
    for (const auto& [pid, rank] : running) ::kill(pid, signal);
  };
  for (int64_t local = 0; local < o.nproc; ++local) {
    const int64_t rank = o.node_rank * o.nproc + local;
    std::map<std::string, std::string> vars = {{"RANK", std::to_string(rank)},         {"LOCAL_RANK", std::to_string(local)},
                                               {"WORLD_SIZE", std::to_string(world)},  {"LOCAL_WORLD_SIZE", std::to_string(o.nproc)},
                                               {"MASTER_ADDR", master},                {"MASTER_PORT", std::to_string(port)}};
    if (threads > 0) vars["OMP_NUM_THREADS"] = std::to_string(threads);
    if (std::getenv("GLOG_minloglevel") == nullptr) vars["GLOG_minloglevel"] = "3";
    const std::vector<std::string> env = rank_environment(vars);
    std::vector<char*> envp, argv;
    for (const std::string& e : env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
    for (const std::string& a : o.command) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    pid_t pid = 0;
    const int spawned = ::posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), envp.data());
    if (spawned != 0) {
      signal_all(SIGTERM);
      throw IoError(cat(o.command[0], ": cannot start rank ", rank, " (", std::strerror(spawned), ")"));
    }
    running[pid] = rank;
  }

  int result = 0;
  double stop_at = 0;  // steady seconds after which the survivors are stopped; 0: not stopping
  bool terminated = false;
  while (!running.empty()) {
    if (const int signal = forwarded_signal.exchange(0); signal != 0) {
      report(cat("passing signal ", signal, " (", ::strsignal(signal), ") to the ranks"));
      signal_all(signal);
    }
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid > 0 && running.count(pid)) {
      const int64_t rank = running[pid];
      running.erase(pid);
      const bool failed = !WIFEXITED(status) || WEXITSTATUS(status) != 0;
      if (failed && result == 0) {
        result = exit_code(status);
        report(cat("rank ", rank, " ", how_it_ended(status), running.empty() ? "" : cat("; the other ranks get ", o.grace_s, " s to finish")));
        stop_at = steady_seconds() + o.grace_s;
      }
      continue;
    }
    if (pid < 0 && errno == ECHILD) break;
    if (stop_at > 0 && steady_seconds() > stop_at) {
      // A rank still running after the grace period: ask, then make it stop (a frozen one only dies by SIGKILL).
      if (!terminated) {
        std::string ranks;
        for (const auto& [p, r] : running) ranks += cat(ranks.empty() ? "" : ", ", r);
        report(cat("stopping rank", running.size() == 1 ? " " : "s ", ranks));
        signal_all(SIGTERM);
        terminated = true;
        stop_at = steady_seconds() + 5;
      } else {
        signal_all(SIGKILL);
        stop_at = steady_seconds() + 3600;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::sigaction(SIGINT, &old_int, nullptr);
  ::sigaction(SIGTERM, &old_term, nullptr);
  return result;
}

}  // namespace chronos
