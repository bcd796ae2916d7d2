#include "runtime/activation_store.h"

#include "common/log.h"

namespace tiercache {

struct ActivationStore::Entry {
  uint64_t bytes = 0;
  HostLocation host;            // where the saved bytes live
  bool spilled = false;         // host is the NVMe tier (staged, checksummed)
  std::shared_ptr<TransferJob> save;
  std::vector<uint32_t> checksums;  // per chunk, written by the staged save
  // A staged save keeps the device memory until its bytes are safely in
  // the tier, so a failed write loses nothing.
  void* device_src = nullptr;
  void* device_dst = nullptr;   // the restore's memory, once issued
  std::shared_ptr<TransferJob> upload;
};

ActivationStore::ActivationStore(BlockCache* cache, DeviceAllocator* allocator, Tier* spill)
    : cache_(cache), allocator_(allocator), spill_(spill) {}

Result<std::unique_ptr<ActivationStore>> ActivationStore::Create(BlockCache* cache,
                                                                 DeviceAllocator* allocator,
                                                                 Tier* spill) {
  if (cache == nullptr || allocator == nullptr) {
    return Status::InvalidArgument("activations: null cache or allocator");
  }
  if (cache->dram() == nullptr && spill == nullptr) {
    return Status::InvalidArgument("activations: need a DRAM tier or a spill tier");
  }
  if (spill != nullptr && cache->StatsSlotOf(spill) < 0) {
    TC_RETURN_IF_ERROR(cache->AttachTier(spill, false));
  }
  return std::unique_ptr<ActivationStore>(new ActivationStore(cache, allocator, spill));
}

ActivationStore::~ActivationStore() {
  (void)cache_->transfer().Drain();
  std::lock_guard<std::mutex> lock(mutex_);
  auto release = [this](Entry& e) {
    if (e.device_src != nullptr) (void)allocator_->Free(e.device_src, nullptr);
    if (e.device_dst != nullptr) (void)allocator_->Free(e.device_dst, nullptr);
    (void)e.host.tier->Free(e.host.extent);
  };
  for (auto& [handle, entry] : entries_) release(*entry);
  for (auto& entry : retired_) {
    entry->device_dst = nullptr;  // handed to the engine
    release(*entry);
  }
}

Result<ActivationHandle> ActivationStore::Save(void* device_ptr, uint64_t bytes, Stream stream,
                                               bool free_device) {
  if (device_ptr == nullptr || bytes == 0) {
    return Status::InvalidArgument("activations: save needs a pointer and bytes > 0");
  }
  std::lock_guard<std::mutex> lock(mutex_);
  const uint64_t pending = ReapLocked(false);
  if (const uint64_t bound = cache_->config().activation_pending_bytes; bound > 0) {
    if (pending > 0 && pending + bytes > bound) {
      ++stats_.refused_pending;
      return Status::Busy("activations: " + std::to_string(pending) +
                          " bytes of saves still copying (activation_pending_bytes " +
                          std::to_string(bound) + "): keep this one on the device");
    }
  }
  auto entry = std::make_unique<Entry>();
  entry->bytes = bytes;
  Tier* dram = cache_->dram();
  Result<Extent> extent = dram != nullptr ? dram->Allocate(bytes)
                                          : Result<Extent>(Status::OutOfSpace("no DRAM tier"));
  Tier* tier = dram;
  if (!extent.ok() && spill_ != nullptr && cache_->config().activation_spill_to_nvme) {
    extent = spill_->Allocate(bytes);
    tier = spill_;
    entry->spilled = true;
  }
  if (!extent.ok()) {
    return Status::OutOfSpace("activations: no host tier has room for " + std::to_string(bytes) +
                              " bytes: " + extent.status().message());
  }
  const bool direct = tier == dram && cache_->dram_pinned();
  entry->host = HostLocation{tier, *extent, direct, cache_->StatsSlotOf(tier)};
  entry->save = cache_->transfer().Download(device_ptr, bytes, entry->host, stream,
                                            entry->spilled ? &entry->checksums : nullptr);
  if (entry->save->enqueued() && !entry->save->status().ok()) {
    Status failed = entry->save->status();
    (void)tier->Free(*extent);
    return failed;
  }
  if (free_device) {
    if (direct) {
      // The copies are on the download stream already: freeing in its
      // order lets the pool reuse the memory only after they have read it.
      Status s = allocator_->Free(device_ptr, cache_->transfer().download_stream());
      if (!s.ok()) TC_LOG_WARN("activations: free after save: %s", s.ToString().c_str());
    } else {
      entry->device_src = device_ptr;  // freed once the staged save has succeeded
    }
  }
  ++stats_.saves;
  stats_.spills += entry->spilled;
  stats_.host_bytes += bytes;
  const ActivationHandle handle = next_handle_++;
  entries_.emplace(handle, std::move(entry));
  return handle;
}

Status ActivationStore::WaitSaved(ActivationHandle handle, Stream stream) {
  std::shared_ptr<TransferJob> save;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = entries_.find(handle);
    if (it == entries_.end()) {
      return Status::NotFound("activations: no handle " + std::to_string(handle));
    }
    save = it->second->save;
  }
  TC_RETURN_IF_ERROR(save->WaitEnqueued());
  if (save->complete()) return save->status();
  return cache_->transfer().device().StreamWaitEvent(stream, save->done_event());
}

