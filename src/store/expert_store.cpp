#include "chronos/store/expert_store.h"

#include <algorithm>
#include <utility>

#include "chronos/core/dtype.h"
#include "chronos/core/error.h"
#include "chronos/core/log.h"
#include "chronos/core/timing.h"
#include "store/expert_store_unit.h"

namespace chronos {

// The per-expert record (Unit) is in expert_store_unit.h; reads and prefetch in expert_store_reads.cpp.

ExpertStore::Unit& ExpertStore::unit(ExpertKey key) { return units_[static_cast<size_t>(key.index(num_experts_))]; }
const ExpertStore::Unit& ExpertStore::unit(ExpertKey key) const { return units_[static_cast<size_t>(key.index(num_experts_))]; }

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

ExpertStore::ExpertStore(const OffloadConfig& config, const ModelConfig& model) : ExpertStore(config, model, read_validated(config)) {}

ExpertStore::ExpertStore(const OffloadConfig& config, const ModelConfig& model, ClusterManifest manifest)
    : config_(config), queue_(static_cast<size_t>(std::max<int64_t>(config.prefetch_queue_capacity, 1))) {
  config_.validate();
  config_.throttle = SsdThrottle::from_env(config_.throttle);
  if (!model.use_moe) throw ConfigError("expert store: the model has no routed experts (use_moe is false)");
  check_compute_dtype(config_.device, config_.compute_dtype);
  const std::string& dir = config_.cache_dir;
  manifest_ = std::move(manifest);
  check_manifest_matches(manifest_, model, dir);
  verify_cluster_files(manifest_, dir, config_.verify);
  where_ = index_experts(manifest_);
  num_layers_ = manifest_.num_layers;
  num_experts_ = manifest_.num_experts;

  const bool quantized = manifest_.storage.is_quantized();
  if (quantized && !(config_.device.is_cpu() && config_.zero_copy))
    throw ConfigError(cat(dir, "/cluster_manifest.json: ", manifest_.storage.name(), " experts are computed in place from host RAM on the CPU (",
                          config_.device.is_cpu() ? "offload.zero_copy is off" : "a GPU compute tier for quantized experts is not built yet",
                          "); repack with chronos-pack --dtype fp32, fp16 or bf16"));
  const uint64_t host_slot = manifest_.clusters.front().experts.front().read_length();
  const uint64_t compute_slot = manifest_.compute_expert_bytes(config_.compute_dtype);
  if (static_cast<uint64_t>(config_.ram_budget_bytes) < host_slot)
    throw ConfigError(cat("offload.ram_budget_bytes must hold at least one expert (", host_slot, " bytes; got ", config_.ram_budget_bytes, ")"));
  if (static_cast<uint64_t>(config_.compute_budget_bytes) < compute_slot)
    throw ConfigError(cat("offload.compute_budget_bytes must hold at least one expert (", compute_slot, " bytes in ",
                          quantized ? manifest_.storage.name() : dtype_name(config_.compute_dtype), "; got ", config_.compute_budget_bytes, ")"));

  engine_ = make_transfer_engine(config_.device);
  zero_copy_ = config_.zero_copy && config_.device.is_cpu() && (quantized || manifest_.storage.dtype == config_.compute_dtype);
  host_pool_ = std::make_unique<HostSlotPool>(*engine_, config_.ram_budget_bytes, host_slot);
  compute_pool_ = zero_copy_ ? std::make_unique<ComputeSlotPool>(config_.compute_budget_bytes, compute_slot)
                             : std::make_unique<ComputeSlotPool>(*engine_, config_.compute_budget_bytes, manifest_.hidden_size,
                                                                 manifest_.moe_intermediate_size, config_.compute_dtype);
  if (zero_copy_) {
    // Views of each host slot as gate | up | down, as laid out in the file (quantized: uint8 rows).
    const int64_t H = manifest_.hidden_size, I = manifest_.moe_intermediate_size;
    const std::vector<int64_t> in_shape = manifest_.storage.stored_shape(I, H), out_shape = manifest_.storage.stored_shape(H, I);
    const int64_t in = in_shape[0] * in_shape[1], out = out_shape[0] * out_shape[1];
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
  slot_last_use_.assign(static_cast<size_t>(compute_pool_->count()), ReadyEvent::make_done());

  std::vector<std::unique_ptr<SsdFile>> files;
  for (const ClusterFile& cluster : manifest_.clusters) files.push_back(std::make_unique<SsdFile>(dir + "/" + cluster.file));
  io_ = std::make_unique<IoPool>(std::move(files), config_.io_threads, config_.throttle, static_cast<ReadScheduler&>(*this));
  log::info(cat("expert store: ", manifest_.clusters.size(), " cluster files, ", num_layers_ * num_experts_, " experts of ",
                manifest_.expert_bytes(), " bytes; RAM ", ram_slots(), " slots, compute ", compute_slots(), " slots (",
                config_.device.str(), ", ", dtype_name(config_.compute_dtype), "); ", config_.io_threads, " I/O threads, ",
                direct_io() ? "O_DIRECT" : "buffered reads", zero_copy_ ? ", zero copy" : "", "; miss policy ", to_string(config_.miss_policy),
                config_.throttle.enabled() ? cat("; simulated SSD ", config_.throttle.latency_ms, " ms, ", config_.throttle.mbps, " MB/s") : ""));
}

ExpertStore::~ExpertStore() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  progress_cv_.notify_all();
  io_->stop();         // readers finish their current read (throttle sleeps are cut short) and exit
  engine_->shutdown();  // queued copies complete as failed through copy_finished
  std::vector<ReadyEventPtr> pending;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const Unit& u : units_) {
      if (u.read_event && !u.read_event->ready()) pending.push_back(u.read_event);
      if (u.copy_event && !u.copy_event->ready()) pending.push_back(u.copy_event);
    }
  }
  for (auto& event : pending) event->set_failed("expert store closed");
}

