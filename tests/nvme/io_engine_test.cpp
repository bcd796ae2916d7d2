#include "tiers/io_engine.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <vector>

#include "common/log.h"
#include "common/units.h"
#include "tests/nvme/nvme_test_util.h"
#include "tests/tiers/tier_conformance.h"

namespace tiercache::testing {
namespace {

class IoEngineTest : public ::testing::TestWithParam<IoEngineKind> {
 protected:
  static constexpr uint64_t kFileBytes = 8 * kMiB;

  void SetUp() override {
    ASSERT_TRUE(dir_.ok());
    path_ = dir_.File("engine.dat");
    // O_DIRECT where the filesystem takes it, so the engine sees what the tier sees.
    fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_DIRECT, 0644);
    if (fd_ < 0) fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT, 0644);
    ASSERT_GE(fd_, 0);
    initial_ = MakeAligned(kFileBytes);
    FillPattern(initial_.get(), kFileBytes, 7);
    ASSERT_EQ(static_cast<ssize_t>(kFileBytes), ::pwrite(fd_, initial_.get(), kFileBytes, 0));
  }
  void TearDown() override {
    engine_.reset();
    if (fd_ >= 0) ::close(fd_);
  }

  // nullptr (and a skip) when the asked-for engine is not what we got.
  IoEngine* MakeEngine(IoEngineOptions options) {
    options.kind = GetParam();
    Result<std::unique_ptr<IoEngine>> engine = IoEngine::Create(options);
    EXPECT_TRUE(engine.ok()) << engine.status().ToString();
    if (!engine.ok() || (*engine)->kind() != GetParam()) return nullptr;
    engine_ = std::move(engine).value();
    Result<int> file = engine_->RegisterFile(fd_);
    EXPECT_TRUE(file.ok());
    file_ = file.ok() ? *file : -1;
    return engine_.get();
  }

  ScratchDir dir_;
  std::string path_;
  int fd_ = -1;
  AlignedBuffer initial_;
  std::unique_ptr<IoEngine> engine_;
  int file_ = -1;
};

// Half the requests overwrite the first half of the file, half read the
// untouched second half; reads must see the initial bytes, the file the new.
void RunMixedBatch(IoEngine& engine, int file, int fd, const unsigned char* initial,
                   uint64_t file_bytes) {
  constexpr uint64_t kPiece = 64 * kKiB;
  const uint64_t half = file_bytes / 2;
  const int pieces = static_cast<int>(half / kPiece);
  AlignedBuffer fresh = MakeAligned(half), readback = MakeAligned(half);
  FillPattern(fresh.get(), half, 99);
  std::memset(readback.get(), 0, half);
  std::vector<IoRequest> batch;
  for (int i = 0; i < pieces; ++i) {
    batch.push_back({IoOp::kWrite, file, fresh.get() + i * kPiece, i * kPiece, kPiece});
    batch.push_back({IoOp::kRead, file, readback.get() + i * kPiece, half + i * kPiece, kPiece});
  }
  ASSERT_TRUE(engine.Execute(batch).ok());
  EXPECT_EQ(0, std::memcmp(readback.get(), initial + half, half));
  AlignedBuffer on_disk = MakeAligned(half);
  ASSERT_EQ(static_cast<ssize_t>(half), ::pread(fd, on_disk.get(), half, 0));
  EXPECT_EQ(0, std::memcmp(on_disk.get(), fresh.get(), half));
  EXPECT_EQ(static_cast<uint64_t>(2 * pieces), engine.stats().requests);
}

TEST_P(IoEngineTest, MixedBatchAtQueueDepthOne) {
  IoEngine* engine = MakeEngine({.queue_depth = 1});
  if (engine == nullptr) GTEST_SKIP() << "engine not available";
  RunMixedBatch(*engine, file_, fd_, initial_.get(), kFileBytes);
  const IoEngineStats stats = engine->stats();
  if (GetParam() == IoEngineKind::kUring) {
    // One transfer in the ring at a time: one io_uring_submit each.
    EXPECT_EQ(stats.transfers, stats.kernel_submits);
  }
}

TEST_P(IoEngineTest, MixedBatchAtQueueDepth64) {
  IoEngine* engine = MakeEngine({.queue_depth = 64});
  if (engine == nullptr) GTEST_SKIP() << "engine not available";
  RunMixedBatch(*engine, file_, fd_, initial_.get(), kFileBytes);
  const IoEngineStats stats = engine->stats();
  EXPECT_EQ(0u, stats.failed_requests);
  if (GetParam() == IoEngineKind::kUring) {
    // Batched submission: the first 64 transfers share one io_uring_submit.
    EXPECT_LE(stats.kernel_submits + 63, stats.transfers);
    EXPECT_GT(stats.fixed_file_transfers, 0u) << "file registration not used";
  }
}

