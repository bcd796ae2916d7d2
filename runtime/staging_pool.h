// StagingPool: a ring of pinned host buffers through which data that cannot
// be DMA'd from where it lives reaches the GPU (NVMe reads, PMEM and other
// file-backed mappings, which cudaHostRegister refuses), and device data
// reaches such tiers.
//
// The ring is one region, registered with the device exactly once
// (Device::RegisterHost costs ~38 ms/GiB, so never per transfer). It comes
// from the DRAM tier when one is given, so it sits on the GPU's NUMA node;
// when that tier is already pinned it is not registered again. Without a
// DRAM tier the pool allocates page-aligned memory itself. If registration
// is refused, the pool still works from unpinned memory and records the
// "pinned_host" fallback.
//
// A slot may carry a small side area (`side_bytes`, pinned memory of its
// own, outside the DRAM tier) that lives and is reused with the slot: the
// staged encoded path puts the directory entries of a slot's records there.
//
// Each slot carries the event recorded after the last device copy that used
// it; Acquire() returns slots round-robin and waits for that event on the
// host. Only the transfer engine's worker thread acquires slots, so that
// host wait never lies on an engine's acquire path.
//
// Thread safety: Acquire/Release may be called from any thread; the ring
// position is guarded, but slots are handed out in ring order, so at most
// slots() of them may be held at once (the transfer worker, the only user,
// holds at most slots() - 1). A slot belongs to its caller until Release.
#ifndef TIERCACHE_RUNTIME_STAGING_POOL_H_
#define TIERCACHE_RUNTIME_STAGING_POOL_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "alloc/device.h"
#include "common/status.h"
#include "tiers/tier.h"

namespace tiercache {

class StagingPool {
 public:
  struct Slot {
    unsigned char* data = nullptr;
    unsigned char* side = nullptr;  // side_bytes() of its own; null when 0
    Event event = nullptr;     // recorded after the slot's last device copy
    bool event_pending = false;
    int index = 0;
  };

  // `dram` may be null; `dram_pinned` says its memory is already registered.
  // `slot_bytes` and `side_bytes` are rounded up to 4 KiB (O_DIRECT
  // alignment).
  static Result<std::unique_ptr<StagingPool>> Create(std::shared_ptr<Device> device, Tier* dram,
                                                     bool dram_pinned, uint64_t slot_bytes,
                                                     int slots, uint64_t side_bytes = 0);
  ~StagingPool();

  // The next slot in ring order, once its previous copy has completed.
  Result<Slot*> Acquire();
  // `recorded`: the caller recorded slot->event after enqueueing a copy.
  void Release(Slot* slot, bool recorded);

  uint64_t slot_bytes() const { return slot_bytes_; }
  uint64_t side_bytes() const { return side_bytes_; }
  int slots() const { return static_cast<int>(slots_.size()); }
  bool pinned() const { return pinned_; }
  // The whole ring, for Tier::RegisterBuffer (io_uring fixed buffers).
  void* base() const { return base_; }
  uint64_t bytes() const { return slot_bytes_ * slots_.size(); }

 private:
  StagingPool(std::shared_ptr<Device> device, uint64_t slot_bytes);

  std::shared_ptr<Device> device_;
  const uint64_t slot_bytes_;
  Tier* dram_ = nullptr;
  Extent extent_;             // when carved from the DRAM tier
  unsigned char* base_ = nullptr;
  bool owns_memory_ = false;  // allocated here (no DRAM tier)
  bool registered_ = false;   // registered here (must unregister)
  bool pinned_ = false;
  uint64_t side_bytes_ = 0;
  unsigned char* side_ = nullptr;  // the side areas, one allocation
  bool side_registered_ = false;

  std::mutex mutex_;
  std::vector<Slot> slots_;
  size_t next_ = 0;  // GUARDED_BY(mutex_)
};

}  // namespace tiercache

#endif  // TIERCACHE_RUNTIME_STAGING_POOL_H_
