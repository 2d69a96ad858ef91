#include "chronos/store/expert_store.h"

#include <c10/util/accumulate.h>

#include <algorithm>
#include <utility>

#include "chronos/core/dtype.h"
#include "chronos/core/error.h"
#include "chronos/core/log.h"
#include "chronos/core/timing.h"
#include "chronos/model/pretrained.h"
#include "store/expert_store_impl.h"

namespace chronos {

// The private state (Impl, Unit) is in expert_store_impl.h; reads and prefetch in
// expert_store_reads.cpp; check_invariants in expert_store_invariants.cpp.

const char* to_string(ExpertState state) {
  switch (state) {
    case ExpertState::cold: return "COLD";
    case ExpertState::reading: return "READING";
    case ExpertState::warm: return "WARM";
    case ExpertState::copying: return "COPYING";
    case ExpertState::hot: return "HOT";
  }
  return "?";
}

namespace {
// The configuration is checked before the cache folder it names is read.
ClusterManifest read_validated(const OffloadConfig& config) {
  config.validate();
  return read_cluster_manifest(config.cache_dir);
}
}  // namespace

// ---- the public face: forwards to Impl under its lock --------------------------------------------

ExpertStore::ExpertStore(const OffloadConfig& config, const ModelConfig& model, std::unique_ptr<TransferEngine> engine)
    : ExpertStore(config, model, read_validated(config), std::move(engine)) {}

ExpertStore::ExpertStore(const OffloadConfig& config, const ModelConfig& model, ClusterManifest manifest,
                         std::unique_ptr<TransferEngine> engine)
    : impl_(std::make_unique<Impl>(config, model, std::move(manifest), std::move(engine))) {}

ExpertStore::~ExpertStore() = default;

size_t ExpertStore::max_batch() const { return static_cast<size_t>(impl_->max_batch()); }
const ClusterManifest& ExpertStore::manifest() const { return impl_->manifest_; }
const OffloadConfig& ExpertStore::config() const { return impl_->config_; }
int64_t ExpertStore::ram_slots() const { return impl_->host_pool_->count(); }
int64_t ExpertStore::compute_slots() const { return impl_->compute_pool_->count(); }
bool ExpertStore::direct_io() const { return impl_->direct_io(); }
bool ExpertStore::zero_copy() const { return impl_->zero_copy_; }

ExpertState ExpertStore::state(ExpertKey key) const {
  impl_->checked_key(key.layer, key.expert, "state");
  std::lock_guard<std::mutex> lock(impl_->mutex_);
  return impl_->unit(key).state;
}

bool ExpertStore::wait_idle(double seconds) const {
  std::unique_lock<std::mutex> lock(impl_->mutex_);
  return impl_->progress_cv_.wait_for(lock, std::chrono::duration<double>(seconds), [&] { return impl_->idle_locked() || impl_->stopping_; });
}

void ExpertStore::check_invariants() const {
  std::lock_guard<std::mutex> lock(impl_->mutex_);
  impl_->check_invariants_locked();
}

StoreStats ExpertStore::stats() const {
  std::lock_guard<std::mutex> lock(impl_->mutex_);
  StoreStats s = impl_->stats_;
  s.ram_high_water_bytes = impl_->host_pool_->high_water_bytes();
  s.compute_high_water_bytes = impl_->compute_pool_->high_water_bytes();
  return s;
}

void ExpertStore::reset_stats() {
  std::lock_guard<std::mutex> lock(impl_->mutex_);
  impl_->stats_ = StoreStats{};
  impl_->host_pool_->reset_high_water();
  impl_->compute_pool_->reset_high_water();
}

// ---- opening and closing -----------------------------------------------------------------------------

ExpertStore::Impl::Impl(const OffloadConfig& config, const ModelConfig& model, ClusterManifest manifest, std::unique_ptr<TransferEngine> engine)
    : config_(config), queue_(static_cast<size_t>(std::max<int64_t>(config.prefetch_queue_capacity, 1))) {
  config_.validate();
  if (!model.use_moe) throw ConfigError("expert store: the model has no routed experts (use_moe is false)");
  check_compute_dtype(config_.device, config_.compute_dtype);
  if (engine && engine->device().type() != config_.device.type())
    throw ConfigError(cat("expert store: the transfer engine '", engine->name(), "' is for ", engine->device().str(), ", the compute device is ",
                          config_.device.str()));
  const std::string& dir = config_.cache_dir;
  manifest_ = std::move(manifest);
  check_manifest_matches(manifest_, model, dir);
  if (!config_.model_dir.empty()) check_manifest_fingerprint(manifest_, expert_weights_fingerprint(config_.model_dir, model), dir);
  verify_cluster_files(manifest_, dir, config_.verify);
  where_ = index_experts(manifest_);
  num_layers_ = manifest_.num_layers;
  num_experts_ = manifest_.num_experts;

  const bool quantized = manifest_.storage.is_quantized();
  if (quantized && !(config_.device.is_cpu() && config_.zero_copy))
    throw ConfigError(cat(dir, "/cluster_manifest.json: ", manifest_.storage.name(), " experts are computed in place from host RAM on the CPU (",
                          config_.device.is_cpu() ? "offload.zero_copy is off" : "a GPU compute tier for quantized experts is not built yet",
                          "); repack the expert cache as fp32, fp16 or bf16"));
  const uint64_t host_slot = manifest_.clusters.front().experts.front().read_length();
  const uint64_t compute_slot = manifest_.compute_expert_bytes(config_.compute_dtype);
  if (static_cast<uint64_t>(config_.ram_budget_bytes) < host_slot)
    throw ConfigError(cat("offload.ram_budget_bytes must hold at least one expert (", host_slot, " bytes; got ", config_.ram_budget_bytes, ")"));
  if (static_cast<uint64_t>(config_.compute_budget_bytes) < compute_slot)
    throw ConfigError(cat("offload.compute_budget_bytes must hold at least one expert (", compute_slot, " bytes in ",
                          quantized ? manifest_.storage.name() : dtype_name(config_.compute_dtype), "; got ", config_.compute_budget_bytes, ")"));

  engine_ = engine ? std::move(engine) : make_transfer_engine(config_.device);
  zero_copy_ = config_.zero_copy && config_.device.is_cpu() && (quantized || manifest_.storage.dtype == config_.compute_dtype);
  host_pool_ = std::make_unique<HostSlotPool>(*engine_, config_.ram_budget_bytes, host_slot);
  compute_pool_ = zero_copy_ ? std::make_unique<ComputeSlotPool>(config_.compute_budget_bytes, compute_slot)
                             : std::make_unique<ComputeSlotPool>(*engine_, config_.compute_budget_bytes, manifest_.hidden_size,
                                                                 manifest_.moe_intermediate_size, config_.compute_dtype);
  if (zero_copy_) {
    // Views of each host slot as gate | up | down, as laid out in the file (quantized: uint8 rows).
    const int64_t H = manifest_.hidden_size, I = manifest_.moe_intermediate_size;
    const std::vector<int64_t> in_shape = manifest_.storage.stored_shape(I, H), out_shape = manifest_.storage.stored_shape(H, I);
    const int64_t in = c10::multiply_integers(in_shape), out = c10::multiply_integers(out_shape);
    const auto options = at::TensorOptions().dtype(manifest_.storage.dtype);
    for (int32_t s = 0; s < host_pool_->count(); ++s) {
      const at::Tensor slot = at::from_blob(host_pool_->data(s), {2 * in + out}, options);
      host_weights_.push_back({slot.narrow(0, 0, in).view(in_shape), slot.narrow(0, in, in).view(in_shape),
                               slot.narrow(0, 2 * in, out).view(out_shape), manifest_.storage.quant});
    }
  }
  host_policy_ = make_eviction_policy(config_.eviction);
  compute_policy_ = make_eviction_policy(config_.eviction);
  units_.resize(static_cast<size_t>(num_layers_ * num_experts_));
  slot_last_use_.assign(static_cast<size_t>(compute_pool_->count()), HostReadyEvent::make_done());

  std::vector<std::unique_ptr<SsdFile>> files;
  for (const ClusterFile& cluster : manifest_.clusters) files.push_back(std::make_unique<SsdFile>(dir + "/" + cluster.file));
  io_ = std::make_unique<IoPool>(std::move(files), config_.io_threads, config_.throttle, *this);
  log::info(cat("expert store: ", manifest_.clusters.size(), " cluster files, ", num_layers_ * num_experts_, " experts of ",
                manifest_.expert_bytes(), " bytes; RAM ", host_pool_->count(), " slots, compute ", compute_pool_->count(), " slots (",
                config_.device.str(), ", ", dtype_name(config_.compute_dtype), "); ", config_.io_threads, " I/O threads, ",
                direct_io() ? "O_DIRECT" : "buffered reads", zero_copy_ ? ", zero copy" : "", "; miss policy ", to_string(config_.miss_policy),
                config_.prefetch_eviction == PrefetchEviction::deadline ? "" : "; prefetches never evict wanted experts",
                config_.throttle.enabled() ? cat("; simulated SSD ", config_.throttle.latency_ms, " ms, ", config_.throttle.mbps, " MB/s") : ""));
}


ExpertStore::Impl::~Impl() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  progress_cv_.notify_all();
  io_->stop();          // readers finish their current read (throttle sleeps are cut short) and exit
  engine_->shutdown();  // queued copies complete as failed through copy_finished
  std::vector<HostReadyEventPtr> pending;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const Unit& u : units_)
      if (u.read_event && !u.read_event->ready()) pending.push_back(u.read_event);
  }
  for (auto& event : pending) event->set_failed("expert store closed");
}