TEST_P(IoEngineTest, ShortTransfersAreResubmittedForTheRemainder) {
  IoEngine* engine = MakeEngine({.queue_depth = 8, .max_transfer_bytes = 4096});
  if (engine == nullptr) GTEST_SKIP() << "engine not available";
  AlignedBuffer out = MakeAligned(1 * kMiB);
  ASSERT_TRUE(engine->Execute({{IoOp::kRead, file_, out.get(), 2 * kMiB, 1 * kMiB}}).ok());
  EXPECT_EQ(0, std::memcmp(out.get(), initial_.get() + 2 * kMiB, 1 * kMiB));
  EXPECT_EQ(255u, engine->stats().short_transfers);
  EXPECT_EQ(1u * kMiB, engine->stats().bytes_read);
}

TEST_P(IoEngineTest, EagainAndEintrAreRetried) {
  IoEngine* engine = MakeEngine({.queue_depth = 4, .inject_transient_errors = 6});
  if (engine == nullptr) GTEST_SKIP() << "engine not available";
  AlignedBuffer in = MakeAligned(256 * kKiB), out = MakeAligned(256 * kKiB);
  FillPattern(in.get(), 256 * kKiB, 5);
  ASSERT_TRUE(engine->Execute({{IoOp::kWrite, file_, in.get(), 0, 128 * kKiB},
                               {IoOp::kWrite, file_, in.get() + 128 * kKiB, 128 * kKiB,
                                128 * kKiB}})
                  .ok());
  ASSERT_TRUE(engine->Execute({{IoOp::kRead, file_, out.get(), 0, 256 * kKiB}}).ok());
  EXPECT_EQ(0, std::memcmp(in.get(), out.get(), 256 * kKiB));
  EXPECT_EQ(6u, engine->stats().retries);
  EXPECT_EQ(0u, engine->stats().failed_requests);
}

TEST_P(IoEngineTest, ReadPastEndOfFileFailsAfterTheShortPart) {
  IoEngine* engine = MakeEngine({.queue_depth = 4});
  if (engine == nullptr) GTEST_SKIP() << "engine not available";
  // A buffered file of 6000 bytes: the first transfer comes back short
  // (6000 of 8192), the resubmitted remainder finds the end of the file.
  const std::string small_path = dir_.File("short.dat");
  const int small = ::open(small_path.c_str(), O_RDWR | O_CREAT, 0644);
  ASSERT_GE(small, 0);
  std::vector<unsigned char> data(6000), out(8192, 0);
  FillPattern(data.data(), data.size(), 3);
  ASSERT_EQ(6000, ::pwrite(small, data.data(), data.size(), 0));
  Result<int> handle = engine->RegisterFile(small);
  ASSERT_TRUE(handle.ok());
  Status status = engine->Execute({{IoOp::kRead, *handle, out.data(), 0, 8192}});
  EXPECT_EQ(ErrorCode::kIoError, status.code());
  EXPECT_NE(std::string::npos, status.message().find("end of file at offset 6000"))
      << status.message();
  EXPECT_EQ(0, std::memcmp(data.data(), out.data(), 6000)) << "the short part was not kept";
  EXPECT_GE(engine->stats().short_transfers, 1u);
  EXPECT_EQ(1u, engine->stats().failed_requests);
  engine_.reset();  // before closing the descriptor it uses
  ::close(small);
}

TEST_P(IoEngineTest, KernelErrorsFailOnlyTheirBatchWithContext) {
  IoEngine* engine = MakeEngine({.queue_depth = 4});
  if (engine == nullptr) GTEST_SKIP() << "engine not available";
  const int write_only = ::open(path_.c_str(), O_WRONLY);
  ASSERT_GE(write_only, 0);
  Result<int> handle = engine->RegisterFile(write_only);
  ASSERT_TRUE(handle.ok());
  std::vector<unsigned char> out(4096);
  Status status = engine->Execute({{IoOp::kRead, *handle, out.data(), 4096, 4096}});
  EXPECT_EQ(ErrorCode::kIoError, status.code());
  EXPECT_NE(std::string::npos, status.message().find("offset 4096")) << status.message();
  // The engine keeps working for good requests.
  AlignedBuffer good = MakeAligned(4096);
  EXPECT_TRUE(engine->Execute({{IoOp::kRead, file_, good.get(), 0, 4096}}).ok());
  EXPECT_EQ(0, std::memcmp(good.get(), initial_.get(), 4096));
  engine_.reset();
  ::close(write_only);
}

