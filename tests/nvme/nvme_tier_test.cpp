#include "tiers/nvme_tier.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <thread>
#include <vector>

#include "common/log.h"
#include "tests/nvme/nvme_test_util.h"
#include "tests/tiers/tier_conformance.h"

namespace tiercache::testing {
namespace {

// The tier keeps its file open; the directory and file are removed at once,
// so nothing is left behind however the test ends.
template <IoEngineKind kKind>
struct NvmeTierFactory {
  static std::unique_ptr<Tier> Make(uint64_t capacity) {
    ScratchDir dir;
    if (!dir.ok()) return nullptr;
    NvmeTierOptions options;
    options.path = dir.File("tier.dat");
    options.capacity = capacity;
    options.io.kind = kKind;
    Result<std::unique_ptr<NvmeTier>> tier = NvmeTier::Create(options);
    if (!tier.ok() || (*tier)->engine_kind() != kKind) return nullptr;
    return std::move(tier).value();
  }
};

using UringFactory = NvmeTierFactory<IoEngineKind::kUring>;
using ThreadsFactory = NvmeTierFactory<IoEngineKind::kThreads>;
INSTANTIATE_TYPED_TEST_SUITE_P(NvmeIoUring, TierConformance, ::testing::Types<UringFactory>);
INSTANTIATE_TYPED_TEST_SUITE_P(NvmeThreadPool, TierConformance,
                               ::testing::Types<ThreadsFactory>);

class NvmeTierTest : public ::testing::TestWithParam<IoEngineKind> {
 protected:
  void SetUp() override { ASSERT_TRUE(dir_.ok()); }

  std::unique_ptr<NvmeTier> Open(uint64_t capacity = 64 * kMiB, uint64_t block = 1 * kMiB) {
    NvmeTierOptions options;
    options.path = dir_.File("tier.dat");
    options.capacity = capacity;
    options.block_size = block;
    options.io.kind = GetParam();
    Result<std::unique_ptr<NvmeTier>> tier = NvmeTier::Create(options);
    EXPECT_TRUE(tier.ok()) << tier.status().ToString();
    if (!tier.ok() || (*tier)->engine_kind() != GetParam()) return nullptr;
    return std::move(tier).value();
  }

