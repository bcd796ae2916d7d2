// Damage done to a closed PMEM file on purpose, and what opening it must do:
// refuse a file that is not (or no longer) a whole tier with kCorruption and
// leave it untouched, or open it and skip exactly the damaged entries.
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>
#include <set>

#include "tests/pmem/pmem_test_util.h"
#include "tiers/pmem_checksum.h"
#include "tiers/pmem_layout.h"
#include "tiers/pmem_tier.h"

namespace tiercache::testing {
namespace {

class PmemRecoveryTest : public ::testing::Test {
 protected:
  static constexpr uint64_t kBlocks = 4;

  void SetUp() override {
    ASSERT_TRUE(dir_.ok());
    auto tier = PmemTier::Open(SmallOptions(path_));
    ASSERT_TRUE(tier.ok()) << tier.status().ToString();
    for (uint64_t key = 1; key <= kBlocks; ++key) {
      Result<Extent> e = (*tier)->Allocate(BlockBytes(key));
      ASSERT_TRUE(e.ok());
      std::vector<unsigned char> data = Pattern(BlockBytes(key), key);
      ASSERT_TRUE((*tier)->Write(*e, 0, data.data(), data.size()).ok());
      ASSERT_TRUE((*tier)->Commit(key, *e).ok());
      extents_[key] = *e;
    }
    tier->reset();
    std::memcpy(&header_, ReadWholeFile(path_).data(), sizeof(header_));
  }

  static uint64_t BlockBytes(uint64_t key) { return 3000 * key + 1; }

  // The slot holding `key` (commits fill slots from 0 up).
  uint64_t SlotOffset(uint64_t key) const {
    return header_.index_offset + (key - 1) * pmem::kEntryBytes;
  }
  pmem::Entry ReadEntry(uint64_t key) const {
    pmem::Entry entry;
    std::memcpy(&entry, ReadWholeFile(path_).data() + SlotOffset(key), sizeof(entry));
    return entry;
  }
  void WriteEntry(uint64_t slot_key, const pmem::Entry& entry) {
    PatchFile(path_, SlotOffset(slot_key), &entry, sizeof(entry));
  }

  Result<std::unique_ptr<PmemTier>> Reopen() { return PmemTier::Open(SmallOptions(path_)); }

  // Every block except those in `skip` reads back byte-exact.
  void ExpectOthersIntact(PmemTier& tier, std::set<uint64_t> skip) {
    for (uint64_t key = 1; key <= kBlocks; ++key) {
      if (skip.count(key) != 0) continue;
      SCOPED_TRACE("key " + std::to_string(key));
      Result<Extent> e = tier.Lookup(key);
      ASSERT_TRUE(e.ok()) << e.status().ToString();
      std::vector<unsigned char> out(e->length);
      ASSERT_TRUE(tier.Read(*e, 0, out.data(), out.size()).ok());
      EXPECT_TRUE(out == Pattern(BlockBytes(key), key));
    }
  }

  void ExpectRejectedUntouched(ErrorCode code, const char* reason) {
    const std::vector<unsigned char> before = ReadWholeFile(path_);
    auto tier = Reopen();
    ASSERT_FALSE(tier.ok());
    EXPECT_EQ(code, tier.status().code()) << tier.status().ToString();
    EXPECT_NE(std::string::npos, tier.status().message().find(reason)) << tier.status().message();
    EXPECT_NE(std::string::npos, tier.status().message().find(path_));
    EXPECT_TRUE(before == ReadWholeFile(path_)) << "a rejected file must not be written";
  }

