#include "tiers/pmem_tier.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <map>
#include <thread>

#include "tests/pmem/pmem_test_util.h"
#include "tests/tiers/tier_conformance.h"

namespace tiercache::testing {
namespace {

// Every conformance test gets a fresh file in one directory that lives as
// long as the test binary. The file is unlinked as soon as it is mapped, so
// its space goes back when the tier closes.
struct PmemTierFactory {
  static std::unique_ptr<Tier> Make(uint64_t capacity) {
    static ScopedTempDir dir;
    static std::atomic<int> counter{0};
    if (!dir.ok()) return nullptr;
    const std::string path = dir.File("conformance-" + std::to_string(counter++) + ".pmem");
    auto tier = PmemTier::Open(SmallOptions(path, capacity, 256));
    unlink(path.c_str());
    EXPECT_TRUE(tier.ok()) << tier.status().ToString();
    return tier.ok() ? std::move(tier).value() : nullptr;
  }
};

INSTANTIATE_TYPED_TEST_SUITE_P(Pmem, TierConformance, ::testing::Types<PmemTierFactory>);

class PmemTierTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(dir_.ok()) << "cannot create a temporary directory"; }

  std::unique_ptr<PmemTier> OpenOrDie(const PmemTierOptions& options) {
    auto tier = PmemTier::Open(options);
    EXPECT_TRUE(tier.ok()) << tier.status().ToString();
    return tier.ok() ? std::move(tier).value() : nullptr;
  }

  // Allocates, fills with Pattern(bytes, key) and commits under `key`.
  Extent Store(PmemTier& tier, uint64_t key, uint64_t bytes) {
    Result<Extent> e = tier.Allocate(bytes);
    EXPECT_TRUE(e.ok()) << e.status().ToString();
    if (!e.ok()) return {};
    std::vector<unsigned char> data = Pattern(bytes, key);
    EXPECT_TRUE(tier.Write(*e, 0, data.data(), bytes).ok());
    Status s = tier.Commit(key, *e);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return *e;
  }

  // Lookup(key) succeeds and the extent holds Pattern(bytes, key).
  void ExpectStored(PmemTier& tier, uint64_t key, uint64_t bytes) {
    SCOPED_TRACE("key " + std::to_string(key));
    Result<Extent> e = tier.Lookup(key);
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    ASSERT_EQ(bytes, e->length);
    std::vector<unsigned char> out(bytes);
    ASSERT_TRUE(tier.Read(*e, 0, out.data(), bytes).ok());
    EXPECT_TRUE(out == Pattern(bytes, key)) << "bytes differ";
  }

  ScopedTempDir dir_;
  std::string path_ = dir_.File("tier.pmem");
};

TEST_F(PmemTierTest, CreatesTheFileAndReportsItsMapping) {
  auto tier = OpenOrDie(SmallOptions(path_, 3 * kMiB + 1, 100));
  ASSERT_TRUE(tier);
  EXPECT_TRUE(tier->created());
  EXPECT_TRUE(tier->persistent());
  EXPECT_EQ(TierKind::kPmem, tier->kind());
  EXPECT_EQ(3 * kMiB + 4096, tier->capacity());
  EXPECT_EQ(4096u, tier->granularity());
  EXPECT_EQ(tier->dax(), tier->store_granularity() != PmemStoreGranularity::kPage);
  EXPECT_STRNE("unknown", PmemStoreGranularityName(tier->store_granularity()));
  // header region + 100 entries rounded to a page + the data region
  EXPECT_EQ(4096u + 8192u + tier->capacity(), std::filesystem::file_size(path_));
  EXPECT_EQ(100u, tier->index_stats().index_entries);
  EXPECT_EQ(0u, tier->index_stats().index_used);
}