  ScratchDir dir_;
};

TEST_P(NvmeTierTest, AlignedRequestsGoDirectInBlockSizedTransfers) {
  auto tier = Open(64 * kMiB, 1 * kMiB);
  if (!tier) GTEST_SKIP() << "engine not available";
  Result<Extent> e = tier->Allocate(4 * kMiB);
  ASSERT_TRUE(e.ok());
  AlignedBuffer in = MakeAligned(4 * kMiB), out = MakeAligned(4 * kMiB);
  FillPattern(in.get(), 4 * kMiB, 1);
  ASSERT_TRUE(tier->Write(*e, 0, in.get(), 4 * kMiB).ok());
  ASSERT_TRUE(tier->Read(*e, 0, out.get(), 4 * kMiB).ok());
  EXPECT_EQ(0, std::memcmp(in.get(), out.get(), 4 * kMiB));
  NvmeTierStats stats = tier->nvme_stats();
  EXPECT_EQ(8u, stats.engine.requests) << "4 MiB each way in 1 MiB transfers";
  EXPECT_EQ(2u, stats.engine.batches) << "one batch per request";
  if (tier->direct_io()) {
    EXPECT_EQ(8 * kMiB, stats.direct_bytes);
    EXPECT_EQ(0u, stats.bounced_bytes);
  }
}

TEST_P(NvmeTierTest, UnalignedBuffersAndEdgesBounce) {
  auto tier = Open();
  if (!tier) GTEST_SKIP() << "engine not available";
  if (!tier->direct_io()) GTEST_SKIP() << "buffered I/O needs no bounce buffers";
  Result<Extent> e = tier->Allocate(2 * kMiB);
  ASSERT_TRUE(e.ok());
  std::vector<unsigned char> in(kMiB + 1), out(kMiB + 1);
  FillPattern(in.data(), in.size(), 2);
  // Offset 100 makes both ends partial blocks; the vector is not 4 KiB aligned.
  ASSERT_TRUE(tier->Write(*e, 100, in.data() + 1, kMiB).ok());
  ASSERT_TRUE(tier->Read(*e, 100, out.data() + 1, kMiB).ok());
  EXPECT_EQ(0, std::memcmp(in.data() + 1, out.data() + 1, kMiB));
  NvmeTierStats stats = tier->nvme_stats();
  EXPECT_EQ(2u, stats.edge_blocks_rewritten);
  EXPECT_GT(stats.bounced_bytes, 2 * (kMiB - 4096));
}

TEST_P(NvmeTierTest, WritersOfDistinctBytesInOneBlockKeepAllTheirBytes) {
  auto tier = Open();
  if (!tier) GTEST_SKIP() << "engine not available";
  Result<Extent> e = tier->Allocate(4096);
  ASSERT_TRUE(e.ok());
  constexpr int kThreads = 8, kSlice = 512, kRounds = 20;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::vector<unsigned char> slice(kSlice);
      for (int round = 0; round < kRounds; ++round) {
        std::memset(slice.data(), t * 16 + round % 16, kSlice);
        if (!tier->Write(*e, t * kSlice, slice.data(), kSlice).ok()) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_EQ(0, failures.load());
  std::vector<unsigned char> out(4096);
  ASSERT_TRUE(tier->Read(*e, 0, out.data(), 4096).ok());
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kSlice; ++i) {
      ASSERT_EQ(t * 16 + (kRounds - 1) % 16, out[t * kSlice + i]) << "thread " << t;
    }
  }
}

TEST_P(NvmeTierTest, SyncIoInsideACompletionCallbackDoesNotDeadlock) {
  auto tier = Open();
  if (!tier) GTEST_SKIP() << "engine not available";
  Result<Extent> e = tier->Allocate(1 * kMiB);
  ASSERT_TRUE(e.ok());
  std::vector<unsigned char> in(300000), first(300000), second(300000);
  FillPattern(in.data(), in.size(), 4);
  ASSERT_TRUE(tier->Write(*e, 5, in.data(), in.size()).ok());
  std::mutex mutex;
  std::condition_variable cv;
  bool finished = false;
  Status nested;
  tier->ReadAsync(*e, 5, first.data(), first.size(), [&](Status s) {
    Status again = tier->Read(*e, 5, second.data(), second.size());
    std::lock_guard<std::mutex> lock(mutex);
    nested = s.ok() ? again : s;
    finished = true;
    cv.notify_one();
  });
  std::unique_lock<std::mutex> lock(mutex);
  ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(30), [&] { return finished; }));
  EXPECT_TRUE(nested.ok()) << nested.ToString();
  EXPECT_EQ(in, first);
  EXPECT_EQ(in, second);
}

TEST_P(NvmeTierTest, DestructionWaitsForRequestsInFlight) {
  auto tier = Open();
  if (!tier) GTEST_SKIP() << "engine not available";
  Result<Extent> e = tier->Allocate(16 * kMiB);
  ASSERT_TRUE(e.ok());
  std::vector<unsigned char> out(16 * kMiB);
  std::atomic<int> callbacks{0};
  for (int i = 0; i < 16; ++i) {
    tier->ReadAsync(*e, i * kMiB + 3, out.data() + i * kMiB, kMiB - 3,
                    [&](Status s) { callbacks += s.ok() ? 1 : 1000; });
  }
  tier.reset();
  EXPECT_EQ(16, callbacks.load());
}

TEST_P(NvmeTierTest, DataSurvivesClosingAndReopeningTheFile) {
  std::vector<unsigned char> in(123457), out(123457);
  FillPattern(in.data(), in.size(), 8);
  Extent extent;
  {
    auto tier = Open();
    if (!tier) GTEST_SKIP() << "engine not available";
    Result<Extent> e = tier->Allocate(in.size());
    ASSERT_TRUE(e.ok());
    extent = *e;
    ASSERT_TRUE(tier->Write(extent, 0, in.data(), in.size()).ok());
    ASSERT_TRUE(tier->Flush().ok());
  }
  auto tier = Open();
  ASSERT_TRUE(tier);
  Result<Extent> e = tier->Allocate(in.size());  // same first-fit place in a fresh tier
  ASSERT_TRUE(e.ok());
  ASSERT_EQ(extent.offset, e->offset);
  ASSERT_TRUE(tier->Read(*e, 0, out.data(), out.size()).ok());
  EXPECT_EQ(in, out);
}

