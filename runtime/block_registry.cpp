// BlockCache: creation, tiers, the block registry and groups.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include "common/log.h"
#include "runtime/block_cache.h"
#include "runtime/block_cache_internal.h"
#include "codec/bf16_format.h"
#include "runtime/checksum.h"

namespace tiercache {

BlockCache::BlockCache(std::shared_ptr<Device> device, DeviceAllocator* allocator,
                       const RuntimeConfig& config)
    : device_(std::move(device)), allocator_(allocator), config_(config) {}

Result<std::unique_ptr<BlockCache>> BlockCache::Create(std::shared_ptr<Device> device,
                                                       DeviceAllocator* allocator,
                                                       const RuntimeConfig& config, Tier* dram,
                                                       bool dram_pinned) {
  if (device == nullptr || allocator == nullptr) {
    return Status::InvalidArgument("cache: null device or allocator");
  }
  TC_RETURN_IF_ERROR(ValidateConfig(config));
  std::unique_ptr<BlockCache> cache(new BlockCache(device, allocator, config));
  cache->gpu_slot_ = cache->stats_.AddTier("gpu");
  cache->dram_ = dram;
  cache->dram_pinned_ = dram_pinned;
  TC_ASSIGN_OR_RETURN(cache->gpu_policy_, MakeEvictionPolicy(config.gpu_policy, cache->gpu_capacity()));
  TC_ASSIGN_OR_RETURN(cache->dram_policy_,
                      MakeEvictionPolicy(config.dram_policy,
                                         dram != nullptr ? dram->capacity() : 1));
  TC_ASSIGN_OR_RETURN(cache->staging_,
                      StagingPool::Create(device, dram, dram_pinned, config.chunk_bytes,
                                          static_cast<int>(config.staging_buffers),
                                          TransferEngine::StagingSideBytes(config.chunk_bytes)));
  TransferOptions transfer;
  transfer.chunk_bytes = config.chunk_bytes;
  transfer.io_retries = static_cast<int>(config.io_retries);
  transfer.allocator = allocator;  // the encoded uploads' ring counts in the budget
  TC_ASSIGN_OR_RETURN(cache->transfer_, TransferEngine::Create(device, cache->staging_.get(),
                                                               &cache->stats_, cache->gpu_slot_,
                                                               transfer));
  TC_ASSIGN_OR_RETURN(cache->release_stream_, device->CreateStream());
  if (dram != nullptr) TC_RETURN_IF_ERROR(cache->AttachTier(dram, dram_pinned));
  BlockCache* raw = cache.get();
  // Overdue predictions are re-asked of the predictor. The policy calls
  // this from ChooseVictim, with mutex_ already held by the cache.
  cache->gpu_policy_->SetNextUseSource([raw](BlockId id) -> uint64_t {
    if (raw->predictor_ == nullptr) return kNeverUsedAgain;
    const uint64_t distance = raw->predictor_->PredictDistance(id);
    return distance == kNeverUsedAgain ? kNeverUsedAgain : raw->clock_ + distance;
  });
  cache->prefetch_off_ = config.prefetch == "off";
  if (!cache->prefetch_off_) {
    // Every runtime learns by itself: the engine's acquires are the
    // training signal, hints override what was learned.
    PrefetcherOptions options;
    options.learn = config.prefetch == "learn";
    cache->learner_ = std::make_unique<Prefetcher>(options);
    cache->predictor_ = cache->learner_.get();
    cache->has_predictor_.store(true, std::memory_order_relaxed);
  }
  allocator->SetPressureCallback([raw](uint64_t needed) { return raw->EvictUnpinned(needed); });
  cache->prefetch_thread_ = std::thread([raw] { raw->PrefetchLoop(); });
  if (dram != nullptr && config.dram_prefetch_lookahead > 0) {
    cache->dram_staging_on_ = true;
    cache->stage_thread_ = std::thread([raw] { raw->DramStageLoop(); });
  }
  return cache;
}

BlockCache::~BlockCache() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stage_stopping_ = true;
  }
  stage_cv_.notify_all();
  if (stage_thread_.joinable()) stage_thread_.join();
  {
    std::lock_guard<std::mutex> lock(prefetch_mutex_);
    stopping_ = true;
    prefetch_queue_.clear();
  }
  prefetch_cv_.notify_all();
  if (prefetch_thread_.joinable()) prefetch_thread_.join();
  allocator_->SetPressureCallback({});
  if (transfer_ != nullptr) (void)transfer_->Drain();
  std::lock_guard<std::mutex> lock(mutex_);
  for (Fence& fence : fences_) {
    (void)device_->EventSynchronize(fence.event);
    transfer_->events().Put(fence.event);
  }
  fences_.clear();
  for (auto& b : blocks_) {
    if (b->device_ptr != nullptr) (void)allocator_->Free(b->device_ptr, release_stream_);
    if (b->dram_valid) (void)dram_->Free(b->dram_extent);
    if (b->owns_home && b->alive) (void)b->home->Free(b->home_extent);
  }
  blocks_.clear();  // drops the jobs (their events go back to the pool)
  transfer_.reset();
  staging_.reset();
  if (release_stream_ != nullptr) (void)device_->DestroyStream(release_stream_);
}

