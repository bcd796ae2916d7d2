// ActivationStore: activation offload for checkpointed training and long
// inference graphs.
//
// Save(ptr, bytes, stream) copies device memory to a host tier after the
// work enqueued on `stream` so far, asynchronously, and (by default) frees
// the device memory in the download stream's order, so the pool can reuse
// it only once the copy has read it. The copy goes to the DRAM tier
// (pinned: a direct DMA); when DRAM has no room it spills to the NVMe tier
// through the staging ring (checksummed per chunk). Restore(handle, stream)
// returns fresh device memory holding the bytes, valid in `stream`'s order
// (the stream waits on the upload's event; the host waits only for NVMe
// reads). PrefetchRestore(handles) starts uploads ahead, in the order given
// (backward runs in reverse), so a later Restore finds them done.
//
// With config activation_pending_bytes > 0, Save refuses (kBusy, nothing
// copied, the memory still the caller's) while saves not yet copied hold
// that many bytes or more, or would with this one: the caller keeps that
// tensor on the device. A save is never refused when none is pending.
//
// Ownership: device memory passed to Save with free_device belongs to the
// store from then on and must come from the runtime's DeviceAllocator.
// Memory returned by Restore belongs to the caller (free it with the
// allocator, on any stream). A handle is consumed by Restore or Discard.
//
// Thread safety: every method may be called from any thread.
#ifndef TIERCACHE_RUNTIME_ACTIVATION_STORE_H_
#define TIERCACHE_RUNTIME_ACTIVATION_STORE_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "runtime/block_cache.h"

namespace tiercache {

using ActivationHandle = uint64_t;

struct ActivationStoreStats {
  uint64_t saves = 0;
  uint64_t restores = 0;
  uint64_t prefetched_restores = 0;  // restores that found their upload already issued
  uint64_t spills = 0;               // saves that went to NVMe
  uint64_t live = 0;                 // handles not yet consumed
  uint64_t host_bytes = 0;           // bytes held in host tiers
  uint64_t refused_pending = 0;      // saves refused by activation_pending_bytes
};

class ActivationStore {
 public:
  // `cache` provides the transfer engine and the DRAM tier; `spill` (may be
  // null) is the NVMe tier, attached to the cache. Both must outlive the
  // store.
  static Result<std::unique_ptr<ActivationStore>> Create(BlockCache* cache,
                                                         DeviceAllocator* allocator, Tier* spill);
  ~ActivationStore();  // waits for transfers, frees what it holds

  Result<ActivationHandle> Save(void* device_ptr, uint64_t bytes, Stream stream,
                                bool free_device = true);
  // Makes `stream` wait until the save of `handle` has read its device
  // memory (the host waits only while a spill is still being enqueued).
  // What a caller that saved with free_device = false needs before it
  // reuses the memory. Returns the save's error if it failed.
  Status WaitSaved(ActivationHandle handle, Stream stream);
  Result<void*> Restore(ActivationHandle handle, Stream stream);
  Status PrefetchRestore(const std::vector<ActivationHandle>& handles);
  Status Discard(ActivationHandle handle);
  ActivationStoreStats stats() const;

 private:
  struct Entry;
  ActivationStore(BlockCache* cache, DeviceAllocator* allocator, Tier* spill);
  // Issues the upload of `entry` into new device memory. REQUIRES: mutex_.
  Status StartUploadLocked(Entry* entry);
  // Frees host space whose uploads have completed (and device memory whose
  // staged saves have); returns the bytes of live saves still copying.
  // REQUIRES: mutex_.
  uint64_t ReapLocked(bool wait);

  BlockCache* cache_;
  DeviceAllocator* allocator_;
  Tier* spill_;

  mutable std::mutex mutex_;
  ActivationHandle next_handle_ = 1;                                 // GUARDED_BY(mutex_)
  std::unordered_map<ActivationHandle, std::unique_ptr<Entry>> entries_;  // GUARDED_BY(mutex_)
  std::vector<std::unique_ptr<Entry>> retired_;  // consumed, upload may still read host space
  ActivationStoreStats stats_;                   // GUARDED_BY(mutex_)
};

}  // namespace tiercache

#endif  // TIERCACHE_RUNTIME_ACTIVATION_STORE_H_
