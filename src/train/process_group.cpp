#include "chronos/train/process_group.h"

#include <ATen/ATen.h>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef USE_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <dlfcn.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <thread>

#include "chronos/core/log.h"
#include "chronos/core/timing.h"

namespace chronos {
namespace {

using std::chrono::milliseconds;

constexpr const char* kJoined = "chronos/joined";
constexpr double kHeartbeatSeconds = 1.0;
// A peer whose heartbeat does not move in this long is taken for dead or frozen.
constexpr double kSilenceSeconds = 3.0;

std::string first_line(const std::string& text) {
  const auto end = text.find('\n');
  return end == std::string::npos ? text : text.substr(0, end);
}

std::string error_text(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const c10::Error& e) {
    return first_line(e.what_without_backtrace());
  } catch (const std::exception& e) {
    return first_line(e.what());
  } catch (...) {
    return "unknown error";
  }
}

std::optional<int64_t> env_integer(const char* name) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return std::nullopt;
  char* end = nullptr;
  errno = 0;
  const long long value = std::strtoll(text, &end, 10);
  if (*end != '\0' || errno != 0) throw InvalidArgument(cat(name, " must be an integer (got '", text, "')"));
  return value;
}

std::vector<uint8_t> bytes_of(const std::string& text) { return {text.begin(), text.end()}; }
std::string text_of(const std::vector<uint8_t>& bytes) { return {bytes.begin(), bytes.end()}; }

milliseconds to_ms(double seconds) { return milliseconds(static_cast<int64_t>(seconds * 1000.0)); }

bool loopback(const std::string& host) { return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1"; }

// c10d logs its connection retries and timeouts through glog (Debian's LibTorch): lines our own
// error already says in one. Quiet unless the user asked for them with GLOG_minloglevel.
void quiet_c10d_logging() {
  if (std::getenv("GLOG_minloglevel") != nullptr) return;
  if (auto* level = static_cast<int32_t*>(::dlsym(RTLD_DEFAULT, "_ZN3fLI17FLAGS_minloglevelE"))) *level = 3;
}

std::shared_ptr<::gloo::transport::Device> gloo_device(const std::string& master_addr) {
  if (const char* interface = std::getenv("GLOO_SOCKET_IFNAME"); interface != nullptr && *interface != '\0')
    return c10d::ProcessGroupGloo::createDeviceForInterface(interface);
  // A job on one machine talks over loopback, whatever the host name resolves to.
  if (loopback(master_addr)) return c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1");
  return c10d::ProcessGroupGloo::createDefaultDevice();
}

// The collectives the group uses, over whichever class the process group is: LibTorch 1.13's
// ProcessGroupGloo derives from c10d::ProcessGroup, 2.x's Gloo and NCCL groups from c10d::Backend.
class Collectives {
 public:
  virtual ~Collectives() = default;
  virtual c10::intrusive_ptr<c10d::Work> allreduce(std::vector<at::Tensor>& tensors, const c10d::AllreduceOptions& options) = 0;
  virtual c10::intrusive_ptr<c10d::Work> broadcast(std::vector<at::Tensor>& tensors, const c10d::BroadcastOptions& options) = 0;
  virtual c10::intrusive_ptr<c10d::Work> barrier() = 0;
  // Leaves the group behind at exit (see ~DataParallelGroup).
  virtual void abandon() = 0;
};

template <typename Group>
class CollectivesOf final : public Collectives {
 public:
  explicit CollectivesOf(c10::intrusive_ptr<Group> group) : group_(std::move(group)) {}
  c10::intrusive_ptr<c10d::Work> allreduce(std::vector<at::Tensor>& tensors, const c10d::AllreduceOptions& options) override {
    return group_->allreduce(tensors, options);
  }
  c10::intrusive_ptr<c10d::Work> broadcast(std::vector<at::Tensor>& tensors, const c10d::BroadcastOptions& options) override {
    return group_->broadcast(tensors, options);
  }
  c10::intrusive_ptr<c10d::Work> barrier() override { return group_->barrier(); }
  void abandon() override { group_.release(); }

 private:
  c10::intrusive_ptr<Group> group_;
};

}  // namespace

DistBackend parse_dist_backend(const std::string& name) {
  if (name == "auto") return DistBackend::automatic;
  if (name == "gloo") return DistBackend::gloo;
  if (name == "nccl") return DistBackend::nccl;
  throw ConfigError(cat("dist backend must be auto, gloo or nccl (got '", name, "')"));
}