TEST_P(NvmeTierTest, RegisteredBuffersAreUsedForFixedIo) {
  auto tier = Open();
  if (!tier) GTEST_SKIP() << "engine not available";
  AlignedBuffer staging = MakeAligned(2 * kMiB);
  Status reg = tier->RegisterBuffer(staging.get(), 2 * kMiB);
  if (GetParam() == IoEngineKind::kUring && !reg.ok()) GTEST_SKIP() << reg.ToString();
  ASSERT_TRUE(reg.ok());
  Result<Extent> e = tier->Allocate(2 * kMiB);
  ASSERT_TRUE(e.ok());
  FillPattern(staging.get(), 2 * kMiB, 9);
  const uint64_t before = tier->nvme_stats().engine.fixed_buffer_transfers;
  ASSERT_TRUE(tier->Write(*e, 0, staging.get(), 2 * kMiB).ok());
  const uint64_t fixed = tier->nvme_stats().engine.fixed_buffer_transfers - before;
  if (GetParam() == IoEngineKind::kUring && tier->direct_io()) {
    EXPECT_EQ(2u, fixed);
  }
  std::vector<unsigned char> out(2 * kMiB);
  ASSERT_TRUE(tier->Read(*e, 0, out.data(), out.size()).ok());
  EXPECT_EQ(0, std::memcmp(out.data(), staging.get(), out.size()));
  EXPECT_TRUE(tier->UnregisterBuffer(staging.get()).ok() || GetParam() != IoEngineKind::kUring);
}

INSTANTIATE_TEST_SUITE_P(Engines, NvmeTierTest,
                         ::testing::Values(IoEngineKind::kUring, IoEngineKind::kThreads),
                         [](const auto& info) { return std::string(IoEngineKindName(info.param)); });

// ---- construction errors --------------------------------------------------

NvmeTierOptions Options(const std::string& path, uint64_t capacity = 16 * kMiB) {
  NvmeTierOptions options;
  options.path = path;
  options.capacity = capacity;
  return options;
}

TEST(NvmeTierErrors, MissingDirectoryIsNotFoundAndNamesThePath) {
  ScratchDir dir;
  const std::string path = dir.File("no/such/dir/tier.dat");
  Result<std::unique_ptr<NvmeTier>> tier = NvmeTier::Create(Options(path));
  EXPECT_EQ(ErrorCode::kNotFound, tier.status().code());
  EXPECT_NE(std::string::npos, tier.status().message().find(path)) << tier.status().message();
}

TEST(NvmeTierErrors, CapacityBeyondFreeSpaceIsOutOfSpaceAndLeavesNoFile) {
  ScratchDir dir;
  const std::string path = dir.File("huge.dat");
  Result<std::unique_ptr<NvmeTier>> tier = NvmeTier::Create(Options(path, 1ull << 60));
  EXPECT_EQ(ErrorCode::kOutOfSpace, tier.status().code()) << tier.status().ToString();
  EXPECT_NE(std::string::npos, tier.status().message().find(path));
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(NvmeTierErrors, BadOptionsAreInvalidArguments) {
  ScratchDir dir;
  NvmeTierOptions options = Options(dir.File("t.dat"));
  options.capacity = 0;
  EXPECT_EQ(ErrorCode::kInvalidArgument, NvmeTier::Create(options).status().code());
  options = Options(dir.File("t.dat"));
  options.block_size = 4097;
  EXPECT_EQ(ErrorCode::kInvalidArgument, NvmeTier::Create(options).status().code());
  options = Options(dir.File("t.dat"));
  options.granularity = 3000;
  EXPECT_EQ(ErrorCode::kInvalidArgument, NvmeTier::Create(options).status().code());
  options = Options("");
  EXPECT_EQ(ErrorCode::kInvalidArgument, NvmeTier::Create(options).status().code());
  options = Options(dir.path());  // a directory, not a file
  EXPECT_EQ(ErrorCode::kInvalidArgument, NvmeTier::Create(options).status().code());
  options = Options(dir.File("t.dat"));
  options.io.queue_depth = 0;
  EXPECT_EQ(ErrorCode::kInvalidArgument, NvmeTier::Create(options).status().code());
}

TEST(NvmeTierErrors, UnwritableFileIsPermissionDeniedAndNamesThePath) {
  ScratchDir dir;
  const std::string path = dir.File("readonly.dat");
  ::close(::open(path.c_str(), O_CREAT | O_WRONLY, 0444));
  ASSERT_EQ(0, ::chmod(path.c_str(), 0444));
  ASSERT_EQ(0, ::chmod(dir.path().c_str(), 0755));
  // Root ignores file modes, so check as an unprivileged user in a child.
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (::geteuid() == 0 && ::setresuid(65534, 65534, 65534) != 0) ::_exit(10);
    Result<std::unique_ptr<NvmeTier>> tier = NvmeTier::Create(Options(path));
    const bool named = tier.status().message().find(path) != std::string::npos;
    ::_exit(tier.status().code() == ErrorCode::kPermissionDenied && named ? 0 : 11);
  }
  int status = 0;
  ASSERT_EQ(child, ::waitpid(child, &status, 0));
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(0, WEXITSTATUS(status));
}