bool ExpertStore::Impl::direct_io() const {
  for (size_t f = 0; f < io_->num_files(); ++f)
    if (!io_->file(static_cast<int32_t>(f)).direct()) return false;
  return true;
}

ExpertKey ExpertStore::Impl::checked_key(int64_t layer, int64_t expert, const char* what) const {
  if (layer < 0 || layer >= num_layers_ || expert < 0 || expert >= num_experts_)
    throw InvalidArgument(cat("expert store ", what, ": expert (layer ", layer, ", expert ", expert, ") is outside the model (",
                              num_layers_, " layers, ", num_experts_, " experts)"));
  return {static_cast<int32_t>(layer), static_cast<int32_t>(expert)};
}

// ---- wanted experts and victims (under mutex_) -------------------------------------------------------

std::optional<Due> ExpertStore::Impl::due(ExpertKey key) const {
  const Unit& u = unit(key);
  const Due now{step_, layer_};
  // The earliest step named, while it has not passed; then the latest one.
  for (const int64_t step : {u.next_due, u.wanted_until}) {
    const Due d{step, key.layer};
    if (step >= 0 && !(d < now)) return d;
  }
  return std::nullopt;
}

void ExpertStore::Impl::enter_layer(int64_t layer) {
  if (layer == layer_) return;
  layer_ = layer;  // the experts of the layers behind are no longer wanted for this step
  prefetch_blocked_ = false;
  wake_readers();
}

