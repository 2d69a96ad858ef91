#include "chronos/store/ready_event.h"

#include <chrono>

namespace chronos {

std::shared_ptr<ReadyEvent> ReadyEvent::make_done() {
  auto event = std::make_shared<ReadyEvent>();
  event->set_done();
  return event;
}

void ReadyEvent::complete(Status status, const std::string& error) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (status_ != Status::pending) return;
    status_ = status;
    error_ = error;
  }
  cv_.notify_all();
}

void ReadyEvent::set_done() { complete(Status::done, {}); }
void ReadyEvent::set_failed(const std::string& error) { complete(Status::failed, error); }

ReadyEvent::Status ReadyEvent::status() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return status_;
}

std::string ReadyEvent::error() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return error_;
}

ReadyEvent::Status ReadyEvent::wait() const {
  std::unique_lock<std::mutex> lock(mutex_);
  cv_.wait(lock, [&] { return status_ != Status::pending; });
  return status_;
}

ReadyEvent::Status ReadyEvent::wait_for(double seconds) const {
  std::unique_lock<std::mutex> lock(mutex_);
  cv_.wait_for(lock, std::chrono::duration<double>(seconds), [&] { return status_ != Status::pending; });
  return status_;
}

}  // namespace chronos