TEST_F(PmemTierTest, CommittedBlocksSurviveReopenByteExact) {
  const std::map<uint64_t, uint64_t> blocks = {
      {1, 1}, {2, 4095}, {3, 4096}, {4, 70001}, {5, 1 * kMiB}, {99, 333}};
  uint64_t used = 0;
  {
    auto tier = OpenOrDie(SmallOptions(path_));
    ASSERT_TRUE(tier);
    for (auto [key, bytes] : blocks) Store(*tier, key, bytes);
    // An allocated but uncommitted extent is not persistent state.
    ASSERT_TRUE(tier->Allocate(8192).ok());
    used = tier->used() - 8192;
    EXPECT_EQ(blocks.size(), tier->index_stats().index_used);
  }
  auto tier = OpenOrDie(SmallOptions(path_));
  ASSERT_TRUE(tier);
  EXPECT_FALSE(tier->created());
  EXPECT_EQ(used, tier->used()) << "the allocator is rebuilt from the index alone";
  EXPECT_EQ(blocks.size(), tier->index_stats().recovered);
  EXPECT_EQ(0u, tier->index_stats().skipped_torn + tier->index_stats().skipped_invalid);
  for (auto [key, bytes] : blocks) ExpectStored(*tier, key, bytes);
  EXPECT_EQ(ErrorCode::kNotFound, tier->Lookup(12345).status().code());

  // New allocations land beside the recovered extents, not on them.
  std::vector<Extent> fresh;
  for (Result<Extent> e = tier->Allocate(64 * kKiB); e.ok(); e = tier->Allocate(64 * kKiB)) {
    std::vector<unsigned char> junk(64 * kKiB, 0xA5);
    ASSERT_TRUE(tier->Write(*e, 0, junk.data(), junk.size()).ok());
    fresh.push_back(*e);
  }
  EXPECT_FALSE(fresh.empty());
  for (auto [key, bytes] : blocks) ExpectStored(*tier, key, bytes);
}

TEST_F(PmemTierTest, BytesStoredThroughTheHostAddressAreCommittedToo) {
  const std::vector<unsigned char> data = Pattern(10000, 77);
  {
    auto tier = OpenOrDie(SmallOptions(path_));
    ASSERT_TRUE(tier);
    Result<Extent> e = tier->Allocate(data.size());
    ASSERT_TRUE(e.ok());
    void* p = tier->HostAddress(*e);
    ASSERT_NE(nullptr, p);
    std::memcpy(p, data.data(), data.size());
    ASSERT_TRUE(tier->Commit(77, *e).ok());
  }
  auto tier = OpenOrDie(SmallOptions(path_));
  ASSERT_TRUE(tier);
  ExpectStored(*tier, 77, data.size());
}

TEST_F(PmemTierTest, FlushedUncommittedWritesReachTheFile) {
  std::vector<unsigned char> data = Pattern(5000, 5);
  uint64_t data_offset = 0;
  {
    auto tier = OpenOrDie(SmallOptions(path_));
    ASSERT_TRUE(tier);
    Result<Extent> e = tier->Allocate(data.size());
    ASSERT_TRUE(e.ok());
    ASSERT_TRUE(tier->Write(*e, 0, data.data(), data.size()).ok());
    ASSERT_TRUE(tier->Flush().ok());
    data_offset = std::filesystem::file_size(path_) - tier->capacity() + e->offset;
  }
  std::vector<unsigned char> file = ReadWholeFile(path_);
  ASSERT_GE(file.size(), data_offset + data.size());
  EXPECT_EQ(0, std::memcmp(file.data() + data_offset, data.data(), data.size()));
}

TEST_F(PmemTierTest, ForgetAndFreeDropEntriesDurably) {
  Extent second;
  {
    auto tier = OpenOrDie(SmallOptions(path_));
    ASSERT_TRUE(tier);
    Store(*tier, 1, 100);
    second = Store(*tier, 2, 200);
    Store(*tier, 3, 300);
    EXPECT_TRUE(tier->Forget(1).ok());
    EXPECT_EQ(ErrorCode::kNotFound, tier->Forget(1).code());
    EXPECT_EQ(ErrorCode::kNotFound, tier->Lookup(1).status().code());
    EXPECT_TRUE(tier->Free(second).ok());  // drops key 2's entry with it
    EXPECT_EQ(ErrorCode::kNotFound, tier->Lookup(2).status().code());
    const PmemIndexStats stats = tier->index_stats();
    EXPECT_EQ(1u, stats.forgets);
    EXPECT_EQ(1u, stats.dropped_by_free);
    EXPECT_EQ(1u, stats.index_used);
  }
  auto tier = OpenOrDie(SmallOptions(path_));
  ASSERT_TRUE(tier);
  EXPECT_EQ(1u, tier->index_stats().recovered);
  EXPECT_EQ(ErrorCode::kNotFound, tier->Lookup(1).status().code());
  EXPECT_EQ(ErrorCode::kNotFound, tier->Lookup(2).status().code());
  ExpectStored(*tier, 3, 300);
  EXPECT_EQ(4096u, tier->used());
}