TEST_P(IoEngineTest, RejectsMalformedRequests) {
  IoEngine* engine = MakeEngine({.queue_depth = 4});
  if (engine == nullptr) GTEST_SKIP() << "engine not available";
  std::vector<unsigned char> out(4096);
  EXPECT_EQ(ErrorCode::kInvalidArgument,
            engine->Execute({{IoOp::kRead, 9, out.data(), 0, 4096}}).code());
  EXPECT_EQ(ErrorCode::kInvalidArgument,
            engine->Execute({{IoOp::kRead, file_, nullptr, 0, 4096}}).code());
  EXPECT_EQ(ErrorCode::kInvalidArgument,
            engine->Execute({{IoOp::kRead, file_, out.data(), 0, 0}}).code());
  EXPECT_EQ(ErrorCode::kInvalidArgument, engine->RegisterFile(-1).status().code());
  EXPECT_TRUE(engine->Execute({}).ok());
}

TEST_P(IoEngineTest, ExecuteInsideACallbackRunsInlineInsteadOfDeadlocking) {
  IoEngine* engine = MakeEngine({.queue_depth = 2, .threads = 1});
  if (engine == nullptr) GTEST_SKIP() << "engine not available";
  AlignedBuffer first = MakeAligned(4096), second = MakeAligned(64 * kKiB);
  std::mutex mutex;
  std::condition_variable cv;
  bool finished = false;
  Status inner;
  engine->Submit({{IoOp::kRead, file_, first.get(), 0, 4096}}, [&](Status s) {
    Status nested = engine->Execute({{IoOp::kRead, file_, second.get(), 64 * kKiB, 64 * kKiB}});
    std::lock_guard<std::mutex> lock(mutex);
    inner = s.ok() ? nested : s;
    finished = true;
    cv.notify_one();
  });
  std::unique_lock<std::mutex> lock(mutex);
  ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(30), [&] { return finished; }));
  EXPECT_TRUE(inner.ok()) << inner.ToString();
  EXPECT_EQ(0, std::memcmp(second.get(), initial_.get() + 64 * kKiB, 64 * kKiB));
  EXPECT_EQ(1u, engine->stats().inline_batches);
}

TEST_P(IoEngineTest, RegisteredBuffersUseFixedTransfersOnIoUring) {
  IoEngine* engine = MakeEngine({.queue_depth = 8});
  if (engine == nullptr) GTEST_SKIP() << "engine not available";
  AlignedBuffer registered = MakeAligned(1 * kMiB), plain = MakeAligned(1 * kMiB);
  ASSERT_EQ(ErrorCode::kInvalidArgument, engine->RegisterBuffer(nullptr, 10).code());
  Status reg = engine->RegisterBuffer(registered.get(), 1 * kMiB);
  if (GetParam() == IoEngineKind::kUring && !reg.ok()) {
    GTEST_SKIP() << "kernel refused buffer registration: " << reg.ToString();
  }
  ASSERT_TRUE(reg.ok());
  ASSERT_TRUE(engine->Execute({{IoOp::kRead, file_, registered.get() + 4096, 0, 512 * kKiB},
                               {IoOp::kRead, file_, plain.get(), 1 * kMiB, 1 * kMiB}})
                  .ok());
  EXPECT_EQ(0, std::memcmp(registered.get() + 4096, initial_.get(), 512 * kKiB));
  EXPECT_EQ(0, std::memcmp(plain.get(), initial_.get() + kMiB, kMiB));
  const uint64_t expected_fixed = GetParam() == IoEngineKind::kUring ? 1 : 0;
  EXPECT_EQ(expected_fixed, engine->stats().fixed_buffer_transfers);
  if (GetParam() == IoEngineKind::kUring) {
    EXPECT_TRUE(engine->UnregisterBuffer(registered.get()).ok());
    EXPECT_EQ(ErrorCode::kNotFound, engine->UnregisterBuffer(registered.get()).code());
    ASSERT_TRUE(engine->Execute({{IoOp::kRead, file_, registered.get(), 0, 4096}}).ok());
    EXPECT_EQ(1u, engine->stats().fixed_buffer_transfers);
  }
}

