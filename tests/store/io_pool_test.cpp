// SSD reads: O_DIRECT with its buffered fallback, short reads, checksums, and the throttle.
#include "store/io_pool.h"

#include <gtest/gtest.h>
#include <unistd.h>
#define XXH_INLINE_ALL  // header-only: the test does not link libxxhash
#include <xxhash.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <thread>

#include "chronos/core/error.h"
#include "support/temp_dir.h"

namespace chronos {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

struct AlignedBuffer {
  explicit AlignedBuffer(size_t n) : size(n), data(static_cast<char*>(std::aligned_alloc(4096, n))) {}
  ~AlignedBuffer() { std::free(data); }
  size_t size;
  char* data;
};

// A file of `blocks` 4 KiB blocks, block b filled with the byte b.
std::string make_file(const std::string& path, int blocks) {
  std::string bytes;
  for (int b = 0; b < blocks; ++b) bytes.append(4096, static_cast<char>(b));
  testing::write_bytes(path, bytes);
  return bytes;
}

TEST(SsdFile, ReadsWithODirectWhereTheFilesystemAllowsIt) {
  testing::TempDir dir;
  const std::string bytes = make_file(dir.file("a.bin"), 8);
  SsdFile file(dir.file("a.bin"));
  EXPECT_EQ(file.size(), bytes.size());
  AlignedBuffer buf(3 * 4096);
  EXPECT_EQ(file.read(buf.data, buf.size, 2 * 4096), buf.size);
  EXPECT_EQ(std::memcmp(buf.data, bytes.data() + 2 * 4096, buf.size), 0);
  if (!file.direct()) GTEST_SKIP() << "the temp folder's filesystem refuses O_DIRECT";
  // Two spans, one preadv.
  AlignedBuffer a(4096), b(2 * 4096);
  EXPECT_EQ(file.read({{a.data, a.size}, {b.data, b.size}}, 4096), 3u * 4096);
  EXPECT_EQ(a.data[0], 1);
  EXPECT_EQ(b.data[0], 2);
  EXPECT_EQ(b.data[4096], 3);
  EXPECT_TRUE(file.direct());
}

TEST(SsdFile, ReadsOnTmpfs) {
  // tmpfs refused O_DIRECT at open before Linux 6.6 (the open-time fallback); newer kernels accept it.
  if (!std::filesystem::is_directory("/dev/shm")) GTEST_SKIP() << "no /dev/shm";
  const std::string path = "/dev/shm/chronos_ssd_file_test_" + std::to_string(::getpid());
  make_file(path, 4);
  {
    SsdFile file(path);
    AlignedBuffer buf(4096);
    file.read(buf.data, buf.size, 3 * 4096);
    EXPECT_EQ(buf.data[100], 3);
  }
  std::filesystem::remove(path);
}

TEST(SsdFile, SwitchesToBufferedWhenADirectReadIsRefused) {
  testing::TempDir dir;
  const std::string bytes = make_file(dir.file("b.bin"), 4);
  SsdFile file(dir.file("b.bin"));
  if (!file.direct()) GTEST_SKIP() << "the temp folder's filesystem refuses O_DIRECT";
  // An unaligned buffer and length: O_DIRECT answers EINVAL, the read still succeeds.
  std::vector<char> unaligned(5000);
  EXPECT_EQ(file.read(unaligned.data() + 1, 4999, 4096), 4999u);
  EXPECT_EQ(unaligned[1], 1);
  EXPECT_EQ(unaligned[1 + 4096], 2);
  EXPECT_FALSE(file.direct());
}

TEST(SsdFile, ShortReadAndMissingFileNameTheFile) {
  testing::TempDir dir;
  make_file(dir.file("c.bin"), 2);
  SsdFile file(dir.file("c.bin"), SsdFile::Mode::buffered);
  EXPECT_FALSE(file.direct());
  AlignedBuffer buf(2 * 4096);
  try {
    file.read(buf.data, buf.size, 4096);
    FAIL() << "no error on a short read";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("c.bin"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("short read"), std::string::npos) << e.what();
  }
  // Reading up to the end of the file is fine when only that much is required.
  EXPECT_EQ(file.read(buf.data, buf.size, 4096, 4096), 4096u);
  try {
    SsdFile missing(dir.file("nope.bin"));
    FAIL() << "opened a missing file";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("nope.bin"), std::string::npos) << e.what();
  }
}