TEST_F(PmemTierTest, RecommitReplacesTheEntry) {
  {
    auto tier = OpenOrDie(SmallOptions(path_));
    ASSERT_TRUE(tier);
    Extent e = Store(*tier, 8, 6000);
    std::vector<unsigned char> other = Pattern(6000, 9);
    ASSERT_TRUE(tier->Write(e, 0, other.data(), other.size()).ok());
    EXPECT_EQ(ErrorCode::kCorruption, tier->Lookup(8).status().code())
        << "the bytes changed after the commit";
    ASSERT_TRUE(tier->Commit(8, e).ok());
    EXPECT_EQ(1u, tier->index_stats().index_used);
  }
  auto tier = OpenOrDie(SmallOptions(path_));
  ASSERT_TRUE(tier);
  EXPECT_EQ(1u, tier->index_stats().recovered);
  Result<Extent> e = tier->Lookup(8);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  std::vector<unsigned char> out(6000);
  ASSERT_TRUE(tier->Read(*e, 0, out.data(), out.size()).ok());
  EXPECT_TRUE(out == Pattern(6000, 9));
}

TEST_F(PmemTierTest, RecoveredExtentsNobodyClaimedAreFreedWithTheirKey) {
  {
    auto tier = OpenOrDie(SmallOptions(path_));
    ASSERT_TRUE(tier);
    Store(*tier, 1, 50000);
    Store(*tier, 2, 50000);
  }
  auto tier = OpenOrDie(SmallOptions(path_));
  ASSERT_TRUE(tier);
  const uint64_t used = tier->used();
  EXPECT_TRUE(tier->Forget(1).ok());  // never looked up: its space goes too
  EXPECT_EQ(used - AlignUp(50000, 4096), tier->used());
  Result<Extent> two = tier->Lookup(2);
  ASSERT_TRUE(two.ok());
  EXPECT_TRUE(tier->Forget(2).ok());  // handed out: the caller still owns it
  EXPECT_EQ(used - AlignUp(50000, 4096), tier->used());
  EXPECT_TRUE(tier->Free(*two).ok());
  EXPECT_EQ(0u, tier->used());
}

TEST_F(PmemTierTest, StaleEntriesGiveWayOldestFirstAndClaimedOnesStay) {
  constexpr uint64_t kBlock = 1 * kMiB;
  {
    auto tier = OpenOrDie(SmallOptions(path_, 4 * kMiB, 64));
    ASSERT_TRUE(tier);
    for (uint64_t key = 1; key <= 4; ++key) Store(*tier, key, kBlock);  // the tier is full
    EXPECT_FALSE(tier->ReclaimStale()) << "this process's own commits are claimed";
  }
  auto tier = OpenOrDie(SmallOptions(path_, 4 * kMiB, 64));
  ASSERT_TRUE(tier);
  ExpectStored(*tier, 3, kBlock);  // claimed by this process
  EXPECT_EQ(ErrorCode::kOutOfSpace, tier->Allocate(2 * kMiB).status().code());
  // Room for two more blocks: keys 1 and 2 (the oldest unclaimed) give way.
  Result<Extent> room = tier->Allocate(2 * kMiB);
  int reclaimed = 0;
  while (!room.ok() && tier->ReclaimStale()) {
    ++reclaimed;
    room = tier->Allocate(2 * kMiB);
  }
  ASSERT_TRUE(room.ok()) << room.status().ToString();
  EXPECT_EQ(2, reclaimed);
  EXPECT_EQ(2u, tier->index_stats().reclaimed);
  EXPECT_EQ(ErrorCode::kNotFound, tier->Lookup(1).status().code());
  EXPECT_EQ(ErrorCode::kNotFound, tier->Lookup(2).status().code());
  ExpectStored(*tier, 3, kBlock);
  ExpectStored(*tier, 4, kBlock);  // untouched (and now claimed)
  EXPECT_FALSE(tier->ReclaimStale()) << "everything left is claimed";
  ASSERT_TRUE(tier->Free(*room).ok());
  tier.reset();
  // The forgetting was durable.
  auto again = OpenOrDie(SmallOptions(path_, 4 * kMiB, 64));
  ASSERT_TRUE(again);
  EXPECT_EQ(ErrorCode::kNotFound, again->Lookup(1).status().code());
  ExpectStored(*again, 3, kBlock);
  ExpectStored(*again, 4, kBlock);
}