bool ExpertStore::Impl::host_evictable(ExpertKey key) const {
  const Unit& u = unit(key);
  // Not while read into or copied from, nor while acquire() waits for its copy to compute; with
  // zero copy, not while the model holds it (its host slot is its compute copy).
  return u.host_slot >= 0 && u.state != ExpertState::reading && u.state != ExpertState::copying &&
         !(u.demanded && u.compute_slot < 0) && !(zero_copy_ && u.pins > 0);
}

bool ExpertStore::Impl::compute_evictable(ExpertKey key) const {
  const Unit& u = unit(key);
  return u.state == ExpertState::hot && u.pins == 0;
}

std::optional<ExpertKey> ExpertStore::Impl::choose_victim(const EvictionPolicy& policy, const std::function<bool(ExpertKey)>& evictable,
                                                          std::optional<Due> incoming, bool speculative) const {
  if (auto victim = policy.victim([&](ExpertKey k) { return evictable(k) && !is_wanted(k); })) return victim;
  const bool demand = !incoming && !speculative;
  if (!demand && (speculative || config_.prefetch_eviction == PrefetchEviction::protect)) return std::nullopt;
  // Belady's rule over the predictions: the wanted expert needed last, if after the incoming one.
  std::optional<ExpertKey> victim;
  Due last{};
  policy.for_each([&](ExpertKey k) {
    if (!evictable(k)) return;
    const Due d = *due(k);
    if (incoming && !(*incoming < d)) return;
    if (!victim || last < d) {
      victim = k;
      last = d;
    }
  });
  return victim;
}