Status BlockCache::AttachTier(Tier* tier, bool device_registered) {
  if (tier == nullptr) return Status::InvalidArgument("cache: null tier");
  std::lock_guard<std::mutex> lock(mutex_);
  if (FindTierLocked(tier) != nullptr) return Status::Ok();
  tiers_.push_back({tier, device_registered, stats_.AddTier(tier->name())});
  // The staging ring is the NVMe tier's usual I/O buffer: let it register
  // it (io_uring fixed buffers). A hint, so failure is harmless.
  (void)tier->RegisterBuffer(staging_->base(), staging_->bytes());
  return Status::Ok();
}

Status BlockCache::DetachTier(Tier* tier) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (tier == dram_) return Status::InvalidArgument("cache: the DRAM tier cannot be detached");
  for (const auto& b : blocks_) {
    if (b->alive && b->home == tier) {
      return Status::Busy("cache: block " + b->name + " is still homed on " + tier->name());
    }
  }
  tiers_.erase(std::remove_if(tiers_.begin(), tiers_.end(),
                              [tier](const AttachedTier& t) { return t.tier == tier; }),
               tiers_.end());
  return Status::Ok();
}

const BlockCache::AttachedTier* BlockCache::FindTierLocked(const Tier* tier) const {
  for (const AttachedTier& t : tiers_) {
    if (t.tier == tier) return &t;
  }
  return nullptr;
}

int BlockCache::StatsSlotOf(const Tier* tier) const {
  std::lock_guard<std::mutex> lock(mutex_);
  const AttachedTier* t = FindTierLocked(tier);
  return t == nullptr ? -1 : t->stats_slot;
}

Result<GroupId> BlockCache::CreateGroup(std::string name) {
  std::lock_guard<std::mutex> lock(mutex_);
  groups_.push_back({std::move(name), {}});
  return static_cast<GroupId>(groups_.size() - 1);
}

Result<BlockId> BlockCache::AddBlock(std::string name, uint64_t bytes, Tier* home, Extent extent,
                                     bool owns_extent, GroupId group,
                                     std::vector<uint32_t> checksums, bool encoded) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (FindTierLocked(home) == nullptr) {
    return Status::InvalidArgument("cache: tier " + home->name() + " is not attached");
  }
  if (group != kNoGroup && group >= groups_.size()) {
    return Status::NotFound("cache: no group " + std::to_string(group));
  }
  if (!name.empty() && by_name_.count(name) != 0) {
    return Status::AlreadyExists("cache: a block named '" + name + "' exists");
  }
  auto b = std::make_unique<Block>();
  b->id = blocks_.size();
  b->name = name;
  b->bytes = bytes;
  b->home = home;
  b->home_extent = extent;
  b->owns_home = owns_extent;
  b->group = group;
  b->checksums = std::move(checksums);
  const BlockId id = b->id;
  // Only blocks homed on a tier uploads cannot DMA from are worth staging.
  b->home_direct = FindTierLocked(home)->direct;
  if (!b->home_direct) ++slow_homed_blocks_;
  registered_bytes_ += b->bytes;
  if (encoded) MarkEncodedLocked(b.get(), extent.length);
  blocks_.push_back(std::move(b));
  if (!name.empty()) by_name_[name] = id;
  if (group != kNoGroup) groups_[group].members.push_back(id);
  return id;
}

namespace {

// CRC32C of each chunk of a host buffer.
std::vector<uint32_t> ChunkChecksums(const unsigned char* data, uint64_t bytes, uint64_t chunk) {
  std::vector<uint32_t> sums;
  for (uint64_t offset = 0; offset < bytes; offset += chunk) {
    sums.push_back(ChecksumBytes(data + offset, std::min(chunk, bytes - offset)));
  }
  return sums;
}

}  // namespace

