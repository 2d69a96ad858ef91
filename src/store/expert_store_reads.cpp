// ExpertStore, the read side (see expert_store.h): the demand, whole-cluster and prefetch queues the
// I/O threads serve through ReadScheduler, and the outcome of each read.
#include <algorithm>

#include "chronos/core/error.h"
#include "chronos/core/log.h"
#include "chronos/store/expert_store.h"
#include "store/expert_store_unit.h"

namespace chronos {
namespace {

// A whole-cluster read brings at most this many bytes with one preadv.
constexpr uint64_t kMaxRunBytes = 64ull << 20;

}  // namespace

// ---- reads -----------------------------------------------------------------------------------------

void ExpertStore::request_read(ExpertKey key, bool front) {
  Unit& u = unit(key);
  if (u.host_slot >= 0 || u.compute_slot >= 0) return;
  if (u.read_queued) {
    // Already queued behind other demand (announce): acquire moves it to the front.
    if (front && demand_reads_.front() != key) {
      demand_reads_.erase(std::find(demand_reads_.begin(), demand_reads_.end(), key));
      demand_reads_.push_front(key);
    }
    return;
  }
  queue_.erase(key);  // a demand read supersedes a queued prefetch of the same expert
  u.read_queued = true;
  prefetch_blocked_ = false;
  if (front) demand_reads_.push_front(key);
  else demand_reads_.push_back(key);
  work_cv_.notify_one();
}

bool ExpertStore::make_read_job(ExpertKey key, bool whole_cluster, bool demand, ReadJob& job) {
  const ExpertLocation at = where_[static_cast<size_t>(key.index(num_experts_))];
  const ClusterFile& cluster = manifest_.clusters[static_cast<size_t>(at.cluster)];
  const auto slot = take_host_slot(demand);
  if (!slot) return false;

  const auto claim = [&](const ExpertRange& range, int32_t s) {
    Unit& u = unit(range.key);
    u.host_slot = s;
    u.reading = true;
    u.read_event = std::make_shared<ReadyEvent>();
    ++reads_in_flight_;
    return ReadTarget{range.key, host_pool_->data(s), range.length, range.read_length(), range.checksum};
  };
  const auto readable = [&](const ExpertRange& range) {
    const Unit& u = unit(range.key);
    return u.host_slot < 0 && u.compute_slot < 0 && !u.read_queued;
  };
  std::deque<ReadTarget> targets{claim(cluster.experts[static_cast<size_t>(at.member)], *slot)};
  size_t first = static_cast<size_t>(at.member), last = first;
  if (whole_cluster) {
    // The run of readable members around `key` that lie back to back in the file, as slots allow.
    uint64_t bytes = targets.front().read_length;
    while (true) {
      const bool after = last + 1 < cluster.experts.size() &&
                         cluster.experts[last].offset + cluster.experts[last].read_length() == cluster.experts[last + 1].offset &&
                         readable(cluster.experts[last + 1]);
      const bool before = !after && first > 0 &&
                          cluster.experts[first - 1].offset + cluster.experts[first - 1].read_length() == cluster.experts[first].offset &&
                          readable(cluster.experts[first - 1]);
      if (!after && !before) break;
      const ExpertRange& next = cluster.experts[after ? last + 1 : first - 1];
      if (bytes + next.read_length() > kMaxRunBytes) break;
      const auto s = take_host_slot(/*demand=*/false);  // the rest of a run is speculative
      if (!s) break;
      bytes += next.read_length();
      if (after) targets.push_back(claim(cluster.experts[++last], *s));
      else targets.push_front(claim(cluster.experts[--first], *s));
    }
  }
  job.file = at.cluster;
  job.offset = cluster.experts[first].offset;
  job.targets.assign(targets.begin(), targets.end());
  return true;
}

void ExpertStore::queue_rest_of_cluster(const ReadJob& job) {
  // The members the job's run did not cover, in file order, as many as the host pool can hold.
  const ClusterFile& cluster = manifest_.clusters[static_cast<size_t>(job.file)];
  int64_t room = host_pool_->count() - static_cast<int64_t>(job.targets.size());
  for (const ExpertRange& range : cluster.experts) {
    if (room <= 0) break;
    const Unit& u = unit(range.key);
    if (u.host_slot >= 0 || u.compute_slot >= 0 || u.read_queued) continue;
    cluster_reads_.push_back(range.key);
    --room;
  }
}

bool prefetch_satisfied(ExpertState s, const PrefetchRequest& r, bool read_queued, bool wants_compute) {
  if (s == ExpertState::hot || s == ExpertState::copying) return true;
  if (r.target == Tier::ram) return s != ExpertState::cold || read_queued;
  return (s == ExpertState::reading || s == ExpertState::warm || read_queued) && wants_compute;
}

bool ExpertStore::next_read(ReadJob& job) {
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    if (stopping_) return false;
    bool blocked = false;  // the most urgent read waits for a host slot
    while (!demand_reads_.empty() && !blocked) {
      const ExpertKey key = demand_reads_.front();
      Unit& u = unit(key);
      if (u.host_slot >= 0 || u.compute_slot >= 0) {  // read meanwhile, or still HOT
        u.read_queued = false;
        demand_reads_.pop_front();
        continue;
      }
      if (!make_read_job(key, false, /*demand=*/true, job)) {
        blocked = true;
        break;
      }
      u.read_queued = false;
      demand_reads_.pop_front();
      return true;
    }
    while (!blocked && !cluster_reads_.empty()) {  // the rest of whole-cluster requests
      const ExpertKey key = cluster_reads_.front();
      const Unit& u = unit(key);
      if (u.host_slot >= 0 || u.compute_slot >= 0 || u.read_queued) {
        cluster_reads_.pop_front();
        continue;
      }
      if (!make_read_job(key, true, /*demand=*/false, job)) {
        blocked = true;
        prefetch_blocked_ = true;
        progress_cv_.notify_all();  // wait_idle: nothing more will happen until something changes
        break;
      }
      cluster_reads_.pop_front();
      return true;
    }
    while (!blocked && !queue_.empty()) {
      const PrefetchRequest r = *queue_.top();
      Unit& u = unit(r.key);
      const ExpertState s = state_locked(r.key);
      if (prefetch_satisfied(s, r, u.read_queued, u.wants_compute)) {
        queue_.pop();
        ++stats_.prefetch_deduplicated;
        continue;
      }
      if (s != ExpertState::cold || u.read_queued) {  // only the copy is missing
        queue_.pop();
        u.wants_compute = true;
        if (s == ExpertState::warm && !u.copy_queued) {
          u.copy_queued = true;
          pending_copies_.push_back(r.key);
          pump_copies();
        }
        continue;
      }
      if (!make_read_job(r.key, r.whole_cluster, /*demand=*/false, job)) {
        blocked = true;
        prefetch_blocked_ = true;
        progress_cv_.notify_all();
        break;
      }
      queue_.pop();
      if (r.target == Tier::compute) u.wants_compute = true;
      if (r.whole_cluster) queue_rest_of_cluster(job);
      return true;
    }
    work_cv_.wait(lock);
  }
}

