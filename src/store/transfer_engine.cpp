#include "chronos/store/transfer_engine.h"

#include <ATen/ATen.h>
#include <sys/mman.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>

#include "chronos/core/error.h"

namespace chronos {
namespace {

template <typename Src, typename Dst>
void convert_loop(const void* src, void* dst, int64_t n) {
  const Src* s = static_cast<const Src*>(src);
  Dst* d = static_cast<Dst*>(dst);
  for (int64_t i = 0; i < n; ++i) d[i] = static_cast<Dst>(static_cast<float>(s[i]));
}

template <typename Src>
void convert_from(const void* src, void* dst, c10::ScalarType dst_dtype, int64_t n) {
  switch (dst_dtype) {
    case c10::kFloat: return convert_loop<Src, float>(src, dst, n);
    case c10::kHalf: return convert_loop<Src, c10::Half>(src, dst, n);
    case c10::kBFloat16: return convert_loop<Src, c10::BFloat16>(src, dst, n);
    default: throw InvalidArgument(cat("transfer: cannot convert to ", c10::toString(dst_dtype)));
  }
}

// Copies on one background thread, in submission order.
class CpuTransferEngine final : public TransferEngine {
 public:
  explicit CpuTransferEngine(TransferThrottle throttle) : throttle_(throttle), thread_([this] { loop(); }) {}
  ~CpuTransferEngine() override { shutdown(); }

  c10::Device device() const override { return c10::kCPU; }
  std::string name() const override { return "cpu"; }

  HostMemory allocate_host(size_t bytes) override {
    const size_t rounded = (bytes + 4095) / 4096 * 4096;
    void* data = rounded == 0 ? nullptr : std::aligned_alloc(4096, rounded);
    if (rounded != 0 && data == nullptr) throw Error(cat("cannot allocate ", rounded, " bytes of host slot memory"));
    // Touch every page now (as pinning does on CUDA): the budget is committed at open, and SSD
    // reads into the slots do not pay first-touch page faults (they cost ~30% of O_DIRECT
    // throughput). Huge pages, where the kernel offers them, cut the faults further.
    if (rounded >= (2u << 20)) ::madvise(data, rounded, MADV_HUGEPAGE);
    std::memset(data, 0, rounded);
    return HostMemory(data, [](void* p) { std::free(p); });
  }

  at::Tensor allocate_compute(int64_t count, int64_t elements, c10::ScalarType dtype) override {
    return at::empty({count, elements}, at::TensorOptions().dtype(dtype).device(c10::kCPU));
  }

  ReadyEventPtr copy(CopyJob job) override {
    auto event = std::make_shared<HostReadyEvent>();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!stopped_) {
        queue_.push_back({std::move(job), event});
        cv_.notify_one();
        return event;
      }
    }
    // After shutdown nothing runs; the caller still gets its callback, from this thread only as a
    // last resort (the store never copies after shutting the engine down).
    if (job.on_done) job.on_done("transfer engine is shut down");
    event->set_failed("transfer engine is shut down");
    return event;
  }

  ReadyEventPtr record_use() override { return HostReadyEvent::make_done(); }

  void shutdown() override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopped_) return;
      stopped_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  struct Pending {
    CopyJob job;
    HostReadyEventPtr event;
  };

  void run(Pending& p) {
    std::string error;
    const auto start = std::chrono::steady_clock::now();
    try {
      if (p.job.after) p.job.after->wait();
      if (p.job.src_dtype == p.job.dst_dtype)
        std::memcpy(p.job.dst, p.job.src, static_cast<size_t>(p.job.elements) * c10::elementSize(p.job.src_dtype));
      else
        convert_elements(p.job.src, p.job.src_dtype, p.job.dst, p.job.dst_dtype, p.job.elements);
    } catch (const std::exception& e) {
      error = e.what();
    }
    if (throttle_.latency_ms > 0 || throttle_.gbps > 0) {
      double seconds = throttle_.latency_ms / 1e3;
      if (throttle_.gbps > 0)
        seconds += static_cast<double>(p.job.elements) * static_cast<double>(c10::elementSize(p.job.src_dtype)) / (throttle_.gbps * 1e9);
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait_until(lock, start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(seconds)),
                     [&] { return stopped_; });
    }
    if (p.job.on_done) p.job.on_done(error);
    if (error.empty()) p.event->set_done();
    else p.event->set_failed(error);
  }

  void loop() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (true) {
      cv_.wait(lock, [&] { return stopped_ || !queue_.empty(); });
      if (stopped_) break;
      Pending p = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      run(p);
      lock.lock();
    }
    // Shut down: fail what is still queued so no waiter hangs.
    std::deque<Pending> left;
    left.swap(queue_);
    lock.unlock();
    for (Pending& p : left) {
      if (p.job.on_done) p.job.on_done("transfer engine is shut down");
      p.event->set_failed("transfer engine is shut down");
    }
  }

  TransferThrottle throttle_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Pending> queue_;
  bool stopped_ = false;
  std::thread thread_;  // last: starts after the other members exist
};

}  // namespace

void convert_elements(const void* src, c10::ScalarType src_dtype, void* dst, c10::ScalarType dst_dtype, int64_t elements) {
  switch (src_dtype) {
    case c10::kFloat: return convert_from<float>(src, dst, dst_dtype, elements);
    case c10::kHalf: return convert_from<c10::Half>(src, dst, dst_dtype, elements);
    case c10::kBFloat16: return convert_from<c10::BFloat16>(src, dst, dst_dtype, elements);
    default: throw InvalidArgument(cat("transfer: cannot convert from ", c10::toString(src_dtype)));
  }
}

std::unique_ptr<TransferEngine> make_transfer_engine(const c10::Device& device, TransferThrottle throttle) {
  if (device.is_cpu()) return std::make_unique<CpuTransferEngine>(throttle);
  if (device.is_cuda())
    throw InvalidArgument(cat("expert store: no transfer engine for ", device.str(),
                              " yet (the CUDA engine comes with the GPU issue); use the CPU as the compute device"));
  throw InvalidArgument(cat("expert store: no transfer engine for device ", device.str()));
}

}  // namespace chronos
