#include "runtime/staging_pool.h"

#include <cstdlib>

#include "common/log.h"
#include "common/units.h"

namespace tiercache {

StagingPool::StagingPool(std::shared_ptr<Device> device, uint64_t slot_bytes)
    : device_(std::move(device)), slot_bytes_(slot_bytes) {}

Result<std::unique_ptr<StagingPool>> StagingPool::Create(std::shared_ptr<Device> device,
                                                         Tier* dram, bool dram_pinned,
                                                         uint64_t slot_bytes, int slots,
                                                         uint64_t side_bytes) {
  if (device == nullptr) return Status::InvalidArgument("staging: null device");
  if (slot_bytes == 0 || slots < 1) {
    return Status::InvalidArgument("staging: needs at least one slot of at least one byte");
  }
  slot_bytes = AlignUp(slot_bytes, 4 * kKiB);
  std::unique_ptr<StagingPool> pool(new StagingPool(device, slot_bytes));
  const uint64_t total = slot_bytes * static_cast<uint64_t>(slots);

  if (dram != nullptr) {
    Result<Extent> extent = dram->Allocate(total);
    if (extent.ok() && dram->HostAddress(*extent) != nullptr) {
      pool->dram_ = dram;
      pool->extent_ = *extent;
      pool->base_ = static_cast<unsigned char*>(dram->HostAddress(*extent));
      pool->pinned_ = dram_pinned;
    } else if (extent.ok()) {
      (void)dram->Free(*extent);
    }
  }
  if (pool->base_ == nullptr) {
    void* memory = std::aligned_alloc(4 * kKiB, total);
    if (memory == nullptr) {
      return Status::OutOfMemory("staging: cannot allocate " + FormatBytes(total));
    }
    pool->base_ = static_cast<unsigned char*>(memory);
    pool->owns_memory_ = true;
  }
  if (!pool->pinned_) {
    Status s = device->RegisterHost(pool->base_, total);
    if (s.ok()) {
      pool->registered_ = pool->pinned_ = true;
    } else {
      RecordFallback("pinned_host", "staging ring not registered: " + s.ToString());
    }
  }
  if (side_bytes > 0) {
    pool->side_bytes_ = AlignUp(side_bytes, 4 * kKiB);
    const uint64_t side_total = pool->side_bytes_ * static_cast<uint64_t>(slots);
    pool->side_ = static_cast<unsigned char*>(std::aligned_alloc(4 * kKiB, side_total));
    if (pool->side_ == nullptr) {
      return Status::OutOfMemory("staging: cannot allocate " + FormatBytes(side_total));
    }
    // Unpinned, its small copies are slower, never wrong.
    pool->side_registered_ = device->RegisterHost(pool->side_, side_total).ok();
  }
  for (int i = 0; i < slots; ++i) {
    Slot slot;
    slot.data = pool->base_ + slot_bytes * static_cast<uint64_t>(i);
    if (pool->side_ != nullptr) slot.side = pool->side_ + pool->side_bytes_ * static_cast<uint64_t>(i);
    slot.index = i;
    TC_ASSIGN_OR_RETURN(slot.event, device->CreateEvent());
    pool->slots_.push_back(slot);
  }
  return pool;
}

StagingPool::~StagingPool() {
  for (Slot& slot : slots_) {
    if (slot.event_pending) (void)device_->EventSynchronize(slot.event);
    if (slot.event != nullptr) (void)device_->DestroyEvent(slot.event);
  }
  if (registered_) (void)device_->UnregisterHost(base_);
  if (side_registered_) (void)device_->UnregisterHost(side_);
  std::free(side_);
  if (owns_memory_) std::free(base_);
  if (dram_ != nullptr) (void)dram_->Free(extent_);
}

Result<StagingPool::Slot*> StagingPool::Acquire() {
  Slot* slot;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    slot = &slots_[next_];
    next_ = (next_ + 1) % slots_.size();
  }
  if (slot->event_pending) {
    TC_RETURN_IF_ERROR(device_->EventSynchronize(slot->event));
    slot->event_pending = false;
  }
  return slot;
}

void StagingPool::Release(Slot* slot, bool recorded) {
  if (recorded) slot->event_pending = true;
}

}  // namespace tiercache