Result<BlockId> BlockCache::RegisterFromBuffer(std::string name, const void* data, uint64_t bytes,
                                               Tier* home, GroupId group,
                                               std::optional<codec::Compression> compression) {
  if (home == nullptr || data == nullptr || bytes == 0) {
    return Status::InvalidArgument("cache: register needs a home tier, data and bytes > 0");
  }
  TC_ASSIGN_OR_RETURN(const codec::Compression mode, CompressionOf(compression));
  TC_ASSIGN_OR_RETURN(const std::vector<uint8_t> encoded, codec::EncodeFor(mode, data, bytes));
  const bool keep_encoded = !encoded.empty();
  if (keep_encoded) TC_RETURN_IF_ERROR(transfer_->PrepareEncodedUploads());
  const void* stored = keep_encoded ? encoded.data() : data;
  const uint64_t stored_bytes = keep_encoded ? encoded.size() : bytes;
  TC_ASSIGN_OR_RETURN(Extent extent, home->Allocate(stored_bytes));
  Status s = home->Write(extent, 0, stored, stored_bytes);
  if (!s.ok()) {
    (void)home->Free(extent);
    return s;
  }
  std::vector<uint32_t> sums;
  if (config_.verify_checksums) {
    sums = ChunkChecksums(static_cast<const unsigned char*>(stored), stored_bytes, config_.chunk_bytes);
  }
  Result<BlockId> id =
      AddBlock(std::move(name), bytes, home, extent, true, group, std::move(sums), keep_encoded);
  if (!id.ok()) (void)home->Free(extent);
  return id;
}

Result<codec::Compression> BlockCache::CompressionOf(
    std::optional<codec::Compression> asked) const {
  if (asked.has_value()) return *asked;
  return codec::ParseCompression(config_.compression);
}

void BlockCache::MarkEncodedLocked(Block* b, uint64_t stored_bytes) {
  b->encoded = true;
  encoded_blocks_ += 1;
  encoded_raw_bytes_ += b->bytes;
  encoded_stored_bytes_ += stored_bytes;
}

Result<BlockId> BlockCache::RegisterFromFile(std::string name, const std::string& path,
                                             uint64_t offset, uint64_t bytes, Tier* home,
                                             GroupId group) {
  if (home == nullptr || bytes == 0) {
    return Status::InvalidArgument("cache: register needs a home tier and bytes > 0");
  }
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno(errno, "cache: open " + path);
  Result<Extent> extent = home->Allocate(bytes);
  if (!extent.ok()) {
    ::close(fd);
    return extent.status();
  }
  // Read through a bounded buffer so a large block does not need a second
  // copy of itself in memory.
  const uint64_t piece = std::min<uint64_t>(bytes, config_.chunk_bytes);
  std::unique_ptr<unsigned char[]> buffer(new unsigned char[piece]);
  std::vector<uint32_t> sums;
  Status s;
  for (uint64_t done = 0; s.ok() && done < bytes;) {
    const uint64_t want = std::min(piece, bytes - done);
    uint64_t got = 0;
    while (got < want) {
      const ssize_t n = ::pread(fd, buffer.get() + got, want - got,
                                static_cast<off_t>(offset + done + got));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        s = Status::FromErrno(errno, "cache: read " + path);
        break;
      }
      if (n == 0) {
        s = Status::InvalidArgument("cache: " + path + " ends before offset " +
                                    std::to_string(offset + bytes));
        break;
      }
      got += static_cast<uint64_t>(n);
    }
    if (s.ok()) s = home->Write(*extent, done, buffer.get(), want);
    if (s.ok() && config_.verify_checksums) sums.push_back(ChecksumBytes(buffer.get(), want));
    done += want;
  }
  ::close(fd);
  if (!s.ok()) {
    (void)home->Free(*extent);
    return s;
  }
  Result<BlockId> id =
      AddBlock(std::move(name), bytes, home, *extent, true, group, std::move(sums));
  if (!id.ok()) (void)home->Free(*extent);
  return id;
}

std::vector<uint32_t> BlockCache::HostChecksums(Tier* home, const Extent& extent) const {
  if (!config_.verify_checksums) return {};
  const void* p = home->HostAddress(extent);
  if (p == nullptr) return {};  // taken from the first read
  return ChunkChecksums(static_cast<const unsigned char*>(p), extent.length, config_.chunk_bytes);
}

Result<BlockId> BlockCache::RegisterFromTier(std::string name, Tier* home, Extent extent,
                                             GroupId group) {
  if (home == nullptr || extent.length == 0) {
    return Status::InvalidArgument("cache: register needs a home tier and a non-empty extent");
  }
  return AddBlock(std::move(name), extent.length, home, extent, false, group,
                  HostChecksums(home, extent));
}

