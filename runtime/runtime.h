// Runtime: one object that assembles the whole data path from a
// RuntimeConfig: the device (CUDA, or the emulated fallback), the pooled
// device allocator with its budget, the host tiers (pinned NUMA-local DRAM,
// PMEM, NVMe), the block cache and the activation store. The C API is a thin
// layer over this class; C++ engines may use it directly.
//
// Tiers are optional: a size of 0 (or an empty path) leaves one out. The
// DRAM tier is pinned through the device (one registration per tier), so
// DRAM-homed blocks and DRAM activation copies move by DMA.
//
// Thread safety: every method may be called from any thread; the parts it
// hands out document their own rules.
#ifndef TIERCACHE_RUNTIME_RUNTIME_H_
#define TIERCACHE_RUNTIME_RUNTIME_H_

#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "alloc/device.h"
#include "alloc/device_allocator.h"
#include "runtime/activation_store.h"
#include "runtime/block_cache.h"
#include "runtime/checkpoint.h"
#include "runtime/config.h"
#include "tiers/tier.h"

namespace tiercache {

class Runtime {
 public:
  // `device` may be null: OpenDevice(config.device_ordinal) is used.
  static Result<std::unique_ptr<Runtime>> Create(const RuntimeConfig& config,
                                                 std::shared_ptr<Device> device = nullptr);
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  const RuntimeConfig& config() const { return config_; }
  Device& device() const { return *device_; }
  DeviceAllocator& allocator() const { return *allocator_; }
  BlockCache& cache() const { return *cache_; }
  // Null when neither a DRAM nor an NVMe tier is configured.
  ActivationStore* activations() const { return activations_.get(); }

  // "dram", "pmem", "nvme"; nullptr when that tier is not configured.
  Tier* tier(std::string_view name) const;
  // Everything: config, per-tier traffic, blocks, allocator, activations,
  // checkpoints, fallbacks.
  std::string StatsJson() const;

  // Registers a safetensors checkpoint read in place (runtime/checkpoint.h)
  // and returns its id. The read mode and queue depth come from the config
  // (checkpoint_read_mode, checkpoint_queue_depth), whatever options.files
  // says. The checkpoint lives until CloseCheckpoint or the runtime's end.
  Result<uint64_t> RegisterCheckpoint(const std::string& path, CheckpointOptions options);
  // kNotFound for an unknown or closed id. Valid until CloseCheckpoint.
  Result<const Checkpoint*> checkpoint(uint64_t id) const;
  // Unregisters its blocks (kBusy while one is acquired) and closes its files.
  Status CloseCheckpoint(uint64_t id);

 private:
  Runtime() = default;
  Status Build(const RuntimeConfig& config, std::shared_ptr<Device> device);

  RuntimeConfig config_;
  std::shared_ptr<Device> device_;
  std::unique_ptr<DeviceAllocator> allocator_;
  std::unique_ptr<Tier> dram_;
  std::unique_ptr<Tier> pmem_;
  std::unique_ptr<Tier> nvme_;
  std::unique_ptr<BlockCache> cache_;
  std::unique_ptr<ActivationStore> activations_;
  mutable std::mutex checkpoints_mutex_;
  std::vector<std::unique_ptr<Checkpoint>> checkpoints_;  // GUARDED_BY(checkpoints_mutex_); null: closed
};

}  // namespace tiercache

#endif  // TIERCACHE_RUNTIME_RUNTIME_H_
