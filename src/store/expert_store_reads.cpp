// ExpertStore, the read side (see expert_store.h): the demand, whole-cluster and prefetch queues the
// I/O threads serve through ReadScheduler, and the outcome of each read.
#include <algorithm>

#include "chronos/core/error.h"
#include "chronos/core/log.h"
#include "chronos/store/expert_store.h"
#include "store/expert_store_impl.h"

namespace chronos {
namespace {

// A whole-cluster read brings at most this many bytes with one preadv.
constexpr uint64_t kMaxRunBytes = 64ull << 20;

}  // namespace

// ---- reads -----------------------------------------------------------------------------------------

void ExpertStore::Impl::request_read(ExpertKey key, bool front) {
  Unit& u = unit(key);
  if (u.state != ExpertState::cold) return;
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
  wake_readers();
}

bool ExpertStore::Impl::make_read_job(ExpertKey key, bool whole_cluster, Requester who, ReadJob& job) {
  const ExpertLocation at = where_[static_cast<size_t>(key.index(num_experts_))];
  const ClusterFile& cluster = manifest_.clusters[static_cast<size_t>(at.cluster)];
  // A prefetch of an expert no prediction wants any more (all its deadlines passed) takes only
  // unwanted slots.
  const auto slot = who == Requester::demand ? take_host_slot(std::nullopt) : take_host_slot(due(key), !is_wanted(key));
  if (!slot) return false;

  const auto claim = [&](const ExpertRange& range, int32_t s) {
    Unit& u = unit(range.key);
    u.host_slot = s;
    u.state = ExpertState::reading;
    u.read_event = std::make_shared<HostReadyEvent>();
    ++reads_in_flight_;
    stats_.most_experts_reading = std::max(stats_.most_experts_reading, reads_in_flight_);
    return ReadTarget{range.key, host_pool_->data(s), range.length, range.read_length(), range.checksum};
  };
  const auto readable = [&](const ExpertRange& range) {
    const Unit& u = unit(range.key);
    return u.state == ExpertState::cold && !u.read_queued;
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
      const auto s = take_host_slot(std::nullopt, /*speculative=*/true);  // the rest of a run
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

void ExpertStore::Impl::queue_rest_of_cluster(const ReadJob& job) {
  // The members the job's run did not cover, in file order, as many as the host pool can hold.
  const ClusterFile& cluster = manifest_.clusters[static_cast<size_t>(job.file)];
  int64_t room = host_pool_->count() - static_cast<int64_t>(job.targets.size());
  for (const ExpertRange& range : cluster.experts) {
    if (room <= 0) break;
    const Unit& u = unit(range.key);
    if (u.state != ExpertState::cold || u.read_queued) continue;
    cluster_reads_.push_back(range.key);
    --room;
  }
}

bool ExpertStore::Impl::next_read(ReadJob& job) {
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    if (stopping_) return false;
    bool blocked = false;  // the most urgent read waits for a host slot
    while (!demand_reads_.empty() && !blocked) {
      const ExpertKey key = demand_reads_.front();
      Unit& u = unit(key);
      if (u.state != ExpertState::cold) {  // defensive: a queued read is of a COLD expert
        u.read_queued = false;
        demand_reads_.pop_front();
        continue;
      }
      u.read_queued = false;  // a queued read is of a COLD expert: cleared as the read claims it
      if (!make_read_job(key, false, Requester::demand, job)) {
        u.read_queued = true;
        blocked = true;
        break;
      }
      demand_reads_.pop_front();
      wake_readers();  // more may be readable: the next reader
      return true;
    }
    while (!blocked && !cluster_reads_.empty()) {  // the rest of whole-cluster requests
      const ExpertKey key = cluster_reads_.front();
      const Unit& u = unit(key);
      if (u.state != ExpertState::cold || u.read_queued) {
        cluster_reads_.pop_front();
        continue;
      }
      if (!make_read_job(key, true, Requester::prefetch, job)) {
        blocked = true;
        prefetch_blocked_ = true;
        progress_cv_.notify_all();  // wait_idle: nothing more will happen until something changes
        break;
      }
      cluster_reads_.pop_front();
      wake_readers();
      return true;
    }
    while (!blocked && !queue_.empty()) {
      const PrefetchRequest r = *queue_.top();
      if (satisfied(r.key, r.target)) {
        queue_.pop();
        ++stats_.prefetch_deduplicated;
        continue;
      }
      if (!advance(r.key, r.target, Requester::prefetch)) {  // read meanwhile: at most a copy was missing
        queue_.pop();
        pump_copies();
        continue;
      }
      if (!make_read_job(r.key, r.whole_cluster, Requester::prefetch, job)) {
        blocked = true;
        prefetch_blocked_ = true;
        progress_cv_.notify_all();
        break;
      }
      queue_.pop();
      advance(r.key, r.target, Requester::prefetch);  // READING now: marks the copy to follow
      if (r.whole_cluster) queue_rest_of_cluster(job);
      wake_readers();
      return true;
    }
    // The queues may have emptied above without a read (requests satisfied meanwhile, experts no
    // longer cold): wait_idle's waiters hear of it here, or they slept until their timeout (a test
    // waited its whole 60 s once, after a cluster read had satisfied the last queued prefetch).
    if (idle_locked()) progress_cv_.notify_all();
    work_cv_.wait(lock);
  }
}

void ExpertStore::Impl::read_finished(const ReadJob& job, const ReadOutcome& outcome, uint64_t bytes) {
  std::vector<std::pair<HostReadyEventPtr, std::string>> events;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    prefetch_blocked_ = false;
    ++stats_.ssd_reads;
    stats_.ssd_bytes += static_cast<int64_t>(bytes);
    for (size_t i = 0; i < job.targets.size(); ++i) {
      const ExpertKey key = job.targets[i].key;
      Unit& u = unit(key);
      --reads_in_flight_;
      events.emplace_back(u.read_event, outcome[i]);
      if (outcome[i].empty()) {
        u.state = ExpertState::warm;
        host_policy_->insert(key);
        if (u.demanded) queue_copy(key, Requester::demand);
        else if (u.wants_compute) queue_copy(key, Requester::prefetch);
      } else {
        host_pool_->put(u.host_slot);
        u.host_slot = -1;
        u.state = ExpertState::cold;
        u.wants_compute = false;
        u.demanded = false;
        ++u.failures;
        u.error = outcome[i];
        ++stats_.io_errors;
        log::warn(cat("expert store: ", outcome[i]));
      }
    }
    pump_copies();
    wake_readers();
  }
  progress_cv_.notify_all();
  for (auto& [event, error] : events) {
    if (error.empty()) event->set_done();
    else event->set_failed(error);
  }
}

// ---- prefetch requests -------------------------------------------------------------------------------

void ExpertStore::prefetch(const std::vector<PrefetchRequest>& requests) { impl_->prefetch(requests); }
void ExpertStore::begin_step(int64_t step) { impl_->begin_step(step); }

void ExpertStore::Impl::prefetch(const std::vector<PrefetchRequest>& requests) {
  for (const PrefetchRequest& r : requests) {
    checked_key(r.key.layer, r.key.expert, "prefetch");
    if (r.probability != r.probability) throw InvalidArgument(cat("expert store prefetch: probability of ", r.key.name(), " is NaN"));
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    bool queued = false;  // a read was queued: wake a reader (only then; this runs at every layer)
    for (const PrefetchRequest& r : requests) {
      ++stats_.prefetch_requests;
      Unit& u = unit(r.key);
      if (r.deadline_step < step_) {
        ++stats_.prefetch_cancelled;
        continue;
      }
      // Wanted (also when already resident) from the earliest step named to the latest.
      if (u.next_due < step_ || r.deadline_step < u.next_due) u.next_due = r.deadline_step;
      u.wanted_until = std::max(u.wanted_until, r.deadline_step);
      if (satisfied(r.key, r.target)) {
        ++stats_.prefetch_deduplicated;
        continue;
      }
      if (!advance(r.key, r.target, Requester::prefetch)) {  // on its way or WARM: at most the copy was missing
        if (queue_.erase(r.key)) ++stats_.prefetch_cancelled;
        continue;
      }
      const PrefetchQueue::PushResult pushed = queue_.push(r);
      if (pushed.superseded) ++stats_.prefetch_cancelled;
      if (pushed.dropped) ++stats_.prefetch_dropped;
      queued = true;
    }
    pump_copies();
    if (queued) {
      prefetch_blocked_ = false;  // a new request may take a slot the waiting ones could not
      wake_readers();
    }
  }
}

void ExpertStore::Impl::begin_step(int64_t step) {
  std::lock_guard<std::mutex> lock(mutex_);
  step_ = step;
  layer_ = 0;
  prefetch_blocked_ = false;
  stats_.prefetch_cancelled += static_cast<int64_t>(queue_.cancel_before(step));
  pump_copies();  // the previous step's experts are no longer wanted: blocked prefetches may go on
  wake_readers();
}

}  // namespace chronos
