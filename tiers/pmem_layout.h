// The PMEM tier's on-media format: a file holding a header region, an index
// of fixed-size entries and a data region (docs/tiers-pmem.md draws it).
//
//   [0, 4096)                          header region: two 128-byte header
//                                      copies, at 0 and at 2048
//   [4096, 4096 + 64 * index_entries)  index: one 64-byte entry per slot
//   [data_offset, file_bytes)          data: the tier's address space
//
// All integers are little-endian. Every header copy and every index entry
// carries a CRC32C, so a torn or corrupted header or entry is recognised
// rather than trusted. This file holds the pure format logic (planning,
// encoding, validation); pmem_tier.cpp does the mapping and the I/O.
//
// Thread safety: pure functions over caller-owned values.
#ifndef TIERCACHE_TIERS_PMEM_LAYOUT_H_
#define TIERCACHE_TIERS_PMEM_LAYOUT_H_

#include <bit>
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/status.h"

namespace tiercache::pmem {

static_assert(std::endian::native == std::endian::little,
              "the PMEM format is little-endian and is mapped in place");

constexpr uint64_t kMagic = 0x31304D454D504354ull;  // bytes "TCPMEM01"
constexpr uint32_t kVersion = 1;
constexpr uint64_t kHeaderRegionBytes = 4096;
constexpr uint64_t kHeaderCopyOffset[2] = {0, 2048};
constexpr uint64_t kEntryBytes = 64;
constexpr uint64_t kPageBytes = 4096;
constexpr uint64_t kMinGranularity = 64;
constexpr uint64_t kMaxGranularity = 1ull << 30;
constexpr uint64_t kMaxIndexEntries = 1ull << 26;  // a 4 GiB index

// One header copy. The copy with the valid checksum and the higher
// generation wins, so rewriting a header (growing the file) writes the other
// copy and a torn rewrite leaves the old one in charge.
struct Header {
  uint64_t magic;          // 0   kMagic
  uint32_t version;        // 8   kVersion
  uint32_t header_bytes;   // 12  kHeaderRegionBytes
  uint64_t generation;     // 16  bumped on every header rewrite
  uint64_t file_id;        // 24  random at creation; seeds entry checksums
  uint64_t granularity;    // 32  allocation unit of the data region
  uint64_t index_offset;   // 40  kHeaderRegionBytes
  uint64_t index_entries;  // 48  slots in the index
  uint32_t entry_bytes;    // 56  kEntryBytes
  uint32_t reserved0;      // 60  zero
  uint64_t data_offset;    // 64  page- and granularity-aligned
  uint64_t data_bytes;     // 72  the tier's capacity
  uint64_t file_bytes;     // 80  data_offset + data_bytes
  uint8_t reserved[36];    // 88  zero
  uint32_t checksum;       // 124 CRC32C of bytes [0, 124)
};
static_assert(sizeof(Header) == 128);
static_assert(offsetof(Header, checksum) == 124);

// Slot states: long, distinctive patterns, so that random damage is far more
// likely to read as "unknown" (skipped, counted) than as a state.
enum class EntryState : uint64_t {
  kFree = 0,
  kPending = 0x474E49444E455054ull,  // written, not yet valid ("TPENDING")
  kValid = 0x44494C41565F5054ull,    // committed ("TP_VALID")
};

// One index slot, 64-byte aligned so a slot shares no cache line with
// another. `state` is written last, with one 8-byte store.
struct Entry {
  uint64_t key;             // 0
  uint64_t offset;          // 8   data-region offset of the extent
  uint64_t length;          // 16  extent length in bytes (unrounded)
  uint64_t sequence;        // 24  commit order; the newest of duplicates wins
  uint32_t data_checksum;   // 32  CRC32C of the extent's bytes
  uint32_t entry_checksum;  // 36  CRC32C of file_id, then bytes [0, 36)
  uint64_t state;           // 40  EntryState
  uint32_t flags;           // 48  the committer's flags (Tier::Commit); 0 in files
                            //     written before flags existed
  uint32_t reserved0;       // 52  zero
  uint64_t reserved1;       // 56  zero
};
static_assert(sizeof(Entry) == kEntryBytes);
static_assert(offsetof(Entry, state) == 40);
static_assert(offsetof(Entry, flags) == 48);

// The requested shape of a new file.
struct LayoutRequest {
  uint64_t capacity = 0;       // data bytes wanted (rounded up)
  uint64_t index_entries = 0;
  uint64_t granularity = 0;
};

// A fresh header for `request` (generation 1), or kInvalidArgument when the
// request is out of range. The result passes ValidateHeader().
Result<Header> PlanHeader(const LayoutRequest& request, uint64_t file_id);

// The header grown to hold `capacity` data bytes (generation bumped).
// REQUIRES: `header` is valid and capacity > header.data_bytes.
Result<Header> GrowHeader(const Header& header, uint64_t capacity);

uint32_t HeaderChecksum(const Header& header);
void SealHeader(Header* header);  // sets the checksum

// Checks one copy on its own: magic, checksum, version, then the layout's
// internal consistency. kCorruption with a message saying which.
Status ValidateHeader(const Header& header);

// Picks the header to trust from the first kHeaderRegionBytes of a file of
// `file_size` bytes: the valid copy with the higher generation. kCorruption
// when neither copy is valid (the message is copy 0's, the more telling) or
// when the file is shorter than that header's file_bytes (truncated).
// `chosen_copy` (optional) receives 0 or 1.
Result<Header> ChooseHeader(const unsigned char* region, uint64_t file_size,
                            int* chosen_copy = nullptr);

// Entry checksums and classification. The checksum covers file_id, bytes
// [0, 36) and, only when it is non-zero, `flags`: an entry without flags has
// the checksum it had before the field existed, so older files still open.
uint32_t EntryChecksum(const Entry& entry, uint64_t file_id);
void SealEntry(Entry* entry, uint64_t file_id);

enum class EntryClass {
  kFree,     // state kFree
  kValid,    // state kValid, checksum and range good
  kTorn,     // state kPending, or kValid with a bad checksum: a commit cut short
  kInvalid,  // unknown state, or a checksummed entry whose range is impossible
};
EntryClass ClassifyEntry(const Entry& entry, const Header& header);

}  // namespace tiercache::pmem

#endif  // TIERCACHE_TIERS_PMEM_LAYOUT_H_