TEST(NvmeTierErrors, ODirectIsUsedWhereTheFilesystemTakesIt) {
  // /dev/shm is tmpfs, which takes O_DIRECT only on recent kernels: either
  // way the tier must work, and say which it did.
  ScratchDir dir(std::filesystem::is_directory("/dev/shm") ? "/dev/shm" : nullptr);
  const std::string probe = dir.File("probe");
  const int fd = ::open(probe.c_str(), O_RDWR | O_CREAT | O_DIRECT, 0644);
  const bool fs_takes_direct = fd >= 0;
  if (fd >= 0) ::close(fd);
  ::unlink(probe.c_str());
  Result<std::unique_ptr<NvmeTier>> tier = NvmeTier::Create(Options(dir.File("t.dat")));
  ASSERT_TRUE(tier.ok()) << tier.status().ToString();
  EXPECT_EQ(fs_takes_direct, (*tier)->direct_io());
  bool recorded = false;
  for (const FallbackEvent& e : Fallbacks()) recorded |= e.name == "nvme.o_direct";
  EXPECT_EQ(!fs_takes_direct, recorded);
  std::vector<unsigned char> in(10000), out(10000);
  FillPattern(in.data(), in.size(), 10);
  Result<Extent> e = (*tier)->Allocate(in.size());
  ASSERT_TRUE(e.ok());
  ASSERT_TRUE((*tier)->Write(*e, 0, in.data(), in.size()).ok());
  ASSERT_TRUE((*tier)->Read(*e, 0, out.data(), out.size()).ok());
  EXPECT_EQ(in, out);
}

#ifdef TIERCACHE_HAVE_URING
// In a child where io_uring_setup fails with EPERM (a container's seccomp
// profile), the tier must come up on the thread pool and round-trip data.
void TierWithIoUringRefused() {
  if (!BlockIoUring(EPERM)) std::exit(10);
  ScratchDir dir;
  Result<std::unique_ptr<NvmeTier>> tier = NvmeTier::Create(Options(dir.File("t.dat")));
  if (!tier.ok() || (*tier)->engine_kind() != IoEngineKind::kThreads) std::exit(11);
  std::vector<unsigned char> in(5000, 7), out(5000);
  Result<Extent> e = (*tier)->Allocate(in.size());
  if (!e.ok() || !(*tier)->Write(*e, 0, in.data(), in.size()).ok() ||
      !(*tier)->Read(*e, 0, out.data(), out.size()).ok()) {
    std::exit(12);
  }
  tier->reset();
  std::exit(in == out ? 0 : 13);
}

TEST(NvmeTierErrorsDeathTest, TierRunsOnTheThreadPoolWhenIoUringIsRefused) {
  EXPECT_EXIT(TierWithIoUringRefused(), ::testing::ExitedWithCode(0), "fallback nvme.io_engine");
}
#endif

}  // namespace
}  // namespace tiercache::testing
