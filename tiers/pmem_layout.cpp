#include "tiers/pmem_layout.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "common/units.h"
#include "tiers/pmem_checksum.h"

namespace tiercache::pmem {
namespace {

// Data starts on a boundary that is both a page (so the region maps and
// msyncs cleanly) and an allocation unit.
uint64_t DataAlignment(uint64_t granularity) { return std::max(granularity, kPageBytes); }

bool GranularityInRange(uint64_t granularity) {
  return IsPowerOfTwo(granularity) && granularity >= kMinGranularity &&
         granularity <= kMaxGranularity;
}

std::string Hex(uint64_t value) {
  char text[24];
  std::snprintf(text, sizeof(text), "0x%llx", static_cast<unsigned long long>(value));
  return text;
}

Status Inconsistent(const std::string& what) {
  return Status::Corruption("header layout is inconsistent: " + what);
}

// The layout rules shared by planning and validation; `what` names the
// first rule broken.
bool LayoutHolds(const Header& h, std::string* what) {
  const uint64_t align = GranularityInRange(h.granularity) ? DataAlignment(h.granularity) : 0;
  if (h.header_bytes != kHeaderRegionBytes) {
    *what = "header region of " + std::to_string(h.header_bytes) + " bytes";
  } else if (h.entry_bytes != kEntryBytes) {
    *what = "index entries of " + std::to_string(h.entry_bytes) + " bytes";
  } else if (align == 0) {
    *what = "granularity " + std::to_string(h.granularity);
  } else if (h.index_offset != kHeaderRegionBytes) {
    *what = "index at offset " + std::to_string(h.index_offset);
  } else if (h.index_entries == 0 || h.index_entries > kMaxIndexEntries) {
    *what = std::to_string(h.index_entries) + " index entries";
  } else if (h.data_offset % align != 0 ||
             h.data_offset < h.index_offset + h.index_entries * kEntryBytes) {
    *what = "data region at offset " + std::to_string(h.data_offset);
  } else if (h.data_bytes == 0 || h.data_bytes % align != 0 ||
             h.data_bytes > UINT64_MAX - h.data_offset) {
    *what = "data region of " + std::to_string(h.data_bytes) + " bytes";
  } else if (h.file_bytes != h.data_offset + h.data_bytes) {
    *what = "file size " + std::to_string(h.file_bytes) + " != data offset + data bytes";
  } else {
    return true;
  }
  return false;
}

}  // namespace

uint32_t HeaderChecksum(const Header& header) {
  return Crc32c(&header, offsetof(Header, checksum));
}

void SealHeader(Header* header) { header->checksum = HeaderChecksum(*header); }

Result<Header> PlanHeader(const LayoutRequest& request, uint64_t file_id) {
  if (!GranularityInRange(request.granularity)) {
    return Status::InvalidArgument("pmem granularity must be a power of two in [64 B, 1 GiB], not " +
                                   std::to_string(request.granularity));
  }
  if (request.index_entries == 0 || request.index_entries > kMaxIndexEntries) {
    return Status::InvalidArgument("pmem index entries must be in [1, " +
                                   std::to_string(kMaxIndexEntries) + "], not " +
                                   std::to_string(request.index_entries));
  }
  if (request.capacity == 0 || request.capacity > (1ull << 62)) {
    return Status::InvalidArgument("pmem capacity of " + std::to_string(request.capacity) +
                                   " bytes is out of range");
  }
  const uint64_t align = DataAlignment(request.granularity);
  Header h{};
  h.magic = kMagic;
  h.version = kVersion;
  h.header_bytes = kHeaderRegionBytes;
  h.generation = 1;
  h.file_id = file_id;
  h.granularity = request.granularity;
  h.index_offset = kHeaderRegionBytes;
  h.index_entries = request.index_entries;
  h.entry_bytes = kEntryBytes;
  h.data_offset = AlignUp(kHeaderRegionBytes + request.index_entries * kEntryBytes, align);
  h.data_bytes = AlignUp(request.capacity, align);
  h.file_bytes = h.data_offset + h.data_bytes;
  SealHeader(&h);
  return h;
}

Result<Header> GrowHeader(const Header& header, uint64_t capacity) {
  if (capacity <= header.data_bytes || capacity > (1ull << 62)) {
    return Status::InvalidArgument("cannot grow a pmem data region of " +
                                   std::to_string(header.data_bytes) + " bytes to " +
                                   std::to_string(capacity));
  }
  Header h = header;
  h.generation = header.generation + 1;
  h.data_bytes = AlignUp(capacity, DataAlignment(header.granularity));
  h.file_bytes = h.data_offset + h.data_bytes;
  SealHeader(&h);
  return h;
}

Status ValidateHeader(const Header& h) {
  if (h.magic != kMagic) {
    return Status::Corruption("not a tiercache PMEM file (bad magic " + Hex(h.magic) + ")");
  }
  const uint32_t computed = HeaderChecksum(h);
  if (h.checksum != computed) {
    return Status::Corruption("header checksum mismatch (stored " + Hex(h.checksum) +
                              ", computed " + Hex(computed) + ")");
  }
  if (h.version != kVersion) {
    return Status::Corruption("unsupported PMEM format version " + std::to_string(h.version) +
                              " (this build reads version " + std::to_string(kVersion) + ")");
  }
  std::string what;
  if (!LayoutHolds(h, &what)) return Inconsistent(what);
  return Status::Ok();
}

Result<Header> ChooseHeader(const unsigned char* region, uint64_t file_size, int* chosen_copy) {
  if (file_size < kHeaderRegionBytes) {
    return Status::Corruption("file is " + std::to_string(file_size) +
                              " bytes, too short for the " +
                              std::to_string(kHeaderRegionBytes) + "-byte header region");
  }
  Header copies[2];
  Status status[2];
  for (int i = 0; i < 2; ++i) {
    std::memcpy(&copies[i], region + kHeaderCopyOffset[i], sizeof(Header));
    status[i] = ValidateHeader(copies[i]);
  }
  int chosen = -1;
  if (status[0].ok() && status[1].ok()) {
    chosen = copies[1].generation > copies[0].generation ? 1 : 0;
  } else if (status[0].ok() || status[1].ok()) {
    chosen = status[0].ok() ? 0 : 1;
  } else {
    return status[0];
  }
  const Header& h = copies[chosen];
  if (file_size < h.file_bytes) {
    return Status::Corruption("truncated: the file is " + std::to_string(file_size) +
                              " bytes but its header describes " + std::to_string(h.file_bytes));
  }
  if (chosen_copy != nullptr) *chosen_copy = chosen;
  return h;
}

uint32_t EntryChecksum(const Entry& entry, uint64_t file_id) {
  const uint32_t seed = Crc32c(&file_id, sizeof(file_id));
  const uint32_t sum = Crc32c(&entry, offsetof(Entry, entry_checksum), seed);
  return entry.flags == 0 ? sum : Crc32c(&entry.flags, sizeof(entry.flags), sum);
}

void SealEntry(Entry* entry, uint64_t file_id) {
  entry->entry_checksum = EntryChecksum(*entry, file_id);
}

EntryClass ClassifyEntry(const Entry& entry, const Header& header) {
  switch (static_cast<EntryState>(entry.state)) {
    case EntryState::kFree: return EntryClass::kFree;
    case EntryState::kPending: return EntryClass::kTorn;
    case EntryState::kValid: break;
    default: return EntryClass::kInvalid;
  }
  if (entry.entry_checksum != EntryChecksum(entry, header.file_id)) return EntryClass::kTorn;
  const uint64_t space = header.data_bytes;
  if (entry.length == 0 || entry.offset % header.granularity != 0 || entry.offset >= space ||
      entry.length > space - entry.offset ||
      AlignUp(entry.length, header.granularity) > space - entry.offset) {
    return EntryClass::kInvalid;
  }
  return EntryClass::kValid;
}

}  // namespace tiercache::pmem
