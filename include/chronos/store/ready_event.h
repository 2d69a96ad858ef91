// A host-side completion event: one per state transition of an expert in the store (a read
// READING -> WARM, a copy COPYING -> HOT). It starts pending and is completed exactly once, as
// done or failed with a message; waiters block on a condition variable and a failed event wakes
// them like a done one, so an I/O error never leaves a waiter hanging. The CUDA transfer engine
// completes these from its stream callbacks; no CUDA type appears here.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>

namespace chronos {

class ReadyEvent {
 public:
  enum class Status { pending, done, failed };

  ReadyEvent() = default;
  ReadyEvent(const ReadyEvent&) = delete;
  ReadyEvent& operator=(const ReadyEvent&) = delete;

  // An event that is already done (transitions that need no work, e.g. a no-op last use).
  static std::shared_ptr<ReadyEvent> make_done();

  // Complete the event. Only the first completion counts; later ones are ignored.
  void set_done();
  void set_failed(const std::string& error);

  Status status() const;
  bool ready() const { return status() != Status::pending; }
  // The failure message ("" unless failed).
  std::string error() const;

  // Blocks until the event completes; returns done or failed.
  Status wait() const;
  // Blocks at most `seconds`; returns the status at that time (pending on time-out).
  Status wait_for(double seconds) const;

 private:
  void complete(Status status, const std::string& error);

  mutable std::mutex mutex_;
  mutable std::condition_variable cv_;
  Status status_ = Status::pending;
  std::string error_;
};

using ReadyEventPtr = std::shared_ptr<ReadyEvent>;

}  // namespace chronos