Result<BlockId> BlockCache::RegisterMirrored(std::string name, Tier* home, Extent extent,
                                             Tier* mirror, uint64_t key, GroupId group,
                                             std::optional<codec::Compression> compression) {
  if (mirror == nullptr || !mirror->persistent()) {
    return Status::InvalidArgument("cache: a mirror must be a persistent tier");
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (FindTierLocked(mirror) == nullptr) {
      return Status::InvalidArgument("cache: tier " + mirror->name() + " is not attached");
    }
  }
  TC_ASSIGN_OR_RETURN(const codec::Compression mode, CompressionOf(compression));
  // The mirror may come to hold an encoding: its uploads' ring is made (and
  // its room in the budget checked) now, not at a load.
  if (mode != codec::Compression::kOff) TC_RETURN_IF_ERROR(transfer_->PrepareEncodedUploads());
  TC_ASSIGN_OR_RETURN(BlockId id, RegisterFromTier(std::move(name), home, extent, group));
  std::lock_guard<std::mutex> lock(mutex_);
  blocks_[id]->mirror = mirror;
  blocks_[id]->mirror_key = key;
  blocks_[id]->mirror_compression = mode;
  return id;
}

namespace {

// The decoded size of the encoding held in `extent` of `home`, after
// checking its header, table and directory (reads only that prefix).
Result<uint64_t> EncodedBlockBytes(Tier* home, const Extent& extent) {
  unsigned char head[codec::kBf16HeaderBytes];
  if (extent.length < sizeof(head)) {
    return Status::Corruption(home->name() + ": an extent marked encoded is " +
                              std::to_string(extent.length) + " bytes, shorter than its header");
  }
  TC_RETURN_IF_ERROR(home->Read(extent, 0, head, sizeof(head)));
  TC_ASSIGN_OR_RETURN(const uint64_t prefix, codec::Bf16PrefixBytes(head, sizeof(head)));
  if (prefix > extent.length) {
    return Status::Corruption(home->name() + ": an encoded extent's directory runs past its " +
                              std::to_string(extent.length) + " bytes");
  }
  std::vector<unsigned char> bytes(prefix);
  TC_RETURN_IF_ERROR(home->Read(extent, 0, bytes.data(), prefix));
  TC_ASSIGN_OR_RETURN(const codec::Bf16Layout layout,
                      codec::ParseBf16Prefix(bytes.data(), prefix, extent.length));
  if (layout.decoded_bytes() == 0) {
    return Status::Corruption(home->name() + ": an encoded extent decodes to no bytes");
  }
  return layout.decoded_bytes();
}

}  // namespace

Result<BlockId> BlockCache::RegisterFromKey(std::string name, Tier* home, uint64_t key,
                                            GroupId group, uint64_t expected_bytes) {
  if (home == nullptr) return Status::InvalidArgument("cache: null home tier");
  uint32_t flags = 0;
  TC_ASSIGN_OR_RETURN(Extent extent, home->Lookup(key, &flags));  // verifies the tier's checksum
  if ((flags & ~kCommitFlagsKnown) != 0) {
    return Status::Unsupported(home->name() + ": key " + std::to_string(key) +
                               " was committed with flags " + std::to_string(flags) +
                               " this version does not know");
  }
  const bool encoded = (flags & kCommitFlagBf16) != 0;
  uint64_t bytes = extent.length;
  if (encoded) {
    TC_ASSIGN_OR_RETURN(bytes, EncodedBlockBytes(home, extent));
  }
  if (expected_bytes != 0 && bytes != expected_bytes) {
    return Status::Corruption(home->name() + ": key " + std::to_string(key) + " holds a block of " +
                              std::to_string(bytes) + " bytes, not the " +
                              std::to_string(expected_bytes) + " expected");
  }
  if (encoded) TC_RETURN_IF_ERROR(transfer_->PrepareEncodedUploads());
  return AddBlock(std::move(name), bytes, home, extent, false, group, HostChecksums(home, extent),
                  encoded);
}

CodecStats BlockCache::codec_stats() const {
  CodecStats s;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    s.blocks = encoded_blocks_;
    s.raw_bytes = encoded_raw_bytes_;
    s.stored_bytes = encoded_stored_bytes_;
  }
  const EncodedUploadStats moved = transfer_->encoded_stats();
  s.uploads = moved.uploads;
  s.moved_bytes = moved.encoded_bytes;
  s.decoded_bytes = moved.decoded_bytes;
  s.runs = moved.runs;
  for (const TierTraffic& t : stats_.SnapshotAll()) {
    if (t.encoded_uploads == 0) continue;
    s.tiers.push_back({t.name, t.encoded_uploads, t.encoded_bytes, t.decoded_bytes, t.encoded_ns});
  }
  return s;
}