void ExpertStore::read_finished(const ReadJob& job, const ReadOutcome& outcome, uint64_t bytes) {
  std::vector<std::pair<ReadyEventPtr, std::string>> events;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    prefetch_blocked_ = false;
    ++stats_.ssd_reads;
    stats_.ssd_bytes += static_cast<int64_t>(bytes);
    for (size_t i = 0; i < job.targets.size(); ++i) {
      const ExpertKey key = job.targets[i].key;
      Unit& u = unit(key);
      u.reading = false;
      --reads_in_flight_;
      events.emplace_back(u.read_event, outcome[i]);
      if (outcome[i].empty()) {
        host_policy_->insert(key);
        if (u.demanded) {
          demand_copies_.push_back(key);
        } else if (u.wants_compute && !u.copy_queued) {
          u.copy_queued = true;
          pending_copies_.push_back(key);
        }
      } else {
        host_pool_->put(u.host_slot);
        u.host_slot = -1;
        u.wants_compute = false;
        u.demanded = false;
        ++u.failures;
        u.error = outcome[i];
        ++stats_.io_errors;
        log::warn(cat("expert store: ", outcome[i]));
      }
    }
    pump_copies();
  }
  progress_cv_.notify_all();
  work_cv_.notify_all();
  for (auto& [event, error] : events) {
    if (error.empty()) event->set_done();
    else event->set_failed(error);
  }
}

// ---- prefetch requests -------------------------------------------------------------------------------

void ExpertStore::prefetch(const std::vector<PrefetchRequest>& requests) {
  for (const PrefetchRequest& r : requests) {
    checked_key(r.key.layer, r.key.expert, "prefetch");
    if (r.probability != r.probability) throw InvalidArgument(cat("expert store prefetch: probability of ", r.key.name(), " is NaN"));
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    prefetch_blocked_ = false;
    for (const PrefetchRequest& r : requests) {
      ++stats_.prefetch_requests;
      Unit& u = unit(r.key);
      if (r.deadline_step < step_) {
        ++stats_.prefetch_cancelled;
        continue;
      }
      u.wanted_until = std::max(u.wanted_until, r.deadline_step);  // also when already resident
      const ExpertState s = state_locked(r.key);
      if (prefetch_satisfied(s, r, u.read_queued, u.wants_compute)) {
        ++stats_.prefetch_deduplicated;
        continue;
      }
      if (s != ExpertState::cold || u.read_queued) {  // on its way or WARM: only the copy is missing
        if (queue_.erase(r.key)) ++stats_.prefetch_cancelled;
        u.wants_compute = true;
        if (s == ExpertState::warm && !u.copy_queued) {
          u.copy_queued = true;
          pending_copies_.push_back(r.key);
        }
        continue;
      }
      const PrefetchQueue::PushResult pushed = queue_.push(r);
      if (pushed.superseded) ++stats_.prefetch_cancelled;
      if (pushed.dropped) ++stats_.prefetch_dropped;
    }
    pump_copies();
  }
  work_cv_.notify_all();
}

void ExpertStore::begin_step(int64_t step) {
  std::lock_guard<std::mutex> lock(mutex_);
  step_ = step;
  layer_ = 0;
  prefetch_blocked_ = false;
  stats_.prefetch_cancelled += static_cast<int64_t>(queue_.cancel_before(step));
  pump_copies();  // the previous step's experts are no longer wanted: blocked prefetches may go on
  work_cv_.notify_all();
}

}  // namespace chronos