TEST_F(PmemTierTest, OneKeyPerExtent) {
  auto tier = OpenOrDie(SmallOptions(path_));
  ASSERT_TRUE(tier);
  Extent e = Store(*tier, 1, 100);
  EXPECT_EQ(ErrorCode::kAlreadyExists, tier->Commit(2, e).code());
  ExpectStored(*tier, 1, 100);
  ASSERT_TRUE(tier->Free(e).ok());
  EXPECT_EQ(ErrorCode::kInvalidArgument, tier->Commit(1, e).code()) << "commit after free";
}

TEST_F(PmemTierTest, AFullIndexIsOutOfSpaceAndLosesNothing) {
  auto tier = OpenOrDie(SmallOptions(path_, 4 * kMiB, 4));
  ASSERT_TRUE(tier);
  for (uint64_t key = 1; key <= 4; ++key) Store(*tier, key, 1000);
  Result<Extent> e = tier->Allocate(1000);
  ASSERT_TRUE(e.ok());
  Status s = tier->Commit(5, *e);
  EXPECT_EQ(ErrorCode::kOutOfSpace, s.code());
  EXPECT_NE(std::string::npos, s.message().find("index is full")) << s.message();
  for (uint64_t key = 1; key <= 4; ++key) ExpectStored(*tier, key, 1000);
  ASSERT_TRUE(tier->Forget(2).ok());
  EXPECT_TRUE(tier->Commit(5, *e).ok());
}

TEST_F(PmemTierTest, GrowsWhenAskedForMoreAndNeverShrinks) {
  {
    auto tier = OpenOrDie(SmallOptions(path_, 1 * kMiB));
    ASSERT_TRUE(tier);
    Store(*tier, 1, 300000);
  }
  {
    auto tier = OpenOrDie(SmallOptions(path_, 3 * kMiB));
    ASSERT_TRUE(tier);
    EXPECT_EQ(3 * kMiB, tier->capacity());
    ExpectStored(*tier, 1, 300000);
    Store(*tier, 2, 2 * kMiB);  // needs the new space
  }
  for (uint64_t asked : {0ull, 1ull * kMiB}) {
    auto tier = OpenOrDie(SmallOptions(path_, asked));
    ASSERT_TRUE(tier);
    EXPECT_EQ(3 * kMiB, tier->capacity());
    ExpectStored(*tier, 1, 300000);
    ExpectStored(*tier, 2, 2 * kMiB);
  }
}

