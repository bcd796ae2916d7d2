#include "tiers/pmem_tier.h"

#include <libpmem2.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <utility>

#include "common/log.h"
#include "common/units.h"
#include "tiers/pmem_checksum.h"
#include "tiers/pmem_file.h"

namespace tiercache {

using pmem::Entry;
using pmem::EntryClass;
using pmem::EntryState;
using pmem::Header;

struct PmemTier::Mapping {
  std::unique_ptr<pmem::PmemFile> file;  // declared first: closed (and unlocked) last
  pmem2_config* config = nullptr;
  pmem2_source* source = nullptr;
  pmem2_map* map = nullptr;
  unsigned char* base = nullptr;
  pmem2_memcpy_fn memcpy_fn = nullptr;
  pmem2_persist_fn persist_fn = nullptr;
  pmem2_drain_fn drain_fn = nullptr;
  pmem2_granularity granularity = PMEM2_GRANULARITY_PAGE;

  ~Mapping() {
    if (map != nullptr) pmem2_map_delete(&map);
    if (source != nullptr) pmem2_source_delete(&source);
    if (config != nullptr) pmem2_config_delete(&config);
  }
};

namespace {

// pmem2 returns -errno for system errors and its own PMEM2_E_* codes below.
Status Pmem2Error(int rc, const std::string& context) {
  const std::string message = context + ": " + pmem2_errormsg();
  if (rc > PMEM2_E_UNKNOWN && rc < 0) return Status::FromErrno(-rc, message);
  if (rc == PMEM2_E_NOSUPP || rc == PMEM2_E_GRANULARITY_NOT_SUPPORTED) {
    return Status::Unsupported(message);
  }
  return Status::IoError(message);
}

uint64_t NewFileId() {
  std::random_device random;
  const uint64_t bits = (uint64_t{random()} << 32) ^ random();
  return bits ^ static_cast<uint64_t>(
                    std::chrono::steady_clock::now().time_since_epoch().count());
}

PmemStoreGranularity FromPmem2(pmem2_granularity granularity) {
  switch (granularity) {
    case PMEM2_GRANULARITY_BYTE: return PmemStoreGranularity::kByte;
    case PMEM2_GRANULARITY_CACHE_LINE: return PmemStoreGranularity::kCacheLine;
    case PMEM2_GRANULARITY_PAGE: break;
  }
  return PmemStoreGranularity::kPage;
}

Status WithPath(const Status& status, const std::string& path) {
  return Status(status.code(), path + ": " + status.message());
}

}  // namespace

const char* PmemStoreGranularityName(PmemStoreGranularity granularity) {
  switch (granularity) {
    case PmemStoreGranularity::kByte: return "byte";
    case PmemStoreGranularity::kCacheLine: return "cache line";
    case PmemStoreGranularity::kPage: return "page";
  }
  return "unknown";
}

// Maps [0, length) of `file`. Page granularity is the weakest a mapping can
// have, so asking for it maps any file; what pmem2 actually grants (byte or
// cache line on DAX) is read back afterwards.
Result<std::unique_ptr<PmemTier::Mapping>> PmemTier::MapFile(
    std::unique_ptr<pmem::PmemFile> file, uint64_t length) {
  auto m = std::make_unique<Mapping>();
  const std::string path = file->path();
  m->file = std::move(file);
  int rc = pmem2_config_new(&m->config);
  if (rc == 0) rc = pmem2_config_set_required_store_granularity(m->config, PMEM2_GRANULARITY_PAGE);
  if (rc == 0) rc = pmem2_config_set_length(m->config, length);
  if (rc != 0) return Pmem2Error(rc, path + ": cannot configure the mapping");
  rc = pmem2_source_from_fd(&m->source, m->file->fd());
  if (rc != 0) return Pmem2Error(rc, path + ": cannot use the file as a pmem2 source");
  rc = pmem2_map_new(&m->map, m->config, m->source);
  if (rc != 0) return Pmem2Error(rc, path + ": cannot map " + FormatBytes(length));
  m->base = static_cast<unsigned char*>(pmem2_map_get_address(m->map));
  m->granularity = pmem2_map_get_store_granularity(m->map);
  m->memcpy_fn = pmem2_get_memcpy_fn(m->map);
  m->persist_fn = pmem2_get_persist_fn(m->map);
  m->drain_fn = pmem2_get_drain_fn(m->map);
  return m;
}

Result<std::unique_ptr<PmemTier>> PmemTier::Open(const PmemTierOptions& options) {
  std::optional<Header> plan;
  if (options.capacity > 0) {
    Result<Header> planned = pmem::PlanHeader(
        {options.capacity, options.index_entries, options.granularity}, NewFileId());
    if (!planned.ok()) return WithPath(planned.status(), options.path);
    plan = *planned;
  }
  TC_ASSIGN_OR_RETURN(std::unique_ptr<pmem::PmemFile> file,
                      pmem::PmemFile::Open(options.path, options.create_if_missing,
                                           plan ? plan->file_bytes : 0));
  const bool created = file->created();
  const bool new_inode = file->new_inode();
  Header header = created ? *plan : Header{};
  int chosen_copy = 0;
  if (!created) {
    // Read and judge the header before mapping: a file that is not ours is
    // never mapped writable, let alone written.
    unsigned char region[pmem::kHeaderRegionBytes];
    TC_RETURN_IF_ERROR(file->ReadPrefix(region, sizeof(region)));
    Result<Header> chosen = pmem::ChooseHeader(region, file->size(), &chosen_copy);
    if (!chosen.ok()) return WithPath(chosen.status(), options.path);
    header = *chosen;
  }
  std::optional<Header> grown;
  if (!created && options.capacity > header.data_bytes) {
    Result<Header> bigger = pmem::GrowHeader(header, options.capacity);
    if (!bigger.ok()) return WithPath(bigger.status(), options.path);
    TC_RETURN_IF_ERROR(file->Grow(bigger->file_bytes));
    grown = *bigger;
  } else if (!created && options.capacity != 0 && options.capacity < header.data_bytes) {
    TC_LOG_INFO("%s: keeps its %s data region (asked for less; a tier never shrinks)",
                options.path.c_str(), FormatBytes(header.data_bytes).c_str());
  }
  Result<std::unique_ptr<Mapping>> mapped =
      MapFile(std::move(file), grown ? grown->file_bytes : header.file_bytes);
  if (!mapped.ok()) {
    if (new_inode) unlink(options.path.c_str());  // it never held a tier
    return mapped.status();
  }
  std::unique_ptr<Mapping> mapping = std::move(mapped).value();
  if (created) {
    // The index is already zero (preallocated); the header goes in last, so
    // a file cut short during creation has no valid header.
    for (uint64_t copy : pmem::kHeaderCopyOffset) {
      mapping->memcpy_fn(mapping->base + copy, &header, sizeof(header), 0);
    }
  } else if (grown) {
    // The other copy: if this write tears, the current one still stands.
    mapping->memcpy_fn(mapping->base + pmem::kHeaderCopyOffset[chosen_copy ^ 1], &*grown,
                       sizeof(Header), 0);
    header = *grown;
  }
  std::unique_ptr<PmemTier> tier(new PmemTier(options, header, std::move(mapping), created));
  tier->Recover();
  const PmemIndexStats stats = tier->index_stats();
  TC_LOG_INFO("%s: %s %s data, %llu index slots (%llu committed, %llu torn, %llu invalid), "
              "store granularity %s", options.path.c_str(), created ? "created" : "opened",
              FormatBytes(header.data_bytes).c_str(),
              static_cast<unsigned long long>(header.index_entries),
              static_cast<unsigned long long>(stats.recovered),
              static_cast<unsigned long long>(stats.skipped_torn),
              static_cast<unsigned long long>(stats.skipped_invalid),
              PmemStoreGranularityName(tier->store_granularity()));
  return tier;
}

PmemTier::PmemTier(const PmemTierOptions& options, const Header& header,
                   std::unique_ptr<Mapping> mapping, bool created)
    : Tier(options.name, TierKind::kPmem, header.data_bytes, header.granularity),
      path_(options.path),
      header_(header),
      mapping_(std::move(mapping)),
      created_(created),
      store_granularity_(FromPmem2(mapping_->granularity)),
      data_(mapping_->base + header.data_offset),
      slots_(reinterpret_cast<Entry*>(mapping_->base + header.index_offset)) {
  stats_.index_entries = header.index_entries;
}

PmemTier::~PmemTier() {
  // Only when Write() stored something: an msync, even of clean pages, can
  // commit the filesystem journal, and closing a tier that was only read
  // should not touch the disk.
  if (written_.load(std::memory_order_relaxed)) (void)FlushImpl();
}

void PmemTier::Recover() {
  // Runs once, before Open() returns the tier. The allocator is filled first
  // with only the space mutex taken (ReserveExtent); the index mutex is taken
  // afterwards to install the result, keeping the one lock order (space, then
  // index) that Free() -> OnFreeLocked() uses.
  PmemIndexStats found;
  std::vector<std::pair<uint64_t, Entry>> valid;  // (slot, entry)
  std::vector<uint64_t> free_slots, losers;
  uint64_t next_sequence = 1;
  for (uint64_t slot = 0; slot < header_.index_entries; ++slot) {
    Entry entry;
    std::memcpy(&entry, &slots_[slot], sizeof(entry));
    switch (pmem::ClassifyEntry(entry, header_)) {
      case EntryClass::kValid:
        valid.emplace_back(slot, entry);
        next_sequence = std::max(next_sequence, entry.sequence + 1);
        continue;
      case EntryClass::kTorn: ++found.skipped_torn; break;
      case EntryClass::kInvalid: ++found.skipped_invalid; break;
      case EntryClass::kFree: break;
    }
    free_slots.push_back(slot);
  }
  // Newest first: of two entries for one key (a crash between committing the
  // new one and invalidating the old), or two overlapping extents, the later
  // commit wins and the loser is invalidated so it cannot return later.
  std::stable_sort(valid.begin(), valid.end(), [](const auto& a, const auto& b) {
    return a.second.sequence > b.second.sequence;
  });
  std::unordered_map<uint64_t, LiveEntry> by_key;
  std::unordered_map<uint64_t, uint64_t> key_by_offset;
  for (const auto& [slot, entry] : valid) {
    const Extent extent{entry.offset, entry.length};
    if (by_key.count(entry.key) != 0) {
      ++found.superseded;
      losers.push_back(slot);
    } else if (key_by_offset.count(entry.offset) != 0 || !ReserveExtent(extent).ok()) {
      ++found.skipped_invalid;
      losers.push_back(slot);
    } else {
      by_key[entry.key] =
          LiveEntry{slot, extent, entry.data_checksum, entry.sequence, entry.flags, false};
      key_by_offset[entry.offset] = entry.key;
      ++found.recovered;
    }
  }
  std::lock_guard<std::mutex> lock(index_mutex_);
  for (uint64_t slot : losers) SetSlotStateLocked(slot, EntryState::kFree);
  free_slots.insert(free_slots.end(), losers.begin(), losers.end());
  std::sort(free_slots.begin(), free_slots.end(), std::greater<uint64_t>());
  free_slots_ = std::move(free_slots);
  by_key_ = std::move(by_key);
  key_by_offset_ = std::move(key_by_offset);
  next_sequence_ = next_sequence;
  stats_.recovered = found.recovered;
  stats_.skipped_torn = found.skipped_torn;
  stats_.skipped_invalid = found.skipped_invalid;
  stats_.superseded = found.superseded;
}

Status PmemTier::ReadImpl(uint64_t address, void* dst, uint64_t bytes) {
  std::memcpy(dst, data_ + address, bytes);
  return Status::Ok();
}

Status PmemTier::WriteImpl(uint64_t address, const void* src, uint64_t bytes) {
  // Durability is Flush()'s and Commit()'s job. On DAX the copy flushes its
  // cache lines as it goes and Flush() only drains; on a page mapping a
  // per-write msync would cost more than the copy, so Flush() msyncs once.
  const unsigned flags = store_granularity_ == PmemStoreGranularity::kPage
                             ? PMEM2_F_MEM_NOFLUSH
                             : PMEM2_F_MEM_NODRAIN;
  mapping_->memcpy_fn(data_ + address, src, bytes, flags);
  if (!written_.load(std::memory_order_relaxed)) written_.store(true, std::memory_order_relaxed);
  return Status::Ok();
}

Status PmemTier::FlushImpl() {
  written_.store(false, std::memory_order_relaxed);
  if (store_granularity_ == PmemStoreGranularity::kPage) {
    mapping_->persist_fn(data_, header_.data_bytes);  // msync: only dirty pages cost
  } else {
    mapping_->drain_fn();
  }
  return Status::Ok();
}

void* PmemTier::HostAddressImpl(uint64_t address) const { return data_ + address; }

void PmemTier::WriteSlotLocked(uint64_t slot, const Entry& entry) {
  mapping_->memcpy_fn(&slots_[slot], &entry, sizeof(Entry), 0);  // copied and persisted
}

void PmemTier::SetSlotStateLocked(uint64_t slot, EntryState state) {
  // One aligned 8-byte store is failure-atomic on persistent memory and never
  // straddles a sector on a page mapping: the state flips whole or not at all.
  __atomic_store_n(&slots_[slot].state, static_cast<uint64_t>(state), __ATOMIC_RELEASE);
  mapping_->persist_fn(&slots_[slot].state, sizeof(uint64_t));
}

std::optional<Extent> PmemTier::DropLocked(
    std::unordered_map<uint64_t, LiveEntry>::iterator it) {
  const LiveEntry entry = it->second;
  SetSlotStateLocked(entry.slot, EntryState::kFree);
  free_slots_.push_back(entry.slot);
  key_by_offset_.erase(entry.extent.offset);
  by_key_.erase(it);
  if (entry.claimed) return std::nullopt;
  return entry.extent;  // recovered and never handed out: nobody else can free it
}

Status PmemTier::CommitImpl(uint64_t key, const Extent& extent, uint32_t flags) {
  const unsigned char* bytes = data_ + extent.offset;
  const uint32_t checksum = Crc32c(bytes, extent.length);
  // The bytes are durable before any entry vouches for them.
  mapping_->persist_fn(bytes, extent.length);
  std::optional<Extent> release;
  {
    std::lock_guard<std::mutex> lock(index_mutex_);
    auto owner = key_by_offset_.find(extent.offset);
    if (owner != key_by_offset_.end() && owner->second != key) {
      return Status::AlreadyExists(name() + ": the extent at offset " +
                                   std::to_string(extent.offset) +
                                   " is already committed under key " +
                                   std::to_string(owner->second));
    }
    if (free_slots_.empty()) {
      return Status::OutOfSpace(name() + ": the index is full (" +
                                std::to_string(header_.index_entries) + " entries)");
    }
    const uint64_t slot = free_slots_.back();
    free_slots_.pop_back();
    Entry entry{};
    entry.key = key;
    entry.offset = extent.offset;
    entry.length = extent.length;
    entry.sequence = next_sequence_++;
    entry.data_checksum = checksum;
    entry.flags = flags;
    entry.state = static_cast<uint64_t>(EntryState::kPending);
    pmem::SealEntry(&entry, header_.file_id);
    // Two steps, each persisted: a crash after the first leaves a pending
    // slot (skipped at open), never a half-written "valid" one.
    WriteSlotLocked(slot, entry);
    SetSlotStateLocked(slot, EntryState::kValid);
    auto old = by_key_.find(key);
    if (old != by_key_.end()) {
      // The new entry is durable first; a crash before this line leaves two
      // valid entries and recovery keeps the higher sequence.
      release = DropLocked(old);
      if (release && *release == extent) release.reset();
    }
    by_key_[key] = LiveEntry{slot, extent, checksum, entry.sequence, flags, true};
    key_by_offset_[extent.offset] = key;
    ++stats_.commits;
  }
  if (release) return Free(*release);
  return Status::Ok();
}

Result<Extent> PmemTier::LookupImpl(uint64_t key, uint32_t* flags) {
  LiveEntry entry;
  {
    std::lock_guard<std::mutex> lock(index_mutex_);
    ++stats_.lookups;
    auto it = by_key_.find(key);
    if (it == by_key_.end()) {
      return Status::NotFound(name() + ": no committed extent for key " + std::to_string(key));
    }
    entry = it->second;
  }
  // Checksummed outside the lock: it reads the whole extent.
  const uint32_t computed = Crc32c(data_ + entry.extent.offset, entry.extent.length);
  std::lock_guard<std::mutex> lock(index_mutex_);
  if (computed != entry.data_checksum) {
    ++stats_.lookup_corruptions;
    char detail[96];
    std::snprintf(detail, sizeof(detail), " (stored crc32c 0x%08x, computed 0x%08x)",
                  entry.data_checksum, computed);
    return Status::Corruption(name() + ": key " + std::to_string(key) + ": the " +
                              std::to_string(entry.extent.length) + " bytes at offset " +
                              std::to_string(entry.extent.offset) +
                              " no longer match their checksum" + detail);
  }
  auto it = by_key_.find(key);
  if (it == by_key_.end() || it->second.sequence != entry.sequence) {
    return Status::Busy(name() + ": key " + std::to_string(key) +
                        " was committed or forgotten during the lookup");
  }
  it->second.claimed = true;
  *flags = entry.flags;
  return entry.extent;
}

Status PmemTier::ForgetImpl(uint64_t key) {
  std::optional<Extent> release;
  {
    std::lock_guard<std::mutex> lock(index_mutex_);
    auto it = by_key_.find(key);
    if (it == by_key_.end()) {
      return Status::NotFound(name() + ": no committed extent for key " + std::to_string(key));
    }
    release = DropLocked(it);
    ++stats_.forgets;
  }
  if (release) return Free(*release);
  return Status::Ok();
}

bool PmemTier::ReclaimStaleImpl() {
  std::optional<Extent> release;
  {
    std::lock_guard<std::mutex> lock(index_mutex_);
    auto oldest = by_key_.end();
    for (auto it = by_key_.begin(); it != by_key_.end(); ++it) {
      if (it->second.claimed) continue;
      if (oldest == by_key_.end() || it->second.sequence < oldest->second.sequence) oldest = it;
    }
    if (oldest == by_key_.end()) return false;
    release = DropLocked(oldest);
    ++stats_.reclaimed;
  }
  if (release) (void)Free(*release);
  return true;
}

void PmemTier::OnFreeLocked(const Extent& extent) {
  std::lock_guard<std::mutex> lock(index_mutex_);
  auto owner = key_by_offset_.find(extent.offset);
  if (owner == key_by_offset_.end()) return;
  (void)DropLocked(by_key_.find(owner->second));
  ++stats_.dropped_by_free;
}

PmemIndexStats PmemTier::index_stats() const {
  std::lock_guard<std::mutex> lock(index_mutex_);
  PmemIndexStats stats = stats_;
  stats.index_used = by_key_.size();
  return stats;
}

}  // namespace tiercache
