// PmemTier: a persistent, byte-addressable tier over a file mapped with
// libpmem2 (the only user of libpmem2 in tiercache). On a DAX filesystem the
// mapping reaches persistent memory directly (byte or cache-line store
// granularity); on any other filesystem it is an ordinary shared mapping with
// page granularity, made durable by msync. Both run the same code.
//
// Contract
// - The file holds a checksummed header, an index of `index_entries` slots and
//   the data region that is the tier's address space (docs/tiers-pmem.md).
// - Write() copies with pmem2's memcpy; Flush() makes every completed write
//   durable. Commit(key, extent) first makes the extent's bytes durable (also
//   bytes stored directly through HostAddress()), then durably records
//   (key, extent, CRC32C of the bytes) in an index slot.
// - Open() of an existing file validates the header (kCorruption naming the
//   problem for bad magic, checksum, version, layout, or a truncated file;
//   such a file is never written), then rebuilds the allocator from the valid
//   index entries. Torn or damaged entries are skipped and counted
//   (index_stats()); their slots are reused.
// - Lookup(key) re-reads the extent and returns it only if its bytes still
//   match the committed checksum, else kCorruption (the entry stays; Forget()
//   drops it). An extent recovered at open that no Lookup has handed out yet
//   belongs to the tier: Forget() or a re-Commit of its key frees it.
// - One key per extent: committing an extent already committed under another
//   key is kAlreadyExists. Free() of a committed extent drops its entry.
// - The file is locked (flock) while open: a second Open() is kBusy.
//
// Thread safety: as Tier. Index operations serialise on one mutex; reads and
// writes of data run concurrently. Committing or looking up an extent while
// another thread frees it is a caller error.
#ifndef TIERCACHE_TIERS_PMEM_TIER_H_
#define TIERCACHE_TIERS_PMEM_TIER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "tiers/pmem_layout.h"
#include "tiers/tier.h"

namespace tiercache {
namespace pmem {
class PmemFile;
}  // namespace pmem

struct PmemTierOptions {
  std::string path;
  std::string name = "pmem";
  // Data bytes. Required to create a file. For an existing file: 0 keeps its
  // size, a larger value grows the file, a smaller one is ignored (a tier
  // never shrinks, so nothing stored is lost).
  uint64_t capacity = 0;
  bool create_if_missing = true;
  // Used only when the file is created; an existing file keeps its own.
  uint64_t index_entries = 65536;
  uint64_t granularity = 4096;  // allocation unit, a power of two in [64, 1 GiB]
};

// What the mapping guarantees about a persisted store: byte and cache-line
// mean DAX (persistent memory reached by CPU stores); page means an ordinary
// page-cache mapping made durable by msync.
enum class PmemStoreGranularity { kByte, kCacheLine, kPage };
const char* PmemStoreGranularityName(PmemStoreGranularity granularity);

// Counters of the persistent index since open. A snapshot.
struct PmemIndexStats {
  uint64_t index_entries = 0;     // slots in the file
  uint64_t index_used = 0;        // slots holding a committed extent now
  uint64_t recovered = 0;         // valid entries loaded at open
  uint64_t skipped_torn = 0;      // pending, or checksum mismatch, at open
  uint64_t skipped_invalid = 0;   // unknown state, impossible range or overlap, at open
  uint64_t superseded = 0;        // older duplicates of a key, invalidated at open
  uint64_t commits = 0;
  uint64_t lookups = 0;
  uint64_t lookup_corruptions = 0;
  uint64_t forgets = 0;
  uint64_t dropped_by_free = 0;   // entries dropped because their extent was freed
  uint64_t reclaimed = 0;         // unclaimed recovered entries forgotten for room
};

class PmemTier : public Tier {
 public:
  static Result<std::unique_ptr<PmemTier>> Open(const PmemTierOptions& options);
  ~PmemTier() override;  // flushes what Write() stored, unmaps, unlocks

  const std::string& path() const { return path_; }
  PmemStoreGranularity store_granularity() const { return store_granularity_; }
  bool dax() const { return store_granularity_ != PmemStoreGranularity::kPage; }
  bool created() const { return created_; }  // this Open() initialised the file
  PmemIndexStats index_stats() const;

 protected:
  Status ReadImpl(uint64_t address, void* dst, uint64_t bytes) override;
  Status WriteImpl(uint64_t address, const void* src, uint64_t bytes) override;
  Status FlushImpl() override;
  void* HostAddressImpl(uint64_t address) const override;
  bool IsPersistentImpl() const override { return true; }
  Status CommitImpl(uint64_t key, const Extent& extent, uint32_t flags) override;
  Result<Extent> LookupImpl(uint64_t key, uint32_t* flags) override;
  Status ForgetImpl(uint64_t key) override;
  bool ReclaimStaleImpl() override;
  void OnFreeLocked(const Extent& extent) override;

 private:
  struct Mapping;  // the libpmem2 objects; defined in pmem_tier.cpp

  // A committed entry as the index holds it in memory.
  struct LiveEntry {
    uint64_t slot = 0;
    Extent extent;
    uint32_t data_checksum = 0;
    uint64_t sequence = 0;
    uint32_t flags = 0;
    bool claimed = false;  // handed out by Lookup, or committed, since open
  };

  static Result<std::unique_ptr<Mapping>> MapFile(std::unique_ptr<pmem::PmemFile> file,
                                                 uint64_t length);
  PmemTier(const PmemTierOptions& options, const pmem::Header& header,
           std::unique_ptr<Mapping> mapping, bool created);
  void Recover();
  // Durable slot updates. REQUIRES: index_mutex_ held.
  void WriteSlotLocked(uint64_t slot, const pmem::Entry& entry);
  void SetSlotStateLocked(uint64_t slot, pmem::EntryState state);
  // Forgets `key`'s entry durably; returns the extent to free, if any.
  // REQUIRES: index_mutex_ held and `it` valid.
  std::optional<Extent> DropLocked(std::unordered_map<uint64_t, LiveEntry>::iterator it);

  const std::string path_;
  const pmem::Header header_;
  std::unique_ptr<Mapping> mapping_;
  const bool created_;
  PmemStoreGranularity store_granularity_ = PmemStoreGranularity::kPage;
  unsigned char* data_ = nullptr;     // the data region inside the mapping
  std::atomic<bool> written_{false};  // a Write() since the last Flush()
  pmem::Entry* slots_ = nullptr;      // the index inside the mapping

  mutable std::mutex index_mutex_;    // ordered after Tier's space mutex
  std::unordered_map<uint64_t, LiveEntry> by_key_;         // GUARDED_BY(index_mutex_)
  std::unordered_map<uint64_t, uint64_t> key_by_offset_;   // GUARDED_BY(index_mutex_)
  std::vector<uint64_t> free_slots_;  // a stack, lowest slot on top; GUARDED_BY(index_mutex_)
  uint64_t next_sequence_ = 1;        // GUARDED_BY(index_mutex_)
  PmemIndexStats stats_;              // GUARDED_BY(index_mutex_)
};

}  // namespace tiercache

#endif  // TIERCACHE_TIERS_PMEM_TIER_H_