Status BlockCache::Unregister(BlockId id) {
  DeviceFrees frees;
  std::shared_ptr<TransferJob> pending_demotion;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    while (true) {
      Block* b = LookupLocked(id);
      if (b == nullptr) return Status::NotFound("cache: no block " + std::to_string(id));
      if (b->held > 0 || b->gpu == Block::Gpu::kLoading) {
        return Status::Busy("cache: block " + b->name + " is acquired or loading");
      }
      FenceAllLocked();
      PollFencesLocked();
      if (b->pins == 0) break;
      // Released, but work enqueued before the release may still read it.
      Event wait_on = nullptr;
      for (const Fence& f : fences_) {
        if (std::find(f.blocks.begin(), f.blocks.end(), id) != f.blocks.end()) {
          wait_on = f.event;
          break;
        }
      }
      lock.unlock();
      if (wait_on != nullptr) (void)device_->EventSynchronize(wait_on);
      lock.lock();
    }
    Block* b = blocks_[id].get();
    if (b->gpu == Block::Gpu::kResident) EvictBlockLocked(b, /*demote=*/false, &frees);
    b->alive = false;  // no new acquires from here on
    if (b->plan_kept) ClearCyclePlanLocked();
    registered_bytes_ -= b->bytes;
    if (b->encoded) {
      encoded_blocks_ -= 1;
      encoded_raw_bytes_ -= b->bytes;
      encoded_stored_bytes_ -= b->home_extent.length;
    }
    if (!b->home_direct) {
      --slow_homed_blocks_;
    }
    pending_demotion = b->dram_job;
    if (!b->name.empty()) by_name_.erase(b->name);
    if (b->group != kNoGroup) {
      auto& members = groups_[b->group].members;
      members.erase(std::remove(members.begin(), members.end(), id), members.end());
    }
  }
  // A demotion may still be writing the DRAM copy, and uploads may read it.
  if (pending_demotion != nullptr) (void)pending_demotion->WaitComplete();
  {
    std::unique_lock<std::mutex> lock(mutex_);
    Block* b = blocks_[id].get();
    // A staging read still reads the home extent freed below.
    stage_done_cv_.wait(lock, [b] { return !b->dram_staging; });
    while (b->dram_readers.load(std::memory_order_acquire) > 0) {
      lock.unlock();
      std::this_thread::yield();
      lock.lock();
    }
    if (b->dram_valid) DropDramCopyLocked(b);
    if (b->owns_home) (void)b->home->Free(b->home_extent);
    b->owns_home = false;
  }
  FreeDevice(frees);
  return Status::Ok();
}

Result<BlockId> BlockCache::FindBlock(std::string_view name) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = by_name_.find(std::string(name));
  if (it == by_name_.end()) return Status::NotFound("cache: no block named '" + std::string(name) + "'");
  return it->second;
}

Result<BlockInfo> BlockCache::Info(BlockId id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  const Block* b = LookupLocked(id);
  if (b == nullptr) return Status::NotFound("cache: no block " + std::to_string(id));
  BlockInfo info;
  info.id = b->id;
  info.name = b->name;
  info.bytes = b->bytes;
  info.home_tier = b->home->name();
  info.group = b->group;
  info.on_gpu = b->gpu != Block::Gpu::kAbsent;
  info.gpu_ready = b->gpu == Block::Gpu::kResident && b->upload && b->upload->complete();
  info.in_dram = b->dram_valid;
  info.pins = b->pins;
  return info;
}

Result<std::vector<BlockId>> BlockCache::GroupMembers(GroupId group) const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (group >= groups_.size()) return Status::NotFound("cache: no group " + std::to_string(group));
  return groups_[group].members;
}

BlockCache::Block* BlockCache::LookupLocked(BlockId id) const {
  if (id >= blocks_.size()) return nullptr;
  Block* b = blocks_[id].get();
  return b->alive ? b : nullptr;
}

uint64_t BlockCache::gpu_capacity() const {
  return config_.gpu_cache_bytes != 0 ? config_.gpu_cache_bytes : allocator_->budget();
}

uint64_t BlockCache::gpu_cached_bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return cached_bytes_;
}

}  // namespace tiercache
