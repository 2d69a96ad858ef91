// The expert store's two fixed slot pools, allocated once when the store opens and never resized
// (docs/offload.md "Expert store"): the host pool (WARM tier) holds experts as read from the cluster file,
// one 4 KiB-aligned slot of ExpertRange::read_length bytes each; the compute pool (HOT tier) holds
// gate|up|down contiguously in the compute dtype on the compute device. The slot count is the
// budget divided by the slot size, so a pool can never exceed its budget; the pools also track
// the high-water mark of bytes in use. Memory comes from the TransferEngine (pinned host memory
// and device memory on CUDA). Not thread-safe: the store calls them under its lock.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <optional>
#include <vector>

#include "chronos/model/feed_forward.h"
#include "chronos/store/transfer_engine.h"

namespace chronos {

// Which slots are free, with the in-use high-water mark.
class SlotFreeList {
 public:
  SlotFreeList(int64_t count, uint64_t slot_bytes);
  // A free slot (the lowest-numbered one), or none.
  std::optional<int32_t> take();
  void put(int32_t slot);  // throws InvalidArgument on a slot that is not taken
  int64_t count() const { return static_cast<int64_t>(taken_.size()); }
  int64_t in_use() const { return in_use_; }
  uint64_t slot_bytes() const { return slot_bytes_; }
  int64_t bytes_in_use() const { return in_use_ * static_cast<int64_t>(slot_bytes_); }
  int64_t high_water_bytes() const { return high_water_ * static_cast<int64_t>(slot_bytes_); }
  void reset_high_water() { high_water_ = in_use_; }

 private:
  uint64_t slot_bytes_;
  std::vector<bool> taken_;
  std::vector<int32_t> free_;  // a stack, lowest slot on top
  int64_t in_use_ = 0, high_water_ = 0;
};

class HostSlotPool : public SlotFreeList {
 public:
  // floor(budget_bytes / slot_bytes) slots; slot_bytes must be a multiple of 4 KiB.
  HostSlotPool(TransferEngine& engine, int64_t budget_bytes, uint64_t slot_bytes);
  void* data(int32_t slot) const { return static_cast<char*>(memory_.get()) + static_cast<size_t>(slot) * slot_bytes(); }

 private:
  HostMemory memory_;
};

class ComputeSlotPool : public SlotFreeList {
 public:
  // floor(budget_bytes / (3 * I * H * element size)) slots of [gate I x H | up I x H | down H x I].
  ComputeSlotPool(TransferEngine& engine, int64_t budget_bytes, int64_t hidden, int64_t intermediate, c10::ScalarType dtype);
  // A pool that only counts floor(budget_bytes / slot_bytes) slots and holds no memory (zero copy:
  // the store serves host slots, in any storage format): data() and weights() must not be called.
  ComputeSlotPool(int64_t budget_bytes, uint64_t slot_bytes);
  void* data(int32_t slot) const { return data_[static_cast<size_t>(slot)]; }
  // Views of the slot as the expert's three weights (valid while the pool lives).
  const ExpertWeights& weights(int32_t slot) const { return weights_[static_cast<size_t>(slot)]; }
  int64_t elements() const { return elements_; }
  c10::ScalarType dtype() const { return dtype_; }

 private:
  int64_t elements_;
  c10::ScalarType dtype_;
  at::Tensor memory_;  // [count, elements]
  std::vector<void*> data_;
  std::vector<ExpertWeights> weights_;
};

// Slot size of an expert of H x I in `dtype` (3 * H * I * element size).
uint64_t compute_slot_bytes(int64_t hidden, int64_t intermediate, c10::ScalarType dtype);

}  // namespace chronos