bool ExpertStore::direct_io() const {
  for (size_t f = 0; f < io_->num_files(); ++f)
    if (!io_->file(static_cast<int32_t>(f)).direct()) return false;
  return true;
}

size_t ExpertStore::max_batch() const { return static_cast<size_t>(std::min<int64_t>(compute_slots(), num_experts_)); }

ExpertKey ExpertStore::checked_key(int64_t layer, int64_t expert, const char* what) const {
  if (layer < 0 || layer >= num_layers_ || expert < 0 || expert >= num_experts_)
    throw InvalidArgument(cat("expert store ", what, ": expert (layer ", layer, ", expert ", expert, ") is outside the model (",
                              num_layers_, " layers, ", num_experts_, " experts)"));
  return {static_cast<int32_t>(layer), static_cast<int32_t>(expert)};
}

// ---- states and slots (under mutex_) ---------------------------------------------------------------

ExpertState ExpertStore::state_locked(ExpertKey key) const {
  const Unit& u = unit(key);
  if (u.compute_slot >= 0) return u.copying ? ExpertState::copying : ExpertState::hot;
  if (u.host_slot >= 0) return u.reading ? ExpertState::reading : ExpertState::warm;
  return ExpertState::cold;
}

ExpertState ExpertStore::state(ExpertKey key) const {
  checked_key(key.layer, key.expert, "state");
  std::lock_guard<std::mutex> lock(mutex_);
  return state_locked(key);
}

bool ExpertStore::host_evictable(ExpertKey key) const {
  const Unit& u = unit(key);
  // Not while read into or copied from, nor while acquire() waits for its copy to compute; with
  // zero copy, not while the model holds it (its host slot is its compute copy).
  return u.host_slot >= 0 && !u.reading && !u.copying && !(u.demanded && u.compute_slot < 0) &&
         !(zero_copy_ && u.compute_slot >= 0 && u.pins > 0);
}

bool ExpertStore::compute_evictable(ExpertKey key) const {
  const Unit& u = unit(key);
  return u.compute_slot >= 0 && !u.copying && u.pins == 0;
}

bool ExpertStore::is_wanted(ExpertKey key) const {
  const int64_t until = unit(key).wanted_until;
  return until > step_ || (until == step_ && key.layer >= layer_);
}

void ExpertStore::enter_layer(int64_t layer) {
  if (layer == layer_) return;
  layer_ = layer;  // the experts of the layers behind are no longer wanted for this step
  prefetch_blocked_ = false;
  work_cv_.notify_all();
}