DistEnvironment DistEnvironment::from_environment() {
  DistEnvironment env;
  const std::optional<int64_t> world = env_integer("WORLD_SIZE");
  if (!world || *world == 1) return env;
  if (*world < 1) throw InvalidArgument(cat("WORLD_SIZE must be >= 1 (got ", *world, ")"));
  env.world_size = *world;
  const std::optional<int64_t> rank = env_integer("RANK");
  if (!rank) throw InvalidArgument(cat("WORLD_SIZE is ", env.world_size, " but RANK is not set (torchrun's conventions: RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT)"));
  if (*rank < 0 || *rank >= env.world_size) throw InvalidArgument(cat("RANK must be in [0, ", env.world_size, ") (got ", *rank, ")"));
  env.rank = *rank;
  env.local_rank = env_integer("LOCAL_RANK").value_or(env.rank);
  if (env.local_rank < 0) throw InvalidArgument(cat("LOCAL_RANK must be >= 0 (got ", env.local_rank, ")"));
  if (const char* addr = std::getenv("MASTER_ADDR"); addr != nullptr && *addr != '\0') {
    env.master_addr = addr;
  } else {
    throw InvalidArgument("MASTER_ADDR is not set (the host of rank 0, which serves the rendezvous store)");
  }
  const std::optional<int> port = master_port_from_environment();
  if (!port) throw InvalidArgument("MASTER_PORT is not set (rank 0's rendezvous port)");
  env.port = *port;
  return env;
}

std::optional<int> master_port_from_environment() {
  const char* text = std::getenv("MASTER_PORT");
  if (text == nullptr || *text == '\0') return std::nullopt;
  char* end = nullptr;
  const long port = std::strtol(text, &end, 10);
  if (*end != '\0' || port < 1 || port > 65535) throw InvalidArgument(cat("MASTER_PORT must be a port number in [1, 65535] (got '", text, "')"));
  return static_cast<int>(port);
}

struct DataParallelGroup::Impl {
  DistEnvironment env;
  ProcessGroupOptions options;
  const char* backend = "gloo";
  c10::intrusive_ptr<c10d::TCPStore> store;
  std::unique_ptr<Collectives> group;
  GlobalBatchReducer reducer;
  int64_t gathers = 0;
  std::atomic<int64_t> step{0};
  std::atomic<bool> broken{false};
  // Heartbeat.
  std::thread heartbeat;
  std::mutex mutex;
  std::condition_variable wake;
  bool stopping = false;

  std::string where() const { return cat(env.master_addr, ":", env.port); }
  std::string alive_key(int64_t rank) const { return cat("chronos/alive/", rank); }
  std::string step_key(int64_t rank) const { return cat("chronos/step/", rank); }

  void beat() {
    std::unique_lock<std::mutex> lock(mutex);
    while (!stopping) {
      lock.unlock();
      try {
        store->add(alive_key(env.rank), 1);
      } catch (const std::exception&) {
        // Rank 0 (the store) is gone; the next collective reports it.
      }
      lock.lock();
      wake.wait_for(lock, std::chrono::duration<double>(kHeartbeatSeconds), [&] { return stopping; });
    }
  }

  // Which rank made `what` fail: a peer whose heartbeat stopped, else one that is behind this rank's
  // step, else the store's host; "" when the store cannot tell.
  std::string culprit() {
    try {
      store->setTimeout(to_ms(kSilenceSeconds + 2));
      std::vector<int64_t> before(static_cast<size_t>(env.world_size));
      for (int64_t r = 0; r < env.world_size; ++r)
        if (r != env.rank) before[static_cast<size_t>(r)] = store->add(alive_key(r), 0);
      std::this_thread::sleep_for(std::chrono::duration<double>(kSilenceSeconds));
      for (int64_t r = 0; r < env.world_size; ++r)
        if (r != env.rank && store->add(alive_key(r), 0) == before[static_cast<size_t>(r)])
          return cat("rank ", r, " stopped (no heartbeat for ", kSilenceSeconds, " s: it died or is frozen)");
      for (int64_t r = 0; r < env.world_size; ++r) {
        if (r == env.rank || !store->check({step_key(r)})) continue;
        const int64_t peer = std::stoll(text_of(store->get(step_key(r))));
        if (peer < step) return cat("rank ", r, " is alive but stuck in step ", peer, " (this rank is in step ", step.load(), ")");
      }
    } catch (const std::exception&) {
      if (env.rank != 0) return cat("rank 0 is gone (the rendezvous store it serves at ", where(), " does not answer)");
    }
    return "";
  }