TEST_P(IoEngineTest, ManyConcurrentSubmittersAllComplete) {
  IoEngine* engine = MakeEngine({.queue_depth = 16});
  if (engine == nullptr) GTEST_SKIP() << "engine not available";
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      AlignedBuffer out = MakeAligned(64 * kKiB);
      for (int i = 0; i < 32; ++i) {
        const uint64_t offset = ((t * 32 + i) % 128) * 64 * kKiB;
        if (!engine->Execute({{IoOp::kRead, file_, out.get(), offset, 64 * kKiB}}).ok() ||
            std::memcmp(out.get(), initial_.get() + offset, 64 * kKiB) != 0) {
          ++bad;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(0, bad.load());
  EXPECT_EQ(128u, engine->stats().requests);
}

INSTANTIATE_TEST_SUITE_P(Engines, IoEngineTest,
                         ::testing::Values(IoEngineKind::kUring, IoEngineKind::kThreads),
                         [](const auto& info) { return std::string(IoEngineKindName(info.param)); });

TEST(IoEngineSelection, ParsesEngineNames) {
  EXPECT_EQ(IoEngineKind::kUring, *ParseIoEngineKind("uring"));
  EXPECT_EQ(IoEngineKind::kUring, *ParseIoEngineKind("io_uring"));
  EXPECT_EQ(IoEngineKind::kThreads, *ParseIoEngineKind("threads"));
  EXPECT_EQ(IoEngineKind::kAuto, *ParseIoEngineKind(""));
  EXPECT_EQ(IoEngineKind::kAuto, *ParseIoEngineKind(nullptr));
  EXPECT_EQ(ErrorCode::kInvalidArgument, ParseIoEngineKind("libaio").status().code());
}

TEST(IoEngineSelection, RejectsQueueDepthZero) {
  EXPECT_EQ(ErrorCode::kInvalidArgument, IoEngine::Create({.queue_depth = 0}).status().code());
}

TEST(IoEngineSelection, EnvironmentChoosesTheEngineWhenOptionsSayAuto) {
  ::setenv("TIERCACHE_NVME_ENGINE", "threads", 1);
  Result<std::unique_ptr<IoEngine>> engine = IoEngine::Create({});
  ASSERT_TRUE(engine.ok());
  EXPECT_EQ(IoEngineKind::kThreads, (*engine)->kind());
  ::setenv("TIERCACHE_NVME_ENGINE", "bogus", 1);
  EXPECT_EQ(ErrorCode::kInvalidArgument, IoEngine::Create({}).status().code());
  ::unsetenv("TIERCACHE_NVME_ENGINE");
}

#ifdef TIERCACHE_HAVE_URING
// In a child whose io_uring_setup fails with `err`, asking for io_uring
// must land on the thread pool, record the fallback once, and still do I/O.
void ForcedUringFallsBack(int err) {
  if (!BlockIoUring(err)) std::exit(10);
  Result<std::unique_ptr<IoEngine>> engine = IoEngine::Create({.kind = IoEngineKind::kUring});
  if (!engine.ok() || (*engine)->kind() != IoEngineKind::kThreads) std::exit(11);
  bool recorded = false;
  for (const FallbackEvent& e : Fallbacks()) recorded |= e.name == "nvme.io_engine";
  if (!recorded) std::exit(12);
  ScratchDir dir;
  const int fd = ::open(dir.File("f").c_str(), O_RDWR | O_CREAT, 0644);
  char data[100] = "fallback", out[100] = {};
  if (fd < 0 || ::pwrite(fd, data, sizeof(data), 0) != sizeof(data)) std::exit(13);
  Result<int> file = (*engine)->RegisterFile(fd);
  if (!file.ok() || !(*engine)->Execute({{IoOp::kRead, *file, out, 0, sizeof(out)}}).ok()) {
    std::exit(14);
  }
  engine->reset();
  ::close(fd);
  std::exit(std::strcmp(data, out) == 0 ? 0 : 15);
}

TEST(IoEngineSelectionDeathTest, SeccompEpermFallsBackToThreads) {
  EXPECT_EXIT(ForcedUringFallsBack(EPERM), ::testing::ExitedWithCode(0),
              "fallback nvme.io_engine: io_uring refused");
}

TEST(IoEngineSelectionDeathTest, MissingSyscallFallsBackToThreads) {
  EXPECT_EXIT(ForcedUringFallsBack(ENOSYS), ::testing::ExitedWithCode(0),
              "fallback nvme.io_engine: io_uring refused");
}

TEST(IoEngineSelectionDeathTest, OtherSetupFailuresAreReportedNotHidden) {
  EXPECT_EXIT(
      {
        if (!BlockIoUring(EFAULT)) std::exit(10);
        Result<std::unique_ptr<IoEngine>> engine = IoEngine::Create({.kind = IoEngineKind::kUring});
        std::exit(!engine.ok() && engine.status().code() == ErrorCode::kUnavailable ? 0 : 11);
      },
      ::testing::ExitedWithCode(0), "");
}
#endif

}  // namespace
}  // namespace tiercache::testing