void ExpertStore::Impl::drop_host_copy(ExpertKey key) {
  Unit& u = unit(key);
  host_pool_->put(u.host_slot);
  host_policy_->erase(key);
  u.host_slot = -1;
  if (zero_copy_ && u.compute_slot >= 0) drop_compute_copy(key);  // its compute copy was that host slot
  if (u.compute_slot < 0) {
    u.state = ExpertState::cold;
    u.wants_compute = false;  // nothing left to copy from
  }
}

void ExpertStore::Impl::drop_compute_copy(ExpertKey key) {
  Unit& u = unit(key);
  compute_pool_->put(u.compute_slot);
  compute_policy_->erase(key);
  u.compute_slot = -1;  // back to WARM (host copy kept) or COLD; no write-back: weights are immutable
  u.state = u.host_slot >= 0 ? ExpertState::warm : ExpertState::cold;
}

std::optional<int32_t> ExpertStore::Impl::take_host_slot(std::optional<Due> incoming, bool speculative) {
  if (auto slot = host_pool_->take()) return slot;
  const auto victim = choose_victim(*host_policy_, [this](ExpertKey k) { return host_evictable(k); }, incoming, speculative);
  if (!victim) return std::nullopt;
  drop_host_copy(*victim);
  ++stats_.evictions_ram;
  return host_pool_->take();
}

std::optional<int32_t> ExpertStore::Impl::take_compute_slot(std::optional<Due> incoming, bool speculative) {
  if (auto slot = compute_pool_->take()) return slot;
  const auto victim = choose_victim(*compute_policy_, [this](ExpertKey k) { return compute_evictable(k); }, incoming, speculative);
  if (!victim) return std::nullopt;
  drop_compute_copy(*victim);
  ++stats_.evictions_compute;
  return compute_pool_->take();
}

// ---- what an expert still needs ------------------------------------------------------------------------

bool ExpertStore::Impl::satisfied(ExpertKey key, Tier target) const {
  const Unit& u = unit(key);
  if (u.state == ExpertState::hot || u.state == ExpertState::copying) return true;
  const bool coming = u.state != ExpertState::cold || u.read_queued;  // in RAM or on its way there
  return coming && (target == Tier::ram || u.wants_compute);
}

bool ExpertStore::Impl::advance(ExpertKey key, Tier target, Requester who) {
  Unit& u = unit(key);
  if (u.state == ExpertState::hot || u.state == ExpertState::copying) return false;
  if (u.state == ExpertState::cold && !u.read_queued) return true;  // a read first; call again once it is asked for
  if (target == Tier::compute) {
    u.wants_compute = true;  // a read in flight or queued is copied when it lands
    if (u.state == ExpertState::warm) queue_copy(key, who);
  }
  return false;
}

void ExpertStore::Impl::demand(ExpertKey key, Tier target, bool front) {
  if (advance(key, target, Requester::demand)) {
    request_read(key, front);
    advance(key, target, Requester::demand);
  } else if (front && unit(key).read_queued) {
    request_read(key, front);  // announced: to the front of the demand reads
  }
}

// ---- copies ----------------------------------------------------------------------------------------

void ExpertStore::Impl::queue_copy(ExpertKey key, Requester who) {
  Unit& u = unit(key);
  if (who == Requester::demand) {
    demand_copies_.push_back(key);
  } else if (!u.copy_queued) {
    u.copy_queued = true;
    pending_copies_.push_back(key);
  }
}

bool ExpertStore::Impl::start_copy(ExpertKey key, Requester who) {
  Unit& u = unit(key);
  // A prefetch's copy of an expert no prediction wants any more takes only unwanted slots.
  const bool demand = who == Requester::demand || u.demanded;
  const auto slot = demand ? take_compute_slot(std::nullopt) : take_compute_slot(due(key), !is_wanted(key));
  if (!slot) return false;
  u.compute_slot = *slot;
  u.wants_compute = false;  // the copy is under way
  if (zero_copy_) {  // the host slot is the compute copy: HOT at once
    promoted(key, *slot, "");
    progress_cv_.notify_all();
    return true;
  }
  u.state = ExpertState::copying;
  ++copies_in_flight_;
  CopyJob job;
  job.src = host_pool_->data(u.host_slot);
  job.src_dtype = manifest_.storage.dtype;
  job.dst = compute_pool_->data(*slot);
  job.dst_dtype = compute_pool_->dtype();
  job.elements = compute_pool_->elements();
  job.after = slot_last_use_[static_cast<size_t>(*slot)];
  const int32_t s = *slot;
  job.on_done = [this, key, s](const std::string& error) { copy_finished(key, s, error); };
  u.copy_event = engine_->copy(std::move(job));  // on_done locks mutex_: it cannot run before this returns
  return true;
}

