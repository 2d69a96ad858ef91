// Completion events for the expert store's transitions: one per read (READING -> WARM) and per
// copy (COPYING -> HOT). ReadyEvent is what the store and compute wait on; it says nothing about
// who completes it. HostReadyEvent, completed by host code (the I/O threads, the CPU transfer
// engine), starts pending and is completed exactly once, as done or failed with a message; a
// failed event wakes waiters like a done one, so an I/O error never leaves a waiter hanging. A
// CUDA engine implements ReadyEvent over a cudaEvent (status by query, wait by synchronize) and
// adds a device-side wait (a stream waiting on the event) that the store does not need to know.
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
  virtual ~ReadyEvent() = default;

  virtual Status status() const = 0;
  bool ready() const { return status() != Status::pending; }
  // The failure message ("" unless failed).
  virtual std::string error() const = 0;
  // Blocks (the calling host thread) until the event completes; returns done or failed.
  virtual Status wait() const = 0;
  // Blocks at most `seconds`; returns the status at that time (pending on time-out).
  virtual Status wait_for(double seconds) const = 0;
};

using ReadyEventPtr = std::shared_ptr<ReadyEvent>;

// An event completed from host code; waiters block on a condition variable.
class HostReadyEvent final : public ReadyEvent {
 public:
  // An event that is already done (transitions that need no work, e.g. a no-op last use).
  static std::shared_ptr<HostReadyEvent> make_done();

  // Complete the event. Only the first completion counts; later ones are ignored.
  void set_done();
  void set_failed(const std::string& error);

  Status status() const override;
  std::string error() const override;
  Status wait() const override;
  Status wait_for(double seconds) const override;

 private:
  void complete(Status status, const std::string& error);

  mutable std::mutex mutex_;
  mutable std::condition_variable cv_;
  Status status_ = Status::pending;
  std::string error_;
};

using HostReadyEventPtr = std::shared_ptr<HostReadyEvent>;

}  // namespace chronos
