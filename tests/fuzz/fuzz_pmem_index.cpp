// Fuzz target: the PMEM tier's on-media header and index. A valid small file
// (five committed blocks) is built once; each input damages its header and
// index region, as raw bytes over the region or as patches, optionally
// resealing every checksum so the damage reaches the layout checks. Then the
// pure format checks run over the region, and the tier opens the file:
// refused with kCorruption and the file left untouched, or opened with every
// block it hands out verified and byte-exact, and the tier usable.
#include <fcntl.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tiers/pmem_layout.h"
#include "tiers/pmem_tier.h"

namespace {

using namespace tiercache;
constexpr uint64_t kKeys = 5;
constexpr uint64_t kIndexEntries = 16;
constexpr uint64_t kRegion = pmem::kHeaderRegionBytes + kIndexEntries * pmem::kEntryBytes;

std::vector<unsigned char> Pattern(uint64_t bytes, uint64_t seed) {
  std::vector<unsigned char> v(bytes);
  for (uint64_t i = 0; i < bytes; ++i) v[i] = static_cast<unsigned char>(seed * 131 + i * 7);
  return v;
}

std::vector<unsigned char> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<unsigned char>(std::istreambuf_iterator<char>(in), {});
}

void WriteFile(const std::string& path, const std::vector<unsigned char>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

struct Pristine {
  std::string path;
  std::vector<unsigned char> image;
  Extent extents[kKeys + 1];
};

const Pristine& Setup() {
  static Pristine* p = [] {
    auto* p = new Pristine;
    const char* tmp = std::getenv("TMPDIR");
    std::string dir = std::string(tmp != nullptr && *tmp ? tmp : "/tmp") + "/tcfuzz-XXXXXX";
    if (mkdtemp(dir.data()) == nullptr) std::abort();
    static std::string made;
    made = dir;
    std::atexit([] { std::filesystem::remove_all(made); });
    p->path = dir + "/index.pmem";
    PmemTierOptions options;
    options.path = p->path;
    options.capacity = 64 * 1024;
    options.index_entries = kIndexEntries;
    options.granularity = 64;
    auto tier = PmemTier::Open(options);
    if (!tier.ok()) std::abort();
    for (uint64_t key = 1; key <= kKeys; ++key) {
      Extent e = (*tier)->Allocate(500 * key + 3).value();
      const std::vector<unsigned char> data = Pattern(e.length, key);
      if (!(*tier)->Write(e, 0, data.data(), data.size()).ok()) std::abort();
      if (!(*tier)->Commit(key, e).ok()) std::abort();
      p->extents[key] = e;
    }
    tier->reset();
    p->image = ReadFile(p->path);
    return p;
  }();
  return *p;
}

// Reseals both header copies and every index entry, so damage passes the
// checksums.
void Reseal(std::vector<unsigned char>& image) {
  for (uint64_t offset : pmem::kHeaderCopyOffset) {
    pmem::Header h;
    std::memcpy(&h, image.data() + offset, sizeof(h));
    pmem::SealHeader(&h);
    std::memcpy(image.data() + offset, &h, sizeof(h));
  }
  pmem::Header h;
  std::memcpy(&h, image.data(), sizeof(h));
  for (uint64_t slot = 0; slot < kIndexEntries; ++slot) {
    pmem::Entry e;
    unsigned char* at = image.data() + pmem::kHeaderRegionBytes + slot * pmem::kEntryBytes;
    std::memcpy(&e, at, sizeof(e));
    pmem::SealEntry(&e, h.file_id);
    std::memcpy(at, &e, sizeof(e));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Pristine& p = Setup();
  if (size == 0) return 0;
  std::vector<unsigned char> image = p.image;
  const uint8_t mode = data[0];
  data++, size--;
  if (mode & 1) {  // patches: [u16 offset][u8 length][bytes]...
    while (size >= 3) {
      const uint64_t offset = (data[0] | data[1] << 8) % kRegion;
      uint64_t n = std::min<uint64_t>(data[2], size - 3);
      n = std::min(n, kRegion - offset);
      std::memcpy(image.data() + offset, data + 3, n);
      data += 3 + n, size -= 3 + n;
    }
  } else {  // raw bytes over the start of the region
    std::memcpy(image.data(), data, std::min<uint64_t>(size, kRegion));
  }
  if (mode & 2) Reseal(image);
  if (mode & 4) image.resize(image.size() - (mode >> 3) * 997 % image.size());  // truncated

  // The pure checks first.
  Result<pmem::Header> header = pmem::ChooseHeader(image.data(), image.size());
  if (header.ok()) {
    for (uint64_t slot = 0; slot < kIndexEntries; ++slot) {
      pmem::Entry e;
      std::memcpy(&e, image.data() + pmem::kHeaderRegionBytes + slot * pmem::kEntryBytes,
                  sizeof(e));
      (void)pmem::ClassifyEntry(e, *header);
    }
  }

  WriteFile(p.path, image);
  PmemTierOptions options;
  options.path = p.path;
  auto tier = PmemTier::Open(options);
  if (!tier.ok()) {
    if (tier.status().code() != ErrorCode::kCorruption) std::abort();
    if (ReadFile(p.path) != image) std::abort();  // a refused file was written
    return 0;
  }
  for (uint64_t key = 1; key <= kKeys + 2; ++key) {
    Result<Extent> e = (*tier)->Lookup(key);
    if (!e.ok()) continue;
    std::vector<unsigned char> got(e->length);
    if (!(*tier)->Read(*e, 0, got.data(), got.size()).ok()) std::abort();
    if (key <= kKeys && e->offset == p.extents[key].offset &&
        e->length == p.extents[key].length && got != Pattern(e->length, key)) {
      std::abort();  // a verified block with the wrong bytes
    }
  }
  Result<Extent> fresh = (*tier)->Allocate(100);
  if (fresh.ok()) {
    const std::vector<unsigned char> bytes = Pattern(100, 99);
    if (!(*tier)->Write(*fresh, 0, bytes.data(), bytes.size()).ok()) std::abort();
    std::vector<unsigned char> back(100);
    if (!(*tier)->Read(*fresh, 0, back.data(), back.size()).ok() || back != bytes) std::abort();
  }
  return 0;
}