TEST_F(PmemTierTest, ConcurrentCommitsLookupsForgetsAndFrees) {
  constexpr int kThreads = 4;
  constexpr uint64_t kRounds = 30;
  std::atomic<int> errors{0};
  {
    auto tier = OpenOrDie(SmallOptions(path_, 16 * kMiB, 256));
    ASSERT_TRUE(tier);
    auto worker = [&](uint64_t id) {
      for (uint64_t round = 0; round < kRounds; ++round) {
        const uint64_t key = id * 1000 + round;
        const uint64_t bytes = 1 + (key * 7919) % 20000;
        Result<Extent> e = tier->Allocate(bytes);
        if (!e.ok()) { ++errors; continue; }
        std::vector<unsigned char> data = Pattern(bytes, key);
        if (!tier->Write(*e, 0, data.data(), bytes).ok()) ++errors;
        if (!tier->Commit(key, *e).ok()) ++errors;
        Result<Extent> found = tier->Lookup(key);
        if (!found.ok() || !(*found == *e)) ++errors;
        // Keep one round in three; drop the others both ways.
        if (round % 3 == 1 && !tier->Free(*e).ok()) ++errors;
        if (round % 3 == 2 && (!tier->Forget(key).ok() || !tier->Free(*e).ok())) ++errors;
      }
    };
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) threads.emplace_back(worker, i + 1);
    for (auto& t : threads) t.join();
    EXPECT_EQ(0, errors.load());
    EXPECT_EQ(kThreads * kRounds / 3, tier->index_stats().index_used);
  }
  auto tier = OpenOrDie(SmallOptions(path_, 0));
  ASSERT_TRUE(tier);
  EXPECT_EQ(kThreads * kRounds / 3, tier->index_stats().recovered);
  for (uint64_t id = 1; id <= kThreads; ++id) {
    for (uint64_t round = 0; round < kRounds; ++round) {
      const uint64_t key = id * 1000 + round;
      if (round % 3 == 0) {
        ExpectStored(*tier, key, 1 + (key * 7919) % 20000);
      } else {
        EXPECT_EQ(ErrorCode::kNotFound, tier->Lookup(key).status().code()) << key;
      }
    }
  }
}

// A process killed (SIGKILL) while committing: every Commit() that returned
// is found byte-exact after reopening; the one in flight may be missing or
// skipped as torn, and nothing else is lost. (A process crash, not a power
// cut: the page cache survives. Power cuts are what the format's checksums and
// the two-step state flip are for; the recovery tests forge their leftovers.)
TEST_F(PmemTierTest, AKilledProcessLosesAtMostTheCommitInFlight) {
  for (int kill_after : {3, 17, 40}) {
    SCOPED_TRACE("killed after " + std::to_string(kill_after) + " commits");
    const std::string path = dir_.File("killed-" + std::to_string(kill_after) + ".pmem");
    int pipe_fds[2];
    ASSERT_EQ(0, pipe(pipe_fds));
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      close(pipe_fds[0]);
      auto tier = PmemTier::Open(SmallOptions(path, 8 * kMiB, 128));
      if (!tier.ok()) _exit(2);
      for (uint64_t key = 1;; ++key) {
        Result<Extent> e = (*tier)->Allocate(1 + key * 997 % 60000);
        if (!e.ok()) _exit(3);
        std::vector<unsigned char> data = Pattern(e->length, key);
        if (!(*tier)->Write(*e, 0, data.data(), data.size()).ok()) _exit(4);
        if (!(*tier)->Commit(key, *e).ok()) _exit(5);
        if (write(pipe_fds[1], &key, sizeof(key)) != sizeof(key)) _exit(6);
        if (key % 16 == 0 && !(*tier)->Forget(key - 8).ok()) _exit(7);  // keep the index small
      }
    }
    close(pipe_fds[1]);
    std::vector<uint64_t> committed;
    uint64_t key = 0;
    while (committed.size() < static_cast<size_t>(kill_after) &&
           read(pipe_fds[0], &key, sizeof(key)) == sizeof(key)) {
      committed.push_back(key);
    }
    kill(child, SIGKILL);
    int status = 0;
    waitpid(child, &status, 0);
    close(pipe_fds[0]);
    ASSERT_EQ(static_cast<size_t>(kill_after), committed.size()) << "the child stopped early";
    ASSERT_TRUE(WIFSIGNALED(status));

    auto tier = OpenOrDie(SmallOptions(path, 0));
    ASSERT_TRUE(tier);
    EXPECT_LE(tier->index_stats().skipped_torn + tier->index_stats().skipped_invalid, 1u);
    for (uint64_t k : committed) {
      const bool forgotten = k + 8 <= committed.back() && (k + 8) % 16 == 0;
      if (forgotten) continue;
      ExpectStored(*tier, k, 1 + k * 997 % 60000);
    }
  }
}

TEST_F(PmemTierTest, ASecondOpenOfTheSameFileIsBusy) {
  auto tier = OpenOrDie(SmallOptions(path_));
  ASSERT_TRUE(tier);
  auto second = PmemTier::Open(SmallOptions(path_));
  EXPECT_EQ(ErrorCode::kBusy, second.status().code());
  tier.reset();
  EXPECT_TRUE(PmemTier::Open(SmallOptions(path_)).ok()) << "the lock goes with the tier";
}