  [[noreturn]] void fail(const char* what, const std::exception_ptr& error) {
    broken = true;
    const std::string cause = culprit();
    throw DistributedError(cat("rank ", env.rank, ": ", what, " failed in step ", step.load(), ": ",
                               cause.empty() ? error_text(error) : cat(cause, " [", error_text(error), "]")));
  }

  void wait(const c10::intrusive_ptr<c10d::Work>& work, const char* what) {
    try {
      work->wait();
    } catch (...) {
      fail(what, std::current_exception());
    }
  }

  at::Tensor sum(const at::Tensor& local, const char* what) {
    std::vector<at::Tensor> tensors{local.detach().clone()};
    wait(group->allreduce(tensors, c10d::AllreduceOptions()), what);
    return tensors[0];
  }

  int64_t max(int64_t local, const char* what) {
    std::vector<at::Tensor> tensors{at::full({1}, local, at::kLong).to(options.device)};
    c10d::AllreduceOptions maximum;
    maximum.reduceOp = c10d::ReduceOp::MAX;
    wait(group->allreduce(tensors, maximum), what);
    return tensors[0].item<int64_t>();
  }
};

namespace {

class PendingWork final : public PendingCollective {
 public:
  PendingWork(DataParallelGroup::Impl& group, c10::intrusive_ptr<c10d::Work> work, const char* what)
      : group_(group), work_(std::move(work)), what_(what) {
    auto done = done_;
    work_->getFuture()->addCallback([done](c10::ivalue::Future&) { done->store(steady_seconds()); });
  }
  void wait() override { group_.wait(work_, what_); }
  double finished_at() const override { return done_->load(); }

 private:
  DataParallelGroup::Impl& group_;
  c10::intrusive_ptr<c10d::Work> work_;
  const char* what_;
  std::shared_ptr<std::atomic<double>> done_ = std::make_shared<std::atomic<double>>(0.0);
};

}  // namespace

std::unique_ptr<DataParallelGroup> DataParallelGroup::connect(const DistEnvironment& env, const ProcessGroupOptions& options) {
  if (!env.distributed()) throw InvalidArgument("DataParallelGroup::connect: the environment describes a single process");
  if (!(options.timeout_s > 0)) throw ConfigError(cat("dist timeout must be > 0 seconds (got ", options.timeout_s, ")"));
  quiet_c10d_logging();
  auto impl = std::make_unique<Impl>();
  impl->env = env;
  impl->options = options;
  const milliseconds timeout = to_ms(options.timeout_s);

  c10d::TCPStoreOptions store_options;
  store_options.port = static_cast<std::uint16_t>(env.port);
  store_options.isServer = env.rank == 0;
  store_options.numWorkers = static_cast<size_t>(env.world_size);
  store_options.waitWorkers = false;
  store_options.timeout = timeout;
  try {
    impl->store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, store_options);
  } catch (...) {
    const std::string why = error_text(std::current_exception());
    throw DistributedError(env.rank == 0 ? cat("rank 0 cannot serve the rendezvous store on ", impl->where(), ": ", why,
                                               " (is the port taken by another job?)")
                                         : cat("rank ", env.rank, " cannot reach the rendezvous store at ", impl->where(), " within ",
                                               options.timeout_s, " s: ", why, " (is rank 0 running, and MASTER_ADDR/MASTER_PORT right?)"));
  }
  // Every rank joins before any collective, so a missing rank is reported as such.
  impl->store->add(impl->alive_key(env.rank), 1);
  impl->store->add(kJoined, 1);
  Stopwatch waited;
  for (int64_t joined = 0; (joined = impl->store->add(kJoined, 0)) < env.world_size;) {
    if (waited.seconds() > options.timeout_s)
      throw DistributedError(cat("rank ", env.rank, ": only ", joined, " of ", env.world_size, " ranks joined ", impl->where(), " within ",
                                 options.timeout_s, " s"));
    std::this_thread::sleep_for(milliseconds(20));
  }

  const bool want_nccl = options.backend == DistBackend::nccl || (options.backend == DistBackend::automatic && options.device.is_cuda());
  try {
    if (want_nccl) {
#ifdef USE_C10D_NCCL
      auto nccl = c10d::ProcessGroupNCCL::Options::create();
      nccl->timeout = timeout;
      impl->group = std::make_unique<CollectivesOf<c10d::ProcessGroupNCCL>>(
          c10::make_intrusive<c10d::ProcessGroupNCCL>(impl->store, env.rank, env.world_size, nccl));
      impl->backend = "nccl";
#else
      if (options.backend == DistBackend::nccl)
        throw DistributedError("--dist-backend nccl: this LibTorch was built without NCCL (a CPU build); use gloo");
#endif
    }
    if (!impl->group) {
      auto gloo = c10d::ProcessGroupGloo::Options::create(timeout);
      gloo->devices.push_back(gloo_device(env.master_addr));
      impl->group = std::make_unique<CollectivesOf<c10d::ProcessGroupGloo>>(
          c10::make_intrusive<c10d::ProcessGroupGloo>(impl->store, env.rank, env.world_size, gloo));
    }
  } catch (const DistributedError&) {
    throw;
  } catch (...) {
    throw DistributedError(cat("rank ", env.rank, ": cannot connect the ", impl->backend, " process group: ", error_text(std::current_exception())));
  }
  Impl* raw = impl.get();
  impl->heartbeat = std::thread([raw] { raw->beat(); });
  impl->reducer.sum = [raw](const at::Tensor& local) { return raw->sum(local, "a count over the global batch"); };
  impl->reducer.max = [raw](int64_t local) { return raw->max(local, "the longest sequence over the ranks"); };
  return std::unique_ptr<DataParallelGroup>(new DataParallelGroup(std::move(impl)));
}