TEST(SsdThrottleClock, AddsLatencyAndSharesBandwidth) {
  SsdThrottle latency;
  latency.latency_ms = 40;
  SsdThrottleClock clock(latency);
  auto start = Clock::now();
  EXPECT_TRUE(clock.sleep_until(clock.reserve(1 << 20)));
  EXPECT_GE(seconds_since(start), 0.039);

  SsdThrottle bandwidth;
  bandwidth.mbps = 10;  // 1 MB takes 0.1 s
  SsdThrottleClock shared(bandwidth);
  start = Clock::now();
  const Clock::time_point first = shared.reserve(1000000);
  Clock::time_point last = first;
  for (int i = 0; i < 2; ++i) last = shared.reserve(1000000);  // three readers at once share it
  EXPECT_GE(std::chrono::duration<double>(first - start).count(), 0.099);
  EXPECT_GE(std::chrono::duration<double>(last - first).count(), 0.199);  // queued behind the first, not beside it

  // A stopped clock wakes its sleepers at once (one that slept the hour would hit the test's timeout).
  SsdThrottleClock stopped(latency);
  stopped.stop();
  EXPECT_FALSE(stopped.sleep_until(Clock::now() + std::chrono::hours(1)));
}

// Serves a fixed list of jobs, then reports done.
class ListScheduler : public ReadScheduler {
 public:
  explicit ListScheduler(std::vector<ReadJob> jobs) : jobs_(std::move(jobs)) {}
  bool next_read(ReadJob& job) override {
    std::lock_guard<std::mutex> lock(mutex_);
    if (jobs_.empty()) return false;
    job = jobs_.back();
    jobs_.pop_back();
    most_in_flight = std::max(most_in_flight, ++in_flight);
    return true;
  }
  void read_finished(const ReadJob& job, const ReadOutcome& outcome, uint64_t bytes) override {
    std::lock_guard<std::mutex> lock(mutex_);
    --in_flight;
    for (const auto& o : outcome) (o.empty() ? ok : failed)++;
    total += bytes;
  }
  std::mutex mutex_;
  std::vector<ReadJob> jobs_;
  int in_flight = 0, most_in_flight = 0;  // jobs taken and not finished
  int ok = 0, failed = 0;
  uint64_t total = 0;
};

TEST(IoPool, ReadsChecksAndThrottlesJobsOnItsThreads) {
  testing::TempDir dir;
  const std::string bytes = make_file(dir.file("d.bin"), 8);
  AlignedBuffer slots(8 * 4096);
  std::vector<ReadJob> jobs;
  for (int b = 0; b < 8; ++b) {
    ReadTarget t{{0, b}, slots.data + b * 4096, 4000, 4096, XXH3_64bits(bytes.data() + b * 4096, 4000)};
    if (b == 5) t.checksum ^= 1;  // a corrupted expert
    jobs.push_back({0, static_cast<uint64_t>(b) * 4096, {t}});
  }
  std::vector<std::unique_ptr<SsdFile>> files;
  files.push_back(std::make_unique<SsdFile>(dir.file("d.bin")));
  ListScheduler scheduler(jobs);
  SsdThrottle throttle;
  throttle.latency_ms = 200;
  const auto start = Clock::now();
  double elapsed = 0;
  {
    IoPool pool(std::move(files), 4, throttle, scheduler);
    EXPECT_EQ(pool.threads(), 4);
    while (true) {
      {
        std::lock_guard<std::mutex> lock(scheduler.mutex_);
        if (scheduler.ok + scheduler.failed == 8) break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    elapsed = seconds_since(start);
  }
  EXPECT_GE(elapsed, 0.399);  // 8 reads of 200 ms on 4 threads: two rounds at least
  EXPECT_EQ(scheduler.most_in_flight, 4);  // the four threads read at once
  EXPECT_EQ(scheduler.ok, 7);
  EXPECT_EQ(scheduler.failed, 1);
  EXPECT_EQ(scheduler.total, 8u * 4096);
  EXPECT_EQ(std::memcmp(slots.data, bytes.data(), bytes.size()), 0);
}

}  // namespace
}  // namespace chronos
