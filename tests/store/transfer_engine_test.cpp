#include "chronos/store/transfer_engine.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "chronos/core/error.h"

namespace chronos {
namespace {

TEST(HostReadyEvent, CompletesOnceAndWakesWaiters) {
  auto event = std::make_shared<HostReadyEvent>();
  EXPECT_EQ(event->status(), ReadyEvent::Status::pending);
  EXPECT_EQ(event->wait_for(0.01), ReadyEvent::Status::pending);
  std::thread waiter([&] { EXPECT_EQ(event->wait(), ReadyEvent::Status::failed); });
  std::this_thread::sleep_for(std::chrono::milliseconds(10));
  event->set_failed("disk on fire");
  event->set_done();  // ignored: already complete
  waiter.join();
  EXPECT_EQ(event->status(), ReadyEvent::Status::failed);
  EXPECT_EQ(event->error(), "disk on fire");
  EXPECT_TRUE(HostReadyEvent::make_done()->ready());
}

TEST(TransferEngine, ConvertsBetweenFloatFormats) {
  const at::Tensor values = at::randn({257});
  for (auto src : {at::kFloat, at::kHalf, at::kBFloat16}) {
    for (auto dst : {at::kFloat, at::kHalf, at::kBFloat16}) {
      const at::Tensor in = values.to(src);
      at::Tensor out = at::empty({257}, at::TensorOptions().dtype(dst));
      convert_elements(in.data_ptr(), src, out.data_ptr(), dst, 257);
      EXPECT_TRUE(at::equal(out, in.to(dst))) << c10::toString(src) << " -> " << c10::toString(dst);
    }
  }
  int32_t x = 0;
  EXPECT_THROW(convert_elements(&x, at::kInt, &x, at::kFloat, 1), InvalidArgument);
}

TEST(TransferEngine, CpuEngineCopiesOnItsThreadAfterTheLastUse) {
  auto engine = make_transfer_engine(c10::kCPU);
  EXPECT_EQ(engine->name(), "cpu");
  EXPECT_TRUE(engine->device().is_cpu());
  at::Tensor slots = engine->allocate_compute(2, 64, at::kFloat);
  EXPECT_EQ(slots.sizes(), (c10::IntArrayRef{2, 64}));
  HostMemory host = engine->allocate_host(4096);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(host.get()) % 4096, 0u);
  const at::Tensor src = at::randn({64}).to(at::kHalf);
  std::memcpy(host.get(), src.data_ptr(), 64 * 2);

  auto last_use = std::make_shared<HostReadyEvent>();
  std::atomic<bool> called{false};
  CopyJob job;
  job.src = host.get();
  job.src_dtype = at::kHalf;
  job.dst = slots[1].data_ptr();
  job.dst_dtype = at::kFloat;
  job.elements = 64;
  job.after = last_use;
  job.on_done = [&](const std::string& error) {
    EXPECT_TRUE(error.empty());
    called = true;
  };
  const ReadyEventPtr done = engine->copy(job);
  EXPECT_EQ(done->wait_for(0.05), ReadyEvent::Status::pending);  // waits for the slot's last use
  last_use->set_done();
  EXPECT_EQ(done->wait(), ReadyEvent::Status::done);
  EXPECT_TRUE(called);
  EXPECT_TRUE(at::equal(slots[1], src.to(at::kFloat)));
  EXPECT_TRUE(engine->record_use()->ready());
}

TEST(TransferEngine, ShutdownFailsQueuedCopies) {
  auto engine = make_transfer_engine(c10::kCPU);
  auto blocker = std::make_shared<HostReadyEvent>();
  float a = 1, b = 0;
  std::atomic<int> failed{0};
  CopyJob job;
  job.src = &a;
  job.dst = &b;
  job.elements = 1;
  job.on_done = [&](const std::string& error) { failed += !error.empty(); };
  job.after = blocker;
  const auto first = engine->copy(job);
  job.after = nullptr;
  const auto second = engine->copy(job);
  std::thread unblock([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    blocker->set_done();
  });
  engine->shutdown();
  unblock.join();
  EXPECT_TRUE(first->ready());
  EXPECT_EQ(second->wait(), ReadyEvent::Status::failed);
  EXPECT_GE(failed.load(), 1);
  EXPECT_EQ(engine->copy(job)->status(), ReadyEvent::Status::failed);
}

TEST(TransferEngine, ThrottleSlowsCopies) {
  TransferThrottle throttle;
  throttle.latency_ms = 30;
  auto engine = make_transfer_engine(c10::kCPU, throttle);
  float a = 1, b = 0;
  CopyJob job;
  job.src = &a;
  job.dst = &b;
  job.elements = 1;
  const auto start = std::chrono::steady_clock::now();
  engine->copy(job);
  EXPECT_EQ(engine->copy(job)->wait(), ReadyEvent::Status::done);
  EXPECT_GE(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 0.059);
  EXPECT_EQ(b, 1);
}

TEST(TransferEngine, NoCudaEngineYet) {
  try {
    make_transfer_engine(c10::Device(c10::kCUDA, 0));
    FAIL() << "a CUDA engine appeared";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("CUDA"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace chronos