void ExpertStore::drop_host_copy(ExpertKey key) {
  Unit& u = unit(key);
  host_pool_->put(u.host_slot);
  host_policy_->erase(key);
  u.host_slot = -1;
  if (zero_copy_ && u.compute_slot >= 0) {  // its compute copy was that host slot
    compute_pool_->put(u.compute_slot);
    compute_policy_->erase(key);
    u.compute_slot = -1;
  }
  if (u.compute_slot < 0) u.wants_compute = false;  // nothing left to copy from
}

std::optional<int32_t> ExpertStore::take_host_slot(bool demand) {
  if (auto slot = host_pool_->take()) return slot;
  auto victim = host_policy_->victim([this](ExpertKey k) { return host_evictable(k) && !is_wanted(k); });
  if (!victim && demand) victim = host_policy_->victim([this](ExpertKey k) { return host_evictable(k); });
  if (!victim) return std::nullopt;
  drop_host_copy(*victim);
  ++stats_.evictions_ram;
  return host_pool_->take();
}

std::optional<int32_t> ExpertStore::take_compute_slot(bool demand) {
  if (auto slot = compute_pool_->take()) return slot;
  auto victim = compute_policy_->victim([this](ExpertKey k) { return compute_evictable(k) && !is_wanted(k); });
  if (!victim && demand) victim = compute_policy_->victim([this](ExpertKey k) { return compute_evictable(k); });
  if (!victim) return std::nullopt;
  Unit& u = unit(*victim);
  compute_pool_->put(u.compute_slot);
  compute_policy_->erase(*victim);
  u.compute_slot = -1;  // back to WARM (host copy kept) or COLD; no write-back: weights are immutable
  ++stats_.evictions_compute;
  return compute_pool_->take();
}


// ---- copies ----------------------------------------------------------------------------------------

bool ExpertStore::start_copy(ExpertKey key, bool demand) {
  Unit& u = unit(key);
  const auto slot = take_compute_slot(demand);
  if (!slot) return false;
  u.compute_slot = *slot;
  if (zero_copy_) {  // the host slot is the compute copy: HOT at once
    promoted(key, *slot, "");
    progress_cv_.notify_all();
    return true;
  }
  u.copying = true;
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

void ExpertStore::pump_copies() {
  if (stopping_) return;
  const auto needs_copy = [this](ExpertKey key) {
    const Unit& u = unit(key);
    return u.host_slot >= 0 && !u.reading && u.compute_slot < 0 && (u.demanded || u.wants_compute);
  };
  // Demand first; a copy that finds no free or evictable compute slot waits for the next pump.
  while (!demand_copies_.empty()) {
    if (!needs_copy(demand_copies_.front())) {
      demand_copies_.pop_front();
      continue;
    }
    if (!start_copy(demand_copies_.front(), /*demand=*/true)) return;
    demand_copies_.pop_front();
  }
  while (!pending_copies_.empty()) {
    const ExpertKey key = pending_copies_.front();
    if (!needs_copy(key)) {
      unit(key).copy_queued = false;
      pending_copies_.pop_front();
      continue;
    }
    if (!start_copy(key, /*demand=*/false)) return;
    unit(key).copy_queued = false;
    pending_copies_.pop_front();
  }
}

void ExpertStore::copy_finished(ExpertKey key, int32_t slot, const std::string& error) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    unit(key).copying = false;
    --copies_in_flight_;
    prefetch_blocked_ = false;
    if (error.empty()) {
      ++stats_.copies;
      stats_.copy_bytes += static_cast<int64_t>(manifest_.expert_bytes());
    }
    promoted(key, slot, error);
    pump_copies();
  }
  progress_cv_.notify_all();
  work_cv_.notify_all();  // its host copy may be evictable now
}

void ExpertStore::promoted(ExpertKey key, int32_t slot, const std::string& error) {
  Unit& u = unit(key);
  if (error.empty()) {
    compute_policy_->insert(key);
    u.wants_compute = false;
    if (u.demanded) {  // pinned on behalf of the waiting acquire(), so nothing evicts it first
      ++u.pins;
      u.demanded = false;
    }
  } else {
    compute_pool_->put(slot);
    u.compute_slot = -1;
    u.wants_compute = false;
    u.demanded = false;
    ++u.failures;
    u.error = cat("copy of expert ", key.name(), " failed: ", error);
  }
}

