#include "tiers/pmem_layout.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "common/units.h"

namespace tiercache::pmem {
namespace {

Header Planned(uint64_t capacity = 10 * kMiB, uint64_t entries = 100, uint64_t granularity = 4096) {
  Result<Header> h = PlanHeader({capacity, entries, granularity}, 0x1234);
  EXPECT_TRUE(h.ok()) << h.status().ToString();
  return h.ok() ? *h : Header{};
}

// A header region holding `a` at copy 0 and `b` at copy 1.
std::vector<unsigned char> Region(const Header& a, const Header& b) {
  std::vector<unsigned char> region(kHeaderRegionBytes, 0);
  std::memcpy(region.data() + kHeaderCopyOffset[0], &a, sizeof(Header));
  std::memcpy(region.data() + kHeaderCopyOffset[1], &b, sizeof(Header));
  return region;
}

TEST(PmemLayout, PlansAConsistentLayout) {
  const Header h = Planned(10 * kMiB + 1, 100, 4096);
  EXPECT_TRUE(ValidateHeader(h).ok());
  EXPECT_EQ(kHeaderRegionBytes, h.index_offset);
  EXPECT_EQ(0u, h.data_offset % 4096);
  EXPECT_GE(h.data_offset, h.index_offset + 100 * kEntryBytes);
  EXPECT_EQ(10 * kMiB + 4096, h.data_bytes);  // rounded up to the granularity
  EXPECT_EQ(h.data_offset + h.data_bytes, h.file_bytes);
  // A large granularity aligns the data region to itself.
  const Header big = Planned(5 * kMiB, 10, 2 * kMiB);
  EXPECT_EQ(0u, big.data_offset % (2 * kMiB));
  EXPECT_EQ(6 * kMiB, big.data_bytes);
}

TEST(PmemLayout, RejectsImpossibleRequests) {
  EXPECT_EQ(ErrorCode::kInvalidArgument, PlanHeader({kMiB, 10, 100}, 1).status().code());
  EXPECT_EQ(ErrorCode::kInvalidArgument, PlanHeader({kMiB, 10, 32}, 1).status().code());
  EXPECT_EQ(ErrorCode::kInvalidArgument, PlanHeader({kMiB, 0, 4096}, 1).status().code());
  EXPECT_EQ(ErrorCode::kInvalidArgument,
            PlanHeader({kMiB, kMaxIndexEntries + 1, 4096}, 1).status().code());
  EXPECT_EQ(ErrorCode::kInvalidArgument, PlanHeader({0, 10, 4096}, 1).status().code());
  EXPECT_EQ(ErrorCode::kInvalidArgument, PlanHeader({UINT64_MAX, 10, 4096}, 1).status().code());
}

TEST(PmemLayout, ValidationNamesWhatIsWrong) {
  Header h = Planned();
  h.magic ^= 1;
  Status s = ValidateHeader(h);
  EXPECT_EQ(ErrorCode::kCorruption, s.code());
  EXPECT_NE(std::string::npos, s.message().find("bad magic")) << s.message();

  h = Planned();
  h.data_bytes += 4096;  // not resealed
  s = ValidateHeader(h);
  EXPECT_EQ(ErrorCode::kCorruption, s.code());
  EXPECT_NE(std::string::npos, s.message().find("checksum")) << s.message();

  h = Planned();
  h.version = 7;
  SealHeader(&h);
  s = ValidateHeader(h);
  EXPECT_EQ(ErrorCode::kCorruption, s.code());
  EXPECT_NE(std::string::npos, s.message().find("version 7")) << s.message();

  h = Planned();
  h.data_offset = h.index_offset;  // data would overlap the index
  SealHeader(&h);
  s = ValidateHeader(h);
  EXPECT_EQ(ErrorCode::kCorruption, s.code());
  EXPECT_NE(std::string::npos, s.message().find("inconsistent")) << s.message();

  h = Planned();
  h.file_bytes += 4096;
  SealHeader(&h);
  EXPECT_EQ(ErrorCode::kCorruption, ValidateHeader(h).code());
}

TEST(PmemLayout, ChoosesTheNewestValidCopy) {
  const Header old_header = Planned();
  Result<Header> grown = GrowHeader(old_header, 20 * kMiB);
  ASSERT_TRUE(grown.ok());
  EXPECT_EQ(old_header.generation + 1, grown->generation);
  EXPECT_TRUE(ValidateHeader(*grown).ok());
  int copy = -1;
  std::vector<unsigned char> region = Region(old_header, *grown);
  Result<Header> chosen = ChooseHeader(region.data(), grown->file_bytes, &copy);
  ASSERT_TRUE(chosen.ok()) << chosen.status().ToString();
  EXPECT_EQ(1, copy);
  EXPECT_EQ(grown->data_bytes, chosen->data_bytes);

  // The newer copy torn: the older one stands.
  region[kHeaderCopyOffset[1] + 80] ^= 0x40;
  chosen = ChooseHeader(region.data(), grown->file_bytes, &copy);
  ASSERT_TRUE(chosen.ok());
  EXPECT_EQ(0, copy);
  EXPECT_EQ(old_header.data_bytes, chosen->data_bytes);

  // Both damaged: corruption, with copy 0's reason.
  region[kHeaderCopyOffset[0]] ^= 0xFF;
  chosen = ChooseHeader(region.data(), grown->file_bytes, &copy);
  EXPECT_EQ(ErrorCode::kCorruption, chosen.status().code());
  EXPECT_NE(std::string::npos, chosen.status().message().find("bad magic"));
}

TEST(PmemLayout, ShortOrTruncatedFilesAreCorrupt) {
  const Header h = Planned();
  std::vector<unsigned char> region = Region(h, h);
  Result<Header> r = ChooseHeader(region.data(), h.file_bytes - 1);
  EXPECT_EQ(ErrorCode::kCorruption, r.status().code());
  EXPECT_NE(std::string::npos, r.status().message().find("truncated"));
  r = ChooseHeader(region.data(), 100);
  EXPECT_EQ(ErrorCode::kCorruption, r.status().code());
  EXPECT_TRUE(ChooseHeader(region.data(), h.file_bytes + 12345).ok()) << "longer is fine";
}

TEST(PmemLayout, ClassifiesEntries) {
  const Header h = Planned(kMiB, 10, 4096);
  Entry e{};
  EXPECT_EQ(EntryClass::kFree, ClassifyEntry(e, h));
  e.key = 5;
  e.offset = 8192;
  e.length = 5000;
  e.sequence = 3;
  e.state = static_cast<uint64_t>(EntryState::kValid);
  SealEntry(&e, h.file_id);
  EXPECT_EQ(EntryClass::kValid, ClassifyEntry(e, h));

  Entry pending = e;
  pending.state = static_cast<uint64_t>(EntryState::kPending);
  EXPECT_EQ(EntryClass::kTorn, ClassifyEntry(pending, h));
  Entry torn = e;
  torn.length += 1;
  EXPECT_EQ(EntryClass::kTorn, ClassifyEntry(torn, h));
  Header other_file = h;
  other_file.file_id ^= 1;
  EXPECT_EQ(EntryClass::kTorn, ClassifyEntry(e, other_file)) << "an entry from another file";
  Entry unknown = e;
  unknown.state = 0x1234;
  EXPECT_EQ(EntryClass::kInvalid, ClassifyEntry(unknown, h));

  for (auto [offset, length] : {std::pair<uint64_t, uint64_t>{8193, 10}, {h.data_bytes, 1},
                                {h.data_bytes - 4096, 4097}, {0, 0}, {4096, UINT64_MAX}}) {
    Entry bad = e;
    bad.offset = offset;
    bad.length = length;
    SealEntry(&bad, h.file_id);
    EXPECT_EQ(EntryClass::kInvalid, ClassifyEntry(bad, h)) << offset << "+" << length;
  }
}

}  // namespace
}  // namespace tiercache::pmem