  ScopedTempDir dir_;
  std::string path_ = dir_.File("tier.pmem");
  std::map<uint64_t, Extent> extents_;
  pmem::Header header_{};
};

TEST_F(PmemRecoveryTest, FlippedDataBytesFailLookupAndSpareTheRest) {
  const unsigned char flip = 0x5A;
  const uint64_t at = header_.data_offset + extents_[2].offset + 1234;
  unsigned char byte = ReadWholeFile(path_)[at] ^ flip;
  PatchFile(path_, at, &byte, 1);
  auto tier = Reopen();
  ASSERT_TRUE(tier.ok()) << tier.status().ToString();
  EXPECT_EQ(kBlocks, (*tier)->index_stats().recovered) << "the index itself is fine";
  Result<Extent> bad = (*tier)->Lookup(2);
  EXPECT_EQ(ErrorCode::kCorruption, bad.status().code());
  EXPECT_NE(std::string::npos, bad.status().message().find("key 2")) << bad.status().message();
  ExpectOthersIntact(**tier, {2});
  EXPECT_EQ(1u, (*tier)->index_stats().lookup_corruptions);
  // The damaged block can be dropped and its space reused.
  const uint64_t used = (*tier)->used();
  EXPECT_TRUE((*tier)->Forget(2).ok());
  EXPECT_EQ(used - AlignUp(BlockBytes(2), 4096), (*tier)->used());
}

TEST_F(PmemRecoveryTest, ATornEntryIsSkippedAndCounted) {
  pmem::Entry entry = ReadEntry(3);
  entry.length ^= 0x10;  // bytes changed after the checksum: a torn write
  WriteEntry(3, entry);
  auto tier = Reopen();
  ASSERT_TRUE(tier.ok()) << tier.status().ToString();
  EXPECT_EQ(1u, (*tier)->index_stats().skipped_torn);
  EXPECT_EQ(kBlocks - 1, (*tier)->index_stats().recovered);
  EXPECT_EQ(ErrorCode::kNotFound, (*tier)->Lookup(3).status().code());
  ExpectOthersIntact(**tier, {3});
  // Its slot and its space are free again.
  Result<Extent> e = (*tier)->Allocate(BlockBytes(3));
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(extents_[3].offset, e->offset);
  EXPECT_TRUE((*tier)->Commit(3, *e).ok());
}

// The flags word a commit carries survives a reopen, and it is vouched for
// by the entry's checksum: a changed flag reads as a torn entry, never as a
// valid entry that says something else about its bytes.
TEST_F(PmemRecoveryTest, CommitFlagsSurviveReopenAndAreChecksummed) {
  {
    auto tier = Reopen();
    ASSERT_TRUE(tier.ok()) << tier.status().ToString();
    Result<Extent> e = (*tier)->Lookup(2);
    ASSERT_TRUE(e.ok());
    ASSERT_TRUE((*tier)->Commit(2, *e, 0x5u).ok());
  }
  uint32_t flags = 99;
  {
    auto tier = Reopen();
    ASSERT_TRUE(tier.ok()) << tier.status().ToString();
    EXPECT_EQ(kBlocks, (*tier)->index_stats().recovered);
    ASSERT_TRUE((*tier)->Lookup(2, &flags).ok());
    EXPECT_EQ(0x5u, flags);
    ASSERT_TRUE((*tier)->Lookup(1, &flags).ok());
    EXPECT_EQ(0u, flags) << "committed without flags";
    EXPECT_EQ(ErrorCode::kNotFound, (*tier)->Lookup(77, &flags).status().code());
    EXPECT_EQ(0u, flags) << "no entry, no flags";
  }
  // The recommit of key 2 took a fresh slot (the fifth); flip its flags.
  pmem::Entry entry = ReadEntry(kBlocks + 1);
  ASSERT_EQ(2u, entry.key);
  ASSERT_EQ(0x5u, entry.flags);
  entry.flags = 0x4;
  WriteEntry(kBlocks + 1, entry);
  auto tier = Reopen();
  ASSERT_TRUE(tier.ok()) << tier.status().ToString();
  EXPECT_EQ(1u, (*tier)->index_stats().skipped_torn);
  EXPECT_EQ(ErrorCode::kNotFound, (*tier)->Lookup(2).status().code());
  ExpectOthersIntact(**tier, {2});
}

// Entries without flags keep the checksum they had before the field
// existed (bytes [0, 36) seeded by the file id), so files written then
// still open with every entry valid.
TEST_F(PmemRecoveryTest, EntriesWithoutFlagsKeepTheirFormerChecksum) {
  const pmem::Entry entry = ReadEntry(3);
  ASSERT_EQ(0u, entry.flags);
  const uint32_t seed = Crc32c(&header_.file_id, sizeof(header_.file_id));
  EXPECT_EQ(Crc32c(&entry, offsetof(pmem::Entry, entry_checksum), seed), entry.entry_checksum);
}

TEST_F(PmemRecoveryTest, APendingEntryIsACommitCutShort) {
  pmem::Entry entry = ReadEntry(1);
  entry.state = static_cast<uint64_t>(pmem::EntryState::kPending);
  WriteEntry(1, entry);
  auto tier = Reopen();
  ASSERT_TRUE(tier.ok());
  EXPECT_EQ(1u, (*tier)->index_stats().skipped_torn);
  EXPECT_EQ(ErrorCode::kNotFound, (*tier)->Lookup(1).status().code());
  ExpectOthersIntact(**tier, {1});
}

TEST_F(PmemRecoveryTest, UnknownStatesAndImpossibleRangesAreSkipped) {
  pmem::Entry entry = ReadEntry(4);
  entry.state = 0xDEADBEEF;
  WriteEntry(4, entry);
  entry = ReadEntry(2);
  entry.offset = header_.data_bytes;  // beyond the data region, checksum resealed
  pmem::SealEntry(&entry, header_.file_id);
  WriteEntry(2, entry);
  auto tier = Reopen();
  ASSERT_TRUE(tier.ok());
  EXPECT_EQ(2u, (*tier)->index_stats().skipped_invalid);
  EXPECT_EQ(kBlocks - 2, (*tier)->index_stats().recovered);
  EXPECT_EQ(ErrorCode::kNotFound, (*tier)->Lookup(2).status().code());
  EXPECT_EQ(ErrorCode::kNotFound, (*tier)->Lookup(4).status().code());
  ExpectOthersIntact(**tier, {2, 4});
}

TEST_F(PmemRecoveryTest, OfTwoEntriesForOneKeyTheNewestWinsForGood) {
  // A crash between writing a key's new entry and invalidating its old one
  // leaves both valid. Build that state: keep key 1's old entry, re-commit
  // key 1 with new bytes, then put the old entry back into a free slot.
  const pmem::Entry old_entry = ReadEntry(1);
  {
    auto tier = Reopen();
    ASSERT_TRUE(tier.ok());
    Result<Extent> e = (*tier)->Lookup(1);
    ASSERT_TRUE(e.ok());
    std::vector<unsigned char> fresh = Pattern(BlockBytes(1), 1000);
    ASSERT_TRUE((*tier)->Write(*e, 0, fresh.data(), fresh.size()).ok());
    ASSERT_TRUE((*tier)->Commit(1, *e).ok());
  }
  WriteEntry(kBlocks + 3, old_entry);  // a slot well past the used ones
  {
    auto tier = Reopen();
    ASSERT_TRUE(tier.ok());
    EXPECT_EQ(1u, (*tier)->index_stats().superseded);
    Result<Extent> e = (*tier)->Lookup(1);
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    std::vector<unsigned char> out(e->length);
    ASSERT_TRUE((*tier)->Read(*e, 0, out.data(), out.size()).ok());
    EXPECT_TRUE(out == Pattern(BlockBytes(1), 1000));
    ExpectOthersIntact(**tier, {1});
    ASSERT_TRUE((*tier)->Forget(1).ok());
  }
  // The loser was invalidated on disk: forgetting the winner cannot bring it back.
  auto tier = Reopen();
  ASSERT_TRUE(tier.ok());
  EXPECT_EQ(0u, (*tier)->index_stats().superseded);
  EXPECT_EQ(ErrorCode::kNotFound, (*tier)->Lookup(1).status().code());
}

TEST_F(PmemRecoveryTest, OverlappingEntriesKeepTheNewest) {
  pmem::Entry impostor = ReadEntry(2);
  impostor.key = 42;
  impostor.sequence = 1000;  // newer than every real commit
  pmem::SealEntry(&impostor, header_.file_id);
  WriteEntry(kBlocks + 1, impostor);
  auto tier = Reopen();
  ASSERT_TRUE(tier.ok());
  EXPECT_EQ(1u, (*tier)->index_stats().skipped_invalid);
  EXPECT_EQ(ErrorCode::kNotFound, (*tier)->Lookup(2).status().code());
  Result<Extent> e = (*tier)->Lookup(42);  // same bytes, same checksum
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(extents_[2], *e);
}

TEST_F(PmemRecoveryTest, ATruncatedFileIsCorruptionAndUntouched) {
  std::filesystem::resize_file(path_, header_.file_bytes - 4096);
  ExpectRejectedUntouched(ErrorCode::kCorruption, "truncated");
  std::filesystem::resize_file(path_, 2000);
  ExpectRejectedUntouched(ErrorCode::kCorruption, "too short");
}

TEST_F(PmemRecoveryTest, AGarbageFileIsCorruptionAndUntouched) {
  std::vector<unsigned char> garbage(256 * 1024);
  std::mt19937 rng(5);
  for (auto& b : garbage) b = static_cast<unsigned char>(rng());
  WriteWholeFile(path_, garbage);
  ExpectRejectedUntouched(ErrorCode::kCorruption, "bad magic");
  const std::string text = "just some text file\n";
  WriteWholeFile(path_, std::vector<unsigned char>(text.begin(), text.end()));
  ExpectRejectedUntouched(ErrorCode::kCorruption, "too short");
}

TEST_F(PmemRecoveryTest, OneDamagedHeaderCopyIsSurvivedTwoAreNot) {
  const unsigned char junk[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  PatchFile(path_, pmem::kHeaderCopyOffset[0] + 40, junk, sizeof(junk));
  {
    auto tier = Reopen();
    ASSERT_TRUE(tier.ok()) << tier.status().ToString();
    ExpectOthersIntact(**tier, {});
  }
  PatchFile(path_, pmem::kHeaderCopyOffset[1] + 40, junk, sizeof(junk));
  ExpectRejectedUntouched(ErrorCode::kCorruption, "checksum");
}

TEST_F(PmemRecoveryTest, AnUnknownVersionIsRefused) {
  pmem::Header future = header_;
  future.version = pmem::kVersion + 1;
  pmem::SealHeader(&future);
  for (uint64_t copy : pmem::kHeaderCopyOffset) PatchFile(path_, copy, &future, sizeof(future));
  ExpectRejectedUntouched(ErrorCode::kCorruption, "version");
}

}  // namespace
}  // namespace tiercache::testing
