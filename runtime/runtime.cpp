#include "runtime/runtime.h"

#include <sys/stat.h>

#include "runtime/json.h"
#include "tiers/dram_tier.h"
#if defined(TIERCACHE_RUNTIME_HAVE_NVME)
#include "tiers/nvme_tier.h"
#endif
#if defined(TIERCACHE_HAVE_PMEM)
#include "tiers/pmem_tier.h"
#endif

namespace tiercache {
namespace {

// A directory gets a file of ours inside it.
std::string TierFilePath(const std::string& path, const char* file) {
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return path + "/" + file;
  return path;
}

}  // namespace

Result<std::unique_ptr<Runtime>> Runtime::Create(const RuntimeConfig& config,
                                                 std::shared_ptr<Device> device) {
  TC_RETURN_IF_ERROR(ValidateConfig(config));
  std::unique_ptr<Runtime> runtime(new Runtime());
  TC_RETURN_IF_ERROR(runtime->Build(config, std::move(device)));
  return runtime;
}

Status Runtime::Build(const RuntimeConfig& config, std::shared_ptr<Device> device) {
  config_ = config;
  if (device == nullptr) {
    TC_ASSIGN_OR_RETURN(device, OpenDevice(static_cast<int>(config.device_ordinal)));
  }
  device_ = std::move(device);
  DeviceAllocatorOptions alloc_options;
  alloc_options.budget_bytes = config.gpu_budget_bytes;
  TC_ASSIGN_OR_RETURN(allocator_, DeviceAllocator::Create(device_, alloc_options));

  bool dram_pinned = false;
  if (config.dram_bytes > 0) {
    DramTierOptions options;
    options.capacity = config.dram_bytes;
    options.numa_node = static_cast<int>(config.numa_node);
    options.pci_bus_id = device_->info().pci_bus_id;
    Device* raw = device_.get();
    options.pin = [raw](void* p, size_t n) { return raw->RegisterHost(p, n); };
    options.unpin = [raw](void* p, size_t) { return raw->UnregisterHost(p); };
    TC_ASSIGN_OR_RETURN(std::unique_ptr<DramTier> dram, DramTier::Create(options));
    dram_pinned = dram->pinned();
    dram_ = std::move(dram);
  }
  if (!config.pmem_path.empty()) {
#if defined(TIERCACHE_HAVE_PMEM)
    PmemTierOptions options;
    options.path = TierFilePath(config.pmem_path, "tiercache.pmem");
    options.capacity = config.pmem_bytes;
    TC_ASSIGN_OR_RETURN(pmem_, PmemTier::Open(options));
#else
    return Status::Unsupported("runtime: built without the PMEM tier (TIERCACHE_WITH_PMEM)");
#endif
  }
  if (!config.nvme_path.empty()) {
#if defined(TIERCACHE_RUNTIME_HAVE_NVME)
    NvmeTierOptions options;
    options.path = TierFilePath(config.nvme_path, "tiercache.nvme");
    options.capacity = config.nvme_bytes;
    options.direct = config.nvme_direct;
    options.io.queue_depth = static_cast<uint32_t>(config.nvme_queue_depth);
    TC_ASSIGN_OR_RETURN(nvme_, NvmeTier::Create(options));
#else
    return Status::Unsupported("runtime: built without the NVMe tier");
#endif
  }
  TC_ASSIGN_OR_RETURN(cache_, BlockCache::Create(device_, allocator_.get(), config, dram_.get(),
                                                 dram_pinned));
  if (pmem_ != nullptr) TC_RETURN_IF_ERROR(cache_->AttachTier(pmem_.get(), false));
  if (nvme_ != nullptr) TC_RETURN_IF_ERROR(cache_->AttachTier(nvme_.get(), false));
  if (dram_ != nullptr || nvme_ != nullptr) {
    TC_ASSIGN_OR_RETURN(activations_,
                        ActivationStore::Create(cache_.get(), allocator_.get(), nvme_.get()));
  }
  return Status::Ok();
}

Runtime::~Runtime() {
  activations_.reset();
  cache_.reset();
  checkpoints_.clear();  // after the cache: its blocks read their files
  nvme_.reset();
  pmem_.reset();
  dram_.reset();
  allocator_.reset();
}

Result<uint64_t> Runtime::RegisterCheckpoint(const std::string& path, CheckpointOptions options) {
  TC_ASSIGN_OR_RETURN(options.files.mode, ParseFileReadMode(config_.checkpoint_read_mode.c_str()));
  options.files.io.queue_depth = static_cast<uint32_t>(config_.checkpoint_queue_depth);
  if (config_.checkpoint_pin_page_cache != "off" && !options.pin) {
    Device* raw = device_.get();
    options.pin = [raw](const void* p, size_t n) { return raw->RegisterHostReadOnly(p, n); };
    options.unpin = [raw](void* p) { return raw->UnregisterHost(p); };
    if (config_.checkpoint_pin_page_cache == "auto") options.pin_above_bytes = cache_->gpu_capacity();
  }
  TC_ASSIGN_OR_RETURN(std::unique_ptr<Checkpoint> checkpoint,
                      Checkpoint::Open(cache_.get(), path, options));
  std::lock_guard<std::mutex> lock(checkpoints_mutex_);
  checkpoints_.push_back(std::move(checkpoint));
  return static_cast<uint64_t>(checkpoints_.size() - 1);
}

Result<const Checkpoint*> Runtime::checkpoint(uint64_t id) const {
  std::lock_guard<std::mutex> lock(checkpoints_mutex_);
  if (id >= checkpoints_.size() || checkpoints_[id] == nullptr) {
    return Status::NotFound("runtime: no checkpoint " + std::to_string(id));
  }
  return checkpoints_[id].get();
}

Status Runtime::CloseCheckpoint(uint64_t id) {
  std::lock_guard<std::mutex> lock(checkpoints_mutex_);
  if (id >= checkpoints_.size() || checkpoints_[id] == nullptr) {
    return Status::NotFound("runtime: no checkpoint " + std::to_string(id));
  }
  TC_RETURN_IF_ERROR(checkpoints_[id]->Close());
  checkpoints_[id].reset();
  return Status::Ok();
}

Tier* Runtime::tier(std::string_view name) const {
  if (name == "dram") return dram_.get();
  if (name == "pmem") return pmem_.get();
  if (name == "nvme") return nvme_.get();
  return nullptr;
}

std::string Runtime::StatsJson() const {
  JsonWriter w;
  w.BeginObject();
  w.Key("device").BeginObject()
      .Key("name").String(device_->info().name)
      .Key("kind").String(device_->info().kind == DeviceKind::kCuda ? "cuda" : "emulated")
      .EndObject();
  // Splice the cache's object members in after the device.
  std::string cache = cache_->StatsJson();
  std::string out = w.text();
  out += ",";
  out += cache.substr(1, cache.size() - 2);
  JsonWriter tail;
  tail.BeginObject();
  const CodecStats codec = cache_->codec_stats();
  tail.Key("codec").BeginObject()
      .Key("blocks").Uint(codec.blocks)
      .Key("raw_bytes").Uint(codec.raw_bytes)
      .Key("stored_bytes").Uint(codec.stored_bytes)
      .Key("ratio").Double(codec.raw_bytes ? static_cast<double>(codec.stored_bytes) / codec.raw_bytes : 1.0)
      .Key("uploads").Uint(codec.uploads)
      .Key("moved_bytes").Uint(codec.moved_bytes)
      .Key("decoded_bytes").Uint(codec.decoded_bytes)
      .Key("runs").Uint(codec.runs)
      .Key("tiers").BeginArray();
  for (const CodecTierStats& t : codec.tiers) {
    tail.BeginObject()
        .Key("name").String(t.tier)
        .Key("uploads").Uint(t.uploads)
        .Key("moved_bytes").Uint(t.moved_bytes)
        .Key("decoded_bytes").Uint(t.decoded_bytes)
        .Key("upload_ns").Uint(t.upload_ns)
        .Key("decoded_gbps").Double(t.decoded_gbps())
        .EndObject();
  }
  tail.EndArray().EndObject();
  if (activations_ != nullptr) {
    const ActivationStoreStats a = activations_->stats();
    tail.Key("activations").BeginObject()
        .Key("saves").Uint(a.saves)
        .Key("restores").Uint(a.restores)
        .Key("prefetched_restores").Uint(a.prefetched_restores)
        .Key("refused_pending").Uint(a.refused_pending)
        .Key("spills").Uint(a.spills)
        .Key("live").Uint(a.live)
        .Key("host_bytes").Uint(a.host_bytes)
        .EndObject();
  }
  {
    std::lock_guard<std::mutex> lock(checkpoints_mutex_);
    tail.Key("checkpoints").BeginArray();
    for (size_t i = 0; i < checkpoints_.size(); ++i) {
      if (checkpoints_[i] == nullptr) continue;
      const Checkpoint& c = *checkpoints_[i];
      const FileTierStats f = c.file_tier().file_stats();
      const TierStats t = c.file_tier().stats();
      tail.BeginObject()
          .Key("id").Uint(i)
          .Key("files").Uint(c.files().size())
          .Key("blocks").Uint(c.blocks().size())
          .Key("tensor_bytes").Uint(c.tensor_bytes())
          .Key("read_mode").String(FileReadModeName(c.file_tier().mode()))
          .Key("bytes_read").Uint(t.bytes_read)
          .Key("direct_bytes").Uint(f.direct_bytes)
          .Key("edge_bytes").Uint(f.edge_bytes)
          .Key("cached_bytes").Uint(f.cached_bytes)
          .Key("zero_bytes").Uint(f.zero_bytes)
          .Key("pinned_bytes").Uint(f.pinned_bytes)
          .Key("mapped_bytes").Uint(f.mapped_bytes)
          .Key("changed_files").Uint(f.changed_files)
          .Key("direct_transfers").Uint(f.direct_engine.transfers)
          .Key("fixed_buffer_transfers").Uint(f.direct_engine.fixed_buffer_transfers)
          .Key("read_errors").Uint(t.read_errors)
          .EndObject();
    }
    tail.EndArray();
  }
  tail.EndObject();
  std::string t = tail.text();
  if (t.size() > 2) out += "," + t.substr(1, t.size() - 2);
  out += ",\"config\":" + ConfigToJson(config_) + "}";
  return out;
}

}  // namespace tiercache