void ExpertStore::Impl::pump_copies() {
  if (stopping_) return;
  const auto needs_copy = [this](ExpertKey key) {
    const Unit& u = unit(key);
    return u.state == ExpertState::warm && (u.demanded || u.wants_compute);
  };
  // Demand first; a copy that finds no free or evictable compute slot waits for the next pump.
  while (!demand_copies_.empty()) {
    if (!needs_copy(demand_copies_.front())) {
      demand_copies_.pop_front();
      continue;
    }
    if (!start_copy(demand_copies_.front(), Requester::demand)) return;
    demand_copies_.pop_front();
  }
  while (!pending_copies_.empty()) {
    const ExpertKey key = pending_copies_.front();
    if (needs_copy(key) && !start_copy(key, Requester::prefetch)) return;
    unit(key).copy_queued = false;
    pending_copies_.pop_front();
  }
}

void ExpertStore::Impl::copy_finished(ExpertKey key, int32_t slot, const std::string& error) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    --copies_in_flight_;
    prefetch_blocked_ = false;
    if (error.empty()) {
      ++stats_.copies;
      stats_.copy_bytes += static_cast<int64_t>(manifest_.expert_bytes());
    }
    promoted(key, slot, error);
    pump_copies();
    wake_readers();  // its host copy may be evictable now
  }
  progress_cv_.notify_all();
}

void ExpertStore::Impl::promoted(ExpertKey key, int32_t slot, const std::string& error) {
  Unit& u = unit(key);
  if (error.empty()) {
    u.state = ExpertState::hot;
    compute_policy_->insert(key);
    u.wants_compute = false;
    if (u.demanded) {  // pinned on behalf of the waiting acquire(), so nothing evicts it first
      ++u.pins;
      u.demanded = false;
    }
  } else {
    compute_pool_->put(slot);
    u.compute_slot = -1;
    u.state = u.host_slot >= 0 ? ExpertState::warm : ExpertState::cold;
    u.wants_compute = false;
    u.demanded = false;
    ++u.failures;
    u.error = cat("copy of expert ", key.name(), " failed: ", error);
  }
}

void ExpertStore::Impl::wake_readers() {
  if (demand_reads_.empty() && cluster_reads_.empty() && queue_.empty()) return;  // nothing to read: let them sleep
  work_cv_.notify_one();  // a reader that takes a job wakes the next one (next_read)
}

bool ExpertStore::Impl::idle_locked() const {
  // Blocked speculative reads (the rest of a cluster, prefetches) wait for a change: idle.
  return demand_reads_.empty() && ((cluster_reads_.empty() && queue_.empty()) || prefetch_blocked_) && reads_in_flight_ == 0 &&
         copies_in_flight_ == 0;
}

// ---- the ExpertSource side ---------------------------------------------------------------------------

std::vector<std::optional<ExpertWeights>> ExpertStore::acquire(int64_t layer, const std::vector<int64_t>& experts) {
  return impl_->acquire(layer, experts);
}
void ExpertStore::release(int64_t layer) { impl_->release(layer); }
void ExpertStore::announce(int64_t layer, const std::vector<int64_t>& experts) { impl_->announce(layer, experts); }