TEST_F(PmemTierTest, AnEmptyFileIsInitialised) {
  WriteWholeFile(path_, {});
  auto tier = OpenOrDie(SmallOptions(path_));
  ASSERT_TRUE(tier);
  EXPECT_TRUE(tier->created());
  Store(*tier, 1, 10);
}

TEST_F(PmemTierTest, OpenErrorsAreClearAndNameThePath) {
  const std::string missing_dir = dir_.File("no/such/dir/tier.pmem");
  auto r = PmemTier::Open(SmallOptions(missing_dir));
  EXPECT_EQ(ErrorCode::kNotFound, r.status().code());
  EXPECT_NE(std::string::npos, r.status().message().find(missing_dir)) << r.status().message();

  PmemTierOptions no_create = SmallOptions(path_);
  no_create.create_if_missing = false;
  r = PmemTier::Open(no_create);
  EXPECT_EQ(ErrorCode::kNotFound, r.status().code());
  EXPECT_NE(std::string::npos, r.status().message().find(path_));

  r = PmemTier::Open(SmallOptions(path_, 0));
  EXPECT_EQ(ErrorCode::kInvalidArgument, r.status().code()) << "creation needs a capacity";
  PmemTierOptions bad_granularity = SmallOptions(path_);
  bad_granularity.granularity = 1000;
  EXPECT_EQ(ErrorCode::kInvalidArgument, PmemTier::Open(bad_granularity).status().code());
  EXPECT_EQ(ErrorCode::kInvalidArgument, PmemTier::Open(SmallOptions("")).status().code());
  EXPECT_FALSE(PmemTier::Open(SmallOptions(dir_.path())).ok()) << "a directory";
  EXPECT_FALSE(std::filesystem::exists(path_)) << "failed opens leave no file behind";
}

TEST_F(PmemTierTest, CapacityBeyondTheFreeDiskSpaceIsOutOfSpace) {
  auto r = PmemTier::Open(SmallOptions(path_, 1ull << 61));
  EXPECT_EQ(ErrorCode::kOutOfSpace, r.status().code()) << r.status().ToString();
  EXPECT_NE(std::string::npos, r.status().message().find(path_));
  EXPECT_FALSE(std::filesystem::exists(path_));
  // Growing an existing file past the free space fails the same way and
  // leaves the file as it was.
  {
    auto tier = OpenOrDie(SmallOptions(path_));
    ASSERT_TRUE(tier);
    Store(*tier, 1, 1000);
  }
  const std::vector<unsigned char> before = ReadWholeFile(path_);
  r = PmemTier::Open(SmallOptions(path_, 1ull << 61));
  EXPECT_EQ(ErrorCode::kOutOfSpace, r.status().code()) << r.status().ToString();
  EXPECT_TRUE(before == ReadWholeFile(path_));
  auto tier = OpenOrDie(SmallOptions(path_));
  ASSERT_TRUE(tier);
  ExpectStored(*tier, 1, 1000);
}

TEST_F(PmemTierTest, AnUnwritableFileIsPermissionDenied) {
  std::string path;
  if (geteuid() == 0) {
    // root writes through file modes; sysfs refuses everyone.
    path = "/sys/tiercache-pmem-test.pmem";
  } else {
    const std::string locked = dir_.File("locked");
    ASSERT_EQ(0, mkdir(locked.c_str(), 0500));
    path = locked + "/tier.pmem";
  }
  auto r = PmemTier::Open(SmallOptions(path));
  EXPECT_EQ(ErrorCode::kPermissionDenied, r.status().code()) << r.status().ToString();
  EXPECT_NE(std::string::npos, r.status().message().find(path));
  if (geteuid() != 0) {
    WriteWholeFile(path_, Pattern(100, 1));
    ASSERT_EQ(0, chmod(path_.c_str(), 0400));
    r = PmemTier::Open(SmallOptions(path_));
    EXPECT_EQ(ErrorCode::kPermissionDenied, r.status().code()) << r.status().ToString();
  }
}

}  // namespace
}  // namespace tiercache::testing
