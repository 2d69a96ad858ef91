#include "chronos/serve/request_scheduler.h"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include "chronos/serve/api_error.h"
#include "serve/serve_fixture.h"

namespace chronos {
namespace {

using namespace std::chrono_literals;

// Records what the decode thread reports, for the test thread to wait on.
struct Log {
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<std::pair<char, int64_t>> tokens;  // (job, token) in the order they came
  std::map<char, GenerationResult> results;
  std::map<char, std::string> errors;

  DecodeJob job(char name, std::vector<int64_t> prompt, int64_t max_tokens, std::function<void()> on_first = {}) {
    DecodeJob j;
    j.prompt = std::move(prompt);
    j.options.max_new_tokens = max_tokens;
    j.options.sampling.greedy = true;
    j.on_token = [this, name, on_first](int64_t token) {
      bool first;
      {
        std::lock_guard<std::mutex> lock(mutex);
        first = std::none_of(tokens.begin(), tokens.end(), [&](const auto& t) { return t.first == name; });
        tokens.emplace_back(name, token);
      }
      changed.notify_all();
      if (first && on_first) on_first();
      return true;
    };
    j.on_end = [this, name](const GenerationResult* result, std::exception_ptr error) {
      std::lock_guard<std::mutex> lock(mutex);
      if (result) results[name] = *result;
      else try {
          std::rethrow_exception(error);
        } catch (const std::exception& e) {
          errors[name] = e.what();
        }
      changed.notify_all();
    };
    return j;
  }
  template <typename Predicate>
  bool wait(Predicate done, std::chrono::seconds limit = 60s) {
    std::unique_lock<std::mutex> lock(mutex);
    return changed.wait_for(lock, limit, [&] { return done(); });
  }
  bool ended(char name) { return results.count(name) || errors.count(name); }
  std::vector<int64_t> of(char name) {
    std::vector<int64_t> out;
    for (const auto& [n, t] : tokens)
      if (n == name) out.push_back(t);
    return out;
  }
};

// Keeps a job's first token (and so its slot) until release(): the test thread arranges the queue meanwhile.
struct Hold {
  std::promise<void> started, released;
  std::shared_future<void> go = released.get_future().share();
  std::function<void()> at_first_token() {
    return [this] {
      started.set_value();
      go.wait();
    };
  }
  void wait_started() { started.get_future().wait(); }
  void release() { released.set_value(); }
};

struct SchedulerTest : ::testing::Test {
  testing::ServeModel tiny;
  std::vector<int64_t> prompt_a{5, 17, 99, 3}, prompt_b{7, 8, 9, 10, 11, 12};
  RequestScheduler::RunFactory factory() {
    return [this](const std::vector<int64_t>& prompt, GenerationOptions options) {
      return std::make_unique<DecodeRun>(*tiny.model, prompt, std::move(options));
    };
  }
  std::vector<int64_t> alone(const std::vector<int64_t>& prompt, int64_t max_tokens) {
    GenerationOptions o;
    o.max_new_tokens = max_tokens;
    o.sampling.greedy = true;
    return generate(*tiny.model, prompt, o).tokens;
  }
};

TEST_F(SchedulerTest, SlotsTakeTurnsOneTokenEachAndKeepTheirOwnCaches) {
  RequestScheduler scheduler({/*slots=*/2, /*max_queued=*/4}, factory());
  Log log;
  std::promise<void> b_submitted;
  std::shared_future<void> b_ready = b_submitted.get_future().share();
  scheduler.submit(log.job('A', prompt_a, 12, [b_ready] { b_ready.wait(); }));
  scheduler.submit(log.job('B', prompt_b, 8));
  b_submitted.set_value();
  ASSERT_TRUE(log.wait([&] { return log.ended('A') && log.ended('B'); }));
  // From B's first token on, the two alternate until B ends.
  const auto first_b = std::find_if(log.tokens.begin(), log.tokens.end(), [](const auto& t) { return t.first == 'B'; });
  ASSERT_NE(first_b, log.tokens.end());
  int b_seen = 0;
  for (auto it = first_b; it != log.tokens.end() && b_seen < 8; ++it) {
    if (it->first == 'B') ++b_seen;
    if (std::next(it) != log.tokens.end() && b_seen < 8) EXPECT_NE(it->first, std::next(it)->first) << "turn " << (it - log.tokens.begin());
  }
  // Interleaving changes nothing in what each request generates.
  EXPECT_EQ(log.of('A'), alone(prompt_a, 12));
  EXPECT_EQ(log.of('B'), alone(prompt_b, 8));
  EXPECT_EQ(log.results['A'].stop_reason, "max_new_tokens");
  // A request's end is reported before its slot is counted free: give the counts a moment to settle.
  SchedulerCounts counts = scheduler.counts();
  for (int i = 0; i < 500 && (counts.processing != 0 || counts.finished != 2); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    counts = scheduler.counts();
  }
  EXPECT_EQ(counts.finished, 2);
  EXPECT_EQ(counts.processing, 0);
  EXPECT_EQ(counts.queued, 0);
}

TEST_F(SchedulerTest, ABeyondTheQueueIsRefusedWith429) {
  RequestScheduler scheduler({/*slots=*/1, /*max_queued=*/1}, factory());
  Log log;
  Hold hold;
  scheduler.submit(log.job('A', prompt_a, 4, hold.at_first_token()));
  hold.wait_started();  // A holds the slot
  scheduler.submit(log.job('B', prompt_b, 2));  // queued
  try {
    scheduler.submit(log.job('C', prompt_b, 2));
    ADD_FAILURE() << "a third request was accepted";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status(), 429);
  }
  EXPECT_EQ(scheduler.counts().rejected, 1);
  EXPECT_EQ(scheduler.counts().queued, 1);
  hold.release();
  ASSERT_TRUE(log.wait([&] { return log.ended('A') && log.ended('B'); }));
  EXPECT_FALSE(log.ended('C'));
}

TEST_F(SchedulerTest, AWaitingSubmitterGetsRoomInsteadOf429) {
  SchedulerConfig config{/*slots=*/1, /*max_queued=*/0};
  config.wait_when_full = true;
  RequestScheduler scheduler(config, factory());
  Log log;
  scheduler.submit(log.job('A', prompt_a, 6));
  scheduler.submit(log.job('B', prompt_b, 3));  // waits for A's slot, then runs
  ASSERT_TRUE(log.wait([&] { return log.ended('A') && log.ended('B'); }));
  EXPECT_EQ(log.of('B'), alone(prompt_b, 3));
  EXPECT_EQ(scheduler.counts().rejected, 0);
}

TEST_F(SchedulerTest, CancellingFreesTheSlotBeforeTheNextToken) {
  RequestScheduler scheduler({/*slots=*/1, /*max_queued=*/2}, factory());
  Log log;
  std::shared_ptr<JobHandle> a;
  std::promise<void> have_handle;
  std::shared_future<void> handle_ready = have_handle.get_future().share();
  a = scheduler.submit(log.job('A', prompt_a, 200, [&, handle_ready] {
    handle_ready.wait();
    a->cancel();  // during A's first token: the run stops before its second
  }));
  have_handle.set_value();
  scheduler.submit(log.job('B', prompt_b, 3));
  ASSERT_TRUE(log.wait([&] { return log.ended('A') && log.ended('B'); }));
  EXPECT_EQ(log.results['A'].stop_reason, "cancelled");
  EXPECT_EQ(log.of('A').size(), 1u);
  EXPECT_EQ(log.of('B'), alone(prompt_b, 3));
  EXPECT_EQ(scheduler.counts().cancelled, 1);
}

TEST_F(SchedulerTest, AQueuedRequestCancelledNeverRuns) {
  RequestScheduler scheduler({/*slots=*/1, /*max_queued=*/2}, factory());
  Log log;
  Hold hold;
  scheduler.submit(log.job('A', prompt_a, 3, hold.at_first_token()));
  hold.wait_started();
  scheduler.submit(log.job('B', prompt_b, 3))->cancel();
  hold.release();
  ASSERT_TRUE(log.wait([&] { return log.ended('A') && log.ended('B'); }));
  EXPECT_EQ(log.results['B'].stop_reason, "cancelled");
  EXPECT_TRUE(log.of('B').empty());
}

TEST_F(SchedulerTest, ARunThatFailsReportsItsErrorAndTheNextOneRuns) {
  RequestScheduler scheduler({/*slots=*/1, /*max_queued=*/2}, factory());
  Log log;
  std::vector<int64_t> outside{1, tiny.model->config().vocab_size + 5};
  scheduler.submit(log.job('A', outside, 3));
  scheduler.submit(log.job('B', prompt_b, 2));
  ASSERT_TRUE(log.wait([&] { return log.ended('A') && log.ended('B'); }));
  EXPECT_NE(log.errors['A'].find("outside the vocabulary"), std::string::npos) << log.errors['A'];
  EXPECT_EQ(log.of('B'), alone(prompt_b, 2));
  EXPECT_EQ(scheduler.counts().failed, 1);
}

TEST_F(SchedulerTest, OneRunAtATimeFinishesEachBeforeTheNext) {
  SchedulerConfig config{/*slots=*/4, /*max_queued=*/4};
  config.one_run_at_a_time = true;
  RequestScheduler scheduler(config, factory());
  EXPECT_EQ(scheduler.slots(), 1);
  Log log;
  scheduler.submit(log.job('A', prompt_a, 5));
  scheduler.submit(log.job('B', prompt_b, 5));
  ASSERT_TRUE(log.wait([&] { return log.ended('A') && log.ended('B'); }));
  std::string order;
  for (const auto& t : log.tokens) order += t.first;
  EXPECT_EQ(order, "AAAAABBBBB");
}

TEST_F(SchedulerTest, ShutdownEndsEveryRequestAsCancelled) {
  Log log;
  {
    RequestScheduler scheduler({/*slots=*/1, /*max_queued=*/2}, factory());
    std::promise<void> started;
    scheduler.submit(log.job('A', prompt_a, 200, [&] { started.set_value(); }));
    scheduler.submit(log.job('B', prompt_b, 200));
    started.get_future().wait();
    scheduler.shutdown();
    try {
      scheduler.submit(log.job('C', prompt_b, 2));
      ADD_FAILURE() << "accepted after shutdown";
    } catch (const ApiError& e) {
      EXPECT_EQ(e.status(), 503);
    }
  }
  EXPECT_EQ(log.results['A'].stop_reason, "cancelled");
  EXPECT_EQ(log.results['B'].stop_reason, "cancelled");
  EXPECT_LT(log.of('A').size(), 200u);
}

TEST(SchedulerConfig, ValidateNamesTheFlag) {
  EXPECT_THROW((SchedulerConfig{0, 1}.validate()), ConfigError);
  EXPECT_THROW((SchedulerConfig{1, -1}.validate()), ConfigError);
  EXPECT_NO_THROW((SchedulerConfig{4, 0}.validate()));
}

}  // namespace
}  // namespace chronos