Status ActivationStore::StartUploadLocked(Entry* e) {
  TransferEngine& transfer = cache_->transfer();
  TC_ASSIGN_OR_RETURN(e->device_dst, allocator_->Allocate(e->bytes, transfer.upload_stream()));
  // A direct save's event is already recorded; a staged save precedes the
  // upload on the engine's worker, which runs jobs in order.
  Event wait = (!e->spilled && !e->save->complete()) ? e->save->done_event() : nullptr;
  e->upload = transfer.Upload(e->host, e->device_dst, e->bytes, wait,
                              e->spilled ? &e->checksums : nullptr, nullptr);
  return Status::Ok();
}

Result<void*> ActivationStore::Restore(ActivationHandle handle, Stream stream) {
  std::unique_ptr<Entry> entry;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = entries_.find(handle);
    if (it == entries_.end()) {
      return Status::NotFound("activations: no handle " + std::to_string(handle));
    }
    Entry* e = it->second.get();
    if (e->save->complete() && !e->save->status().ok() && e->device_src != nullptr) {
      // The save failed but the device copy was kept: hand it back.
      void* ptr = e->device_src;
      e->device_src = nullptr;
      (void)e->host.tier->Free(e->host.extent);
      stats_.host_bytes -= e->bytes;
      entries_.erase(it);
      return ptr;
    }
    if (e->upload == nullptr) {
      TC_RETURN_IF_ERROR(StartUploadLocked(e));
    } else {
      ++stats_.prefetched_restores;
    }
    entry = std::move(it->second);
    entries_.erase(it);
  }
  // Only NVMe reads make this wait; a DRAM upload is enqueued already.
  Status s = entry->upload->WaitEnqueued();
  if (s.ok() && !entry->upload->complete()) {
    entry->upload->NoteWaiter(MonotonicNanoseconds());
    s = cache_->transfer().device().StreamWaitEvent(stream, entry->upload->done_event());
  }
  std::lock_guard<std::mutex> lock(mutex_);
  if (!s.ok()) {
    // Keep the handle: the saved bytes are intact and a retry may succeed.
    (void)allocator_->Free(entry->device_dst, cache_->transfer().upload_stream());
    entry->device_dst = nullptr;
    entry->upload.reset();
    entries_.emplace(handle, std::move(entry));
    return s;
  }
  void* ptr = entry->device_dst;
  ++stats_.restores;
  stats_.host_bytes -= entry->bytes;
  retired_.push_back(std::move(entry));  // host space freed once the upload has read it
  return ptr;
}

Status ActivationStore::PrefetchRestore(const std::vector<ActivationHandle>& handles) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (ActivationHandle h : handles) {
    if (entries_.find(h) == entries_.end()) {
      return Status::NotFound("activations: no handle " + std::to_string(h));
    }
  }
  for (ActivationHandle h : handles) {
    Entry* e = entries_[h].get();
    if (e->upload == nullptr) TC_RETURN_IF_ERROR(StartUploadLocked(e));
  }
  return Status::Ok();
}

Status ActivationStore::Discard(ActivationHandle handle) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = entries_.find(handle);
  if (it == entries_.end()) return Status::NotFound("activations: no handle " + std::to_string(handle));
  Entry* e = it->second.get();
  if (e->device_dst != nullptr) {
    (void)allocator_->Free(e->device_dst, cache_->transfer().upload_stream());
    e->device_dst = nullptr;
  }
  stats_.host_bytes -= e->bytes;
  retired_.push_back(std::move(it->second));
  entries_.erase(it);
  ReapLocked(false);
  return Status::Ok();
}

uint64_t ActivationStore::ReapLocked(bool wait) {
  uint64_t pending = 0;
  for (auto& [handle, e] : entries_) {
    if (!e->save->complete()) {
      pending += e->bytes;
      continue;
    }
    if (e->device_src != nullptr && e->save->status().ok()) {
      (void)allocator_->Free(e->device_src, cache_->transfer().download_stream());
      e->device_src = nullptr;
    }
  }
  for (auto it = retired_.begin(); it != retired_.end();) {
    Entry& e = **it;
    if (wait) {
      (void)e.save->WaitComplete();
      if (e.upload) (void)e.upload->WaitComplete();
    }
    const bool done = e.save->complete() && (e.upload == nullptr || e.upload->complete());
    if (!done) {
      ++it;
      continue;
    }
    if (e.device_src != nullptr) (void)allocator_->Free(e.device_src, nullptr);
    (void)e.host.tier->Free(e.host.extent);
    it = retired_.erase(it);
  }
  return pending;
}

ActivationStoreStats ActivationStore::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  ActivationStoreStats s = stats_;
  s.live = entries_.size();
  return s;
}

}  // namespace tiercache
