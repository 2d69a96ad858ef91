#include "chronos/store/ready_event.h"

#include <chrono>

namespace chronos {

std::shared_ptr<HostReadyEvent> HostReadyEvent::make_done() {
  auto event = std::make_shared<HostReadyEvent>();
  event->set_done();
  return event;
}

void HostReadyEvent::complete(Status status, const std::string& error) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (status_ != Status::pending) return;
    status_ = status;
    error_ = error;
  }
  cv_.notify_all();
}

void HostReadyEvent::set_done() { complete(Status::done, {}); }
void HostReadyEvent::set_failed(const std::string& error) { complete(Status::failed, error); }

ReadyEvent::Status HostReadyEvent::status() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return status_;
}

std::string HostReadyEvent::error() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return error_;
}

ReadyEvent::Status HostReadyEvent::wait() const {
  std::unique_lock<std::mutex> lock(mutex_);
  cv_.wait(lock, [&] { return status_ != Status::pending; });
  return status_;
}

ReadyEvent::Status HostReadyEvent::wait_for(double seconds) const {
  std::unique_lock<std::mutex> lock(mutex_);
  cv_.wait_for(lock, std::chrono::duration<double>(seconds), [&] { return status_ != Status::pending; });
  return status_;
}

}  // namespace chronos
