// Randomised damage to the header and index of a small PMEM file. Whatever
// the bytes, Open() must not crash: it either fails with kCorruption and
// leaves the file as it was, or it opens, and then every block it hands out
// is byte-exact and the tier works.
#include <algorithm>
#include <cstring>
#include <map>
#include <random>

#include "tests/pmem/pmem_test_util.h"
#include "tiers/pmem_layout.h"
#include "tiers/pmem_tier.h"

namespace tiercache::testing {
namespace {

constexpr uint64_t kKeys = 6;
constexpr int kIterations = 3000;

uint64_t BlockBytes(uint64_t key) { return 700 * key + 3; }

class PmemFuzzTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(dir_.ok());
    PmemTierOptions options = SmallOptions(path_, 64 * kKiB, 16);
    options.granularity = 64;
    auto tier = PmemTier::Open(options);
    ASSERT_TRUE(tier.ok()) << tier.status().ToString();
    for (uint64_t key = 1; key <= kKeys; ++key) {
      Result<Extent> e = (*tier)->Allocate(BlockBytes(key));
      ASSERT_TRUE(e.ok());
      std::vector<unsigned char> data = Pattern(BlockBytes(key), key);
      ASSERT_TRUE((*tier)->Write(*e, 0, data.data(), data.size()).ok());
      ASSERT_TRUE((*tier)->Commit(key, *e).ok());
    }
    ASSERT_TRUE((*tier)->Forget(2).ok());  // a free slot between used ones
    tier->reset();
    pristine_ = ReadWholeFile(path_);
    std::memcpy(&header_, pristine_.data(), sizeof(header_));
    ASSERT_EQ(pristine_.size(), header_.file_bytes);
  }

  // Opens the file as it is now and checks the outcome. With `write`, also
  // checks a fresh allocation round-trips (that dirties the file, and the
  // flush at close costs a disk write, so only some iterations do it).
  // `image` is what the file holds now.
  void OpenAndCheck(const std::string& what, const std::vector<unsigned char>& image,
                    bool write) {
    SCOPED_TRACE(what);
    auto tier = PmemTier::Open(SmallOptions(path_, 0));
    if (!tier.ok()) {
      ASSERT_EQ(ErrorCode::kCorruption, tier.status().code()) << tier.status().ToString();
      ASSERT_TRUE(image == ReadWholeFile(path_)) << "a rejected file was written";
      ++rejected_;
      return;
    }
    ++opened_;
    PmemTier& t = **tier;
    const PmemIndexStats stats = t.index_stats();
    ASSERT_LE(stats.recovered + stats.skipped_torn + stats.skipped_invalid + stats.superseded,
              stats.index_entries);
    ASSERT_LE(t.used(), t.capacity());
    for (uint64_t key = 1; key <= kKeys + 2; ++key) {
      Result<Extent> e = t.Lookup(key);
      if (!e.ok()) {
        ASSERT_TRUE(e.status().code() == ErrorCode::kNotFound ||
                    e.status().code() == ErrorCode::kCorruption)
            << e.status().ToString();
        continue;
      }
      // A verified block is the one committed under that key, whole.
      ASSERT_TRUE(key <= kKeys && key != 2) << "key " << key << " was never committed";
      ASSERT_EQ(BlockBytes(key), e->length);
      std::vector<unsigned char> out(e->length);
      ASSERT_TRUE(t.Read(*e, 0, out.data(), out.size()).ok());
      ASSERT_TRUE(out == Pattern(BlockBytes(key), key)) << "key " << key;
      ++verified_;
    }
    // The tier is usable: whatever space is left allocates and round-trips.
    Result<Extent> e = t.Allocate(64);
    if (write && e.ok()) {
      const std::vector<unsigned char> in = Pattern(64, 9);
      std::vector<unsigned char> out(64);
      ASSERT_TRUE(t.Write(*e, 0, in.data(), 64).ok());
      ASSERT_TRUE(t.Read(*e, 0, out.data(), 64).ok());
      ASSERT_TRUE(in == out);
    }
    if (e.ok()) {
      ASSERT_TRUE(t.Free(*e).ok());
    }
  }