DataParallelGroup::DataParallelGroup(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

DataParallelGroup::~DataParallelGroup() {
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    impl_->stopping = true;
  }
  impl_->wake.notify_all();
  if (impl_->heartbeat.joinable()) impl_->heartbeat.join();
  if (impl_->broken) {
    // After a failed collective the process group may still wait on a dead peer in its destructor:
    // the process is ending with an error anyway, so it is left behind rather than waited for.
    impl_->group->abandon();
    impl_->store.release();
  }
}

int64_t DataParallelGroup::rank() const { return impl_->env.rank; }
int64_t DataParallelGroup::world_size() const { return impl_->env.world_size; }
const char* DataParallelGroup::backend_name() const { return impl_->backend; }

at::Tensor DataParallelGroup::sum(const at::Tensor& local, const char* what) { return impl_->sum(local, what); }

int64_t DataParallelGroup::max(int64_t local, const char* what) { return impl_->max(local, what); }

void DataParallelGroup::broadcast(std::vector<at::Tensor>& tensors, int64_t root, const char* what) {
  c10d::BroadcastOptions options;
  options.rootRank = root;
  for (at::Tensor& t : tensors) {  // one call per tensor: Gloo broadcasts a list only of equal shapes
    std::vector<at::Tensor> one{t};
    impl_->wait(impl_->group->broadcast(one, options), what);
  }
}

void DataParallelGroup::barrier(const char* what) { impl_->wait(impl_->group->barrier(), what); }

std::unique_ptr<PendingCollective> DataParallelGroup::start_sum(at::Tensor& tensor, const char* what) {
  std::vector<at::Tensor> tensors{tensor};
  return std::make_unique<PendingWork>(*impl_, impl_->group->allreduce(tensors, c10d::AllreduceOptions()), what);
}

std::vector<std::string> DataParallelGroup::gather(const std::string& bytes, int64_t root, const char* what) {
  const std::string prefix = cat("chronos/gather/", impl_->gathers++, "/");
  std::vector<std::string> out;
  try {
    if (impl_->env.rank != root) {
      impl_->store->set(cat(prefix, impl_->env.rank), bytes_of(bytes));
      return out;
    }
    for (int64_t r = 0; r < impl_->env.world_size; ++r) {
      if (r == root) {
        out.push_back(bytes);
        continue;
      }
      out.push_back(text_of(impl_->store->get(cat(prefix, r))));  // waits for the rank, up to the timeout
      impl_->store->deleteKey(cat(prefix, r));
    }
  } catch (...) {
    impl_->fail(what, std::current_exception());
  }
  return out;
}

void DataParallelGroup::mark_step(int64_t step) {
  impl_->step = step;
  try {
    impl_->store->set(impl_->step_key(impl_->env.rank), bytes_of(std::to_string(step)));
  } catch (...) {
    impl_->fail("marking the step in the store", std::current_exception());
  }
}

const GlobalBatchReducer& DataParallelGroup::global_batch_reducer() const { return impl_->reducer; }

}  // namespace chronos
