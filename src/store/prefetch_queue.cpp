#include "chronos/store/prefetch_queue.h"

#include <iterator>

#include "chronos/core/error.h"

namespace chronos {

bool PrefetchQueue::MoreUrgent::operator()(const Entry& a, const Entry& b) const {
  if (a.request.deadline_step != b.request.deadline_step) return a.request.deadline_step < b.request.deadline_step;
  if (a.request.key.layer != b.request.key.layer) return a.request.key.layer < b.request.key.layer;  // needed sooner in the step
  if (a.request.probability != b.request.probability) return a.request.probability > b.request.probability;
  return a.sequence < b.sequence;
}

PrefetchQueue::PrefetchQueue(size_t capacity) : capacity_(capacity) {
  if (capacity_ == 0) throw InvalidArgument("PrefetchQueue: capacity must be >= 1");
}

PrefetchQueue::PushResult PrefetchQueue::push(const PrefetchRequest& request) {
  if (request.probability != request.probability) throw InvalidArgument(cat("prefetch request for ", request.key.name(), ": probability is NaN"));
  PushResult result;
  result.superseded = erase(request.key);
  auto it = entries_.insert(Entry{request, next_sequence_++}).first;
  index_[request.key] = it;
  if (entries_.size() > capacity_) {
    // Drop the least urgent; with capacity >= 1 that is never the most urgent one.
    auto last = std::prev(entries_.end());
    result.dropped = last->request;
    index_.erase(last->request.key);
    entries_.erase(last);
  }
  return result;
}

const PrefetchRequest* PrefetchQueue::top() const { return entries_.empty() ? nullptr : &entries_.begin()->request; }

std::optional<PrefetchRequest> PrefetchQueue::pop() {
  if (entries_.empty()) return std::nullopt;
  PrefetchRequest request = entries_.begin()->request;
  index_.erase(request.key);
  entries_.erase(entries_.begin());
  return request;
}

bool PrefetchQueue::erase(ExpertKey key) {
  auto it = index_.find(key);
  if (it == index_.end()) return false;
  entries_.erase(it->second);
  index_.erase(it);
  return true;
}

const PrefetchRequest* PrefetchQueue::find(ExpertKey key) const {
  auto it = index_.find(key);
  return it == index_.end() ? nullptr : &it->second->request;
}

size_t PrefetchQueue::cancel_before(int64_t step) {
  size_t cancelled = 0;
  // Deadlines are the primary order, so the stale requests are a prefix.
  while (!entries_.empty() && entries_.begin()->request.deadline_step < step) {
    index_.erase(entries_.begin()->request.key);
    entries_.erase(entries_.begin());
    ++cancelled;
  }
  return cancelled;
}

void PrefetchQueue::clear() {
  entries_.clear();
  index_.clear();
}

}  // namespace chronos
