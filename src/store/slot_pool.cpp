#include "store/slot_pool.h"

#include <ATen/ATen.h>

#include <algorithm>

#include "chronos/core/error.h"

namespace chronos {

SlotFreeList::SlotFreeList(int64_t count, uint64_t slot_bytes) : slot_bytes_(slot_bytes), taken_(static_cast<size_t>(std::max<int64_t>(count, 0)), false) {
  for (int64_t s = count - 1; s >= 0; --s) free_.push_back(static_cast<int32_t>(s));
}

std::optional<int32_t> SlotFreeList::take() {
  if (free_.empty()) return std::nullopt;
  const int32_t slot = free_.back();
  free_.pop_back();
  taken_[static_cast<size_t>(slot)] = true;
  high_water_ = std::max(high_water_, ++in_use_);
  return slot;
}

void SlotFreeList::put(int32_t slot) {
  if (slot < 0 || slot >= count() || !taken_[static_cast<size_t>(slot)])
    throw InvalidArgument(cat("slot pool: slot ", slot, " is not in use"));
  taken_[static_cast<size_t>(slot)] = false;
  --in_use_;
  // Keep the stack ordered so the lowest free slot is reused first (deterministic placement).
  free_.insert(std::upper_bound(free_.begin(), free_.end(), slot, std::greater<int32_t>()), slot);
}

uint64_t compute_slot_bytes(int64_t hidden, int64_t intermediate, c10::ScalarType dtype) {
  return 3 * static_cast<uint64_t>(hidden) * static_cast<uint64_t>(intermediate) * c10::elementSize(dtype);
}

HostSlotPool::HostSlotPool(TransferEngine& engine, int64_t budget_bytes, uint64_t slot_bytes)
    : SlotFreeList(slot_bytes == 0 ? 0 : budget_bytes / static_cast<int64_t>(slot_bytes), slot_bytes),
      memory_(nullptr, [](void*) {}) {
  if (slot_bytes == 0 || slot_bytes % 4096 != 0) throw InvalidArgument(cat("host slot size ", slot_bytes, " is not a multiple of 4096"));
  if (count() > 0) memory_ = engine.allocate_host(static_cast<size_t>(count()) * slot_bytes);
}

ComputeSlotPool::ComputeSlotPool(int64_t budget_bytes, uint64_t slot_bytes)
    : SlotFreeList(slot_bytes == 0 ? 0 : budget_bytes / static_cast<int64_t>(slot_bytes), slot_bytes), elements_(0), dtype_(c10::kByte) {}

ComputeSlotPool::ComputeSlotPool(TransferEngine& engine, int64_t budget_bytes, int64_t hidden, int64_t intermediate, c10::ScalarType dtype)
    : SlotFreeList(budget_bytes / static_cast<int64_t>(compute_slot_bytes(hidden, intermediate, dtype)),
                   compute_slot_bytes(hidden, intermediate, dtype)),
      elements_(3 * hidden * intermediate), dtype_(dtype) {
  if (count() == 0) return;
  memory_ = engine.allocate_compute(count(), elements_, dtype);
  const int64_t block = hidden * intermediate;
  for (int64_t s = 0; s < count(); ++s) {
    const at::Tensor slot = memory_[s];
    data_.push_back(slot.data_ptr());
    weights_.push_back({slot.narrow(0, 0, block).view({intermediate, hidden}), slot.narrow(0, block, block).view({intermediate, hidden}),
                        slot.narrow(0, 2 * block, block).view({hidden, intermediate})});
  }
}

}  // namespace chronos