std::vector<std::optional<ExpertWeights>> ExpertStore::Impl::acquire(int64_t layer, const std::vector<int64_t>& experts) {
  std::vector<ExpertKey> keys;
  for (size_t i = 0; i < experts.size(); ++i) {
    keys.push_back(checked_key(layer, experts[i], "acquire"));
    if (i > 0 && experts[i] <= experts[i - 1]) throw InvalidArgument(cat("expert store acquire: experts of layer ", layer, " must be ascending and unique"));
  }
  std::vector<std::optional<ExpertWeights>> result(keys.size());
  if (keys.empty()) return result;
  std::unique_lock<std::mutex> lock(mutex_);
  enter_layer(layer);
  const int64_t batch = max_batch();
  if (pinned_ + static_cast<int64_t>(keys.size()) > compute_pool_->count())
    throw InvalidArgument(cat("expert store acquire: layer ", layer, " asks for ", keys.size(), " experts while ", pinned_,
                              " are held; at most max_batch() = ", batch, " may be held at once"));
  const bool wait = config_.miss_policy == MissPolicy::wait;
  std::vector<bool> mine(keys.size(), false);
  std::vector<int64_t> failures(keys.size(), 0);
  for (size_t i = 0; i < keys.size(); ++i) {
    const ExpertKey key = keys[i];
    Unit& u = unit(key);
    const ExpertState s = u.state;
    if (s == ExpertState::hot) ++stats_.hits;
    else if (s == ExpertState::warm || s == ExpertState::copying) ++stats_.warm_hits;
    else ++stats_.cold_misses;
    host_policy_->touch(key);
    compute_policy_->touch(key);
    if (s == ExpertState::hot) {
      ++u.pins;
      mine[i] = true;
      continue;
    }
    failures[i] = u.failures;
    if (wait) u.demanded = true;
    else ++stats_.fallbacks;
    demand(key, Tier::compute, /*front=*/true);
  }
  pump_copies();

  if (wait) {
    const Stopwatch stall;
    bool waited = false;
    while (true) {
      // First collect what copy_finished pinned for us, so an error below releases exactly that.
      for (size_t i = 0; i < keys.size(); ++i)
        if (!mine[i] && !unit(keys[i]).demanded && unit(keys[i]).state == ExpertState::hot) mine[i] = true;
      ReadyEventPtr event;
      bool done = true;
      for (size_t i = 0; i < keys.size(); ++i) {
        if (mine[i]) continue;
        Unit& u = unit(keys[i]);
        if (u.failures > failures[i] || stopping_) {
          const std::string error = stopping_ ? std::string("expert store closed") : u.error;
          for (size_t j = 0; j < keys.size(); ++j) {
            Unit& v = unit(keys[j]);
            if (mine[j]) --v.pins;
            else v.demanded = false;
          }
          stats_.stall_seconds += stall.seconds();
          pump_copies();
          throw IoError(cat("expert store: layer ", layer, " expert ", keys[i].expert, ": ", error));
        }
        done = false;
        if (!event) {
          if (u.state == ExpertState::reading) event = u.read_event;
          else if (u.state == ExpertState::copying) event = u.copy_event;
        }
      }
      if (done) break;
      waited = true;
      if (event) {
        lock.unlock();
        event->wait();
        lock.lock();
      } else {
        progress_cv_.wait(lock);
      }
    }
    if (waited) stats_.stall_seconds += stall.seconds();
  }

  auto& held = acquired_[layer];
  for (size_t i = 0; i < keys.size(); ++i) {
    if (!mine[i]) continue;
    held.push_back(keys[i]);
    ++pinned_;
    const Unit& u = unit(keys[i]);
    result[i] = zero_copy_ ? host_weights_[static_cast<size_t>(u.host_slot)] : compute_pool_->weights(u.compute_slot);
  }
  return result;
}

void ExpertStore::Impl::release(int64_t layer) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = acquired_.find(layer);
    if (it == acquired_.end()) return;
    for (ExpertKey key : it->second) {
      Unit& u = unit(key);
      --u.pins;
      --pinned_;
      slot_last_use_[static_cast<size_t>(u.compute_slot)] = engine_->record_use();
    }
    acquired_.erase(it);
    prefetch_blocked_ = false;
    pump_copies();
    wake_readers();  // with zero copy, their host slots are evictable again
  }
  progress_cv_.notify_all();
}

void ExpertStore::Impl::announce(int64_t layer, const std::vector<int64_t>& experts) {
  std::vector<ExpertKey> keys;
  for (int64_t e : experts) keys.push_back(checked_key(layer, e, "announce"));
  {
    std::lock_guard<std::mutex> lock(mutex_);
    enter_layer(layer);
    const size_t batch = static_cast<size_t>(max_batch());
    for (size_t i = 0; i < keys.size(); ++i) {
      // The first batch is what the layer acquires first: bring it to compute; the rest to RAM.
      demand(keys[i], i < batch ? Tier::compute : Tier::ram, /*front=*/false);
    }
    pump_copies();
  }
}

}  // namespace chronos