// ---- the ExpertSource side ---------------------------------------------------------------------------

std::vector<std::optional<ExpertWeights>> ExpertStore::acquire(int64_t layer, const std::vector<int64_t>& experts) {
  std::vector<ExpertKey> keys;
  for (size_t i = 0; i < experts.size(); ++i) {
    keys.push_back(checked_key(layer, experts[i], "acquire"));
    if (i > 0 && experts[i] <= experts[i - 1]) throw InvalidArgument(cat("expert store acquire: experts of layer ", layer, " must be ascending and unique"));
  }
  std::vector<std::optional<ExpertWeights>> result(keys.size());
  if (keys.empty()) return result;
  std::unique_lock<std::mutex> lock(mutex_);
  enter_layer(layer);
  if (pinned_ + static_cast<int64_t>(keys.size()) > compute_slots())
    throw InvalidArgument(cat("expert store acquire: layer ", layer, " asks for ", keys.size(), " experts while ", pinned_,
                              " are held; at most max_batch() = ", max_batch(), " may be held at once"));
  const bool wait = config_.miss_policy == MissPolicy::wait;
  std::vector<bool> mine(keys.size(), false);
  std::vector<int64_t> failures(keys.size(), 0);
  for (size_t i = 0; i < keys.size(); ++i) {
    const ExpertKey key = keys[i];
    Unit& u = unit(key);
    const ExpertState s = state_locked(key);
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
    u.wants_compute = true;
    if (s == ExpertState::warm) {
      demand_copies_.push_back(key);
    } else if (s == ExpertState::cold) {
      request_read(key, /*front=*/true);
    }
  }
  pump_copies();

  if (wait) {
    const Stopwatch stall;
    bool waited = false;
    while (true) {
      // First collect what copy_finished pinned for us, so an error below releases exactly that.
      for (size_t i = 0; i < keys.size(); ++i)
        if (!mine[i] && !unit(keys[i]).demanded && state_locked(keys[i]) == ExpertState::hot) mine[i] = true;
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
        if (!event) event = u.reading ? u.read_event : u.copying ? u.copy_event : nullptr;
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

void ExpertStore::release(int64_t layer) {
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
  }
  progress_cv_.notify_all();
  work_cv_.notify_all();  // with zero copy, their host slots are evictable again
}

void ExpertStore::announce(int64_t layer, const std::vector<int64_t>& experts) {
  std::vector<ExpertKey> keys;
  for (int64_t e : experts) keys.push_back(checked_key(layer, e, "announce"));
  {
    std::lock_guard<std::mutex> lock(mutex_);
    enter_layer(layer);
    const size_t batch = max_batch();
    for (size_t i = 0; i < keys.size(); ++i) {
      Unit& u = unit(keys[i]);
      const ExpertState s = state_locked(keys[i]);
      if (s == ExpertState::hot || s == ExpertState::copying) continue;
      // The first batch is what the layer acquires first: bring it to compute; the rest to RAM.
      if (i < batch) {
        u.wants_compute = true;
        if (s == ExpertState::warm) demand_copies_.push_back(keys[i]);
      }
      if (s == ExpertState::cold) request_read(keys[i], /*front=*/false);
    }
    pump_copies();
  }
}

bool ExpertStore::idle_locked() const {
  return demand_reads_.empty() && cluster_reads_.empty() && (queue_.empty() || prefetch_blocked_) && reads_in_flight_ == 0 &&
         copies_in_flight_ == 0;
}

bool ExpertStore::wait_idle(double seconds) const {
  std::unique_lock<std::mutex> lock(mutex_);
  return progress_cv_.wait_for(lock, std::chrono::duration<double>(seconds), [&] { return idle_locked() || stopping_; });
}

StoreStats ExpertStore::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  StoreStats s = stats_;
  s.ram_high_water_bytes = host_pool_->high_water_bytes();
  s.compute_high_water_bytes = compute_pool_->high_water_bytes();
  return s;
}

void ExpertStore::reset_stats() {
  std::lock_guard<std::mutex> lock(mutex_);
  stats_ = StoreStats{};
  host_pool_->reset_high_water();
  compute_pool_->reset_high_water();
}

}  // namespace chronos