  ScopedTempDir dir_;
  std::string path_ = dir_.File("fuzz.pmem");
  std::vector<unsigned char> pristine_;
  pmem::Header header_{};
  int opened_ = 0, rejected_ = 0, verified_ = 0;
};

TEST_F(PmemFuzzTest, RandomDamageToHeaderAndIndexNeverCrashesOpen) {
  std::mt19937_64 rng(20261122);
  const uint64_t metadata_end = header_.index_offset + header_.index_entries * pmem::kEntryBytes;
  std::vector<unsigned char> image = pristine_;
  for (int i = 0; i < kIterations && !HasFatalFailure(); ++i) {
    // Start from the pristine metadata; the data region is never damaged
    // here and opening never writes it unless asked to.
    std::copy(pristine_.begin(), pristine_.begin() + metadata_end, image.begin());
    unsigned char* bytes = image.data();
    // Mostly the index, sometimes the header copies, a few changes each.
    const int changes = 1 + static_cast<int>(rng() % 6);
    for (int c = 0; c < changes; ++c) {
      const bool in_header = rng() % 4 == 0;
      const uint64_t base = in_header ? pmem::kHeaderCopyOffset[rng() % 2] : header_.index_offset;
      const uint64_t span = in_header ? sizeof(pmem::Header) : metadata_end - header_.index_offset;
      const uint64_t at = base + rng() % span;
      switch (rng() % 3) {
        case 0: bytes[at] ^= static_cast<unsigned char>(1u << (rng() % 8)); break;
        case 1: bytes[at] = static_cast<unsigned char>(rng()); break;
        default: {  // an aligned 8-byte word, as a torn store would leave
          const uint64_t word = rng();
          std::memcpy(&bytes[at & ~uint64_t{7}], &word, 8);
        }
      }
    }
    PatchFile(path_, 0, bytes, metadata_end);
    const bool write = i % 64 == 0;
    OpenAndCheck("iteration " + std::to_string(i), image, write);
    if (write || HasFailure()) image = ReadWholeFile(path_);  // the check wrote data
  }
  // Both outcomes occurred, and the intact entries kept loading.
  EXPECT_GT(opened_, kIterations / 4);
  EXPECT_GT(rejected_, 0);
  EXPECT_GT(verified_, opened_);
}

TEST_F(PmemFuzzTest, ResealedHeadersWithRandomFieldsNeverCrashOpen) {
  // Damage that passes the checksum: only the layout checks stand between
  // these headers and the mapping.
  std::mt19937_64 rng(7);
  const uint64_t metadata_end = header_.index_offset + header_.index_entries * pmem::kEntryBytes;
  std::vector<unsigned char> image = pristine_;
  for (int i = 0; i < kIterations / 3 && !HasFatalFailure(); ++i) {
    pmem::Header h = header_;
    uint64_t* fields[] = {&h.granularity, &h.index_offset, &h.index_entries,
                          &h.data_offset, &h.data_bytes,   &h.file_bytes};
    uint64_t*& field = fields[rng() % 6];
    switch (rng() % 3) {
      case 0: *field = rng(); break;
      case 1: *field += (rng() % 9) * 64 - 256; break;
      default: *field = uint64_t{1} << (rng() % 64);
    }
    pmem::SealHeader(&h);
    // Pristine metadata (an earlier open may have invalidated entries), then
    // the new header in both copies.
    std::copy(pristine_.begin(), pristine_.begin() + metadata_end, image.begin());
    for (uint64_t copy : pmem::kHeaderCopyOffset) {
      std::memcpy(image.data() + copy, &h, sizeof(h));
    }
    PatchFile(path_, 0, image.data(), metadata_end);
    const bool write = i % 64 == 0;
    OpenAndCheck("resealed " + std::to_string(i), image, write);
    if (write) image = ReadWholeFile(path_);
  }
  EXPECT_GT(rejected_, 0);
}

}  // namespace
}  // namespace tiercache::testing
