// FileTier: extents over ranges of existing files, read in place.
#include "tiers/file_tier.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/nvme/nvme_test_util.h"

namespace tiercache {
namespace {

using testing::MakeAligned;
using testing::ScratchDir;

std::vector<unsigned char> RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<unsigned char> v(n);
  for (auto& b : v) b = static_cast<unsigned char>(rng());
  return v;
}

void WriteFile(const std::string& path, const std::vector<unsigned char>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

class FileTierTest : public ::testing::TestWithParam<FileReadMode> {
 protected:
  void SetUp() override {
    ASSERT_TRUE(dir_.ok());
    a_bytes_ = RandomBytes(3 * 1024 * 1024 + 123, 1);  // not a whole number of pages
    b_bytes_ = RandomBytes(200 * 1024 + 7, 2);
    WriteFile(dir_.File("a.bin"), a_bytes_);
    WriteFile(dir_.File("b.bin"), b_bytes_);
    FileTierOptions options;
    options.mode = GetParam();
    options.block_size = 64 * 1024;  // several transfers per read
    Result<std::unique_ptr<FileTier>> tier = FileTier::Create(options);
    ASSERT_TRUE(tier.ok()) << tier.status().ToString();
    tier_ = std::move(tier).value();
    Result<int> a = tier_->AddFile(dir_.File("a.bin"));
    Result<int> b = tier_->AddFile(dir_.File("b.bin"));
    ASSERT_TRUE(a.ok() && b.ok());
    a_ = *a;
    b_ = *b;
  }

  ScratchDir dir_;
  std::vector<unsigned char> a_bytes_, b_bytes_;
  std::unique_ptr<FileTier> tier_;
  int a_ = -1, b_ = -1;
};

TEST_P(FileTierTest, ReadsPiecesOfSeveralFilesAndZerosBackToBack) {
  // Unaligned starts and ends, a piece reaching the end of a file, padding.
  const std::vector<FilePiece> pieces = {
      {a_, 4097, 1000000},
      {FilePiece::kZeros, 0, 3000},
      {b_, 11, b_bytes_.size() - 11},
      {a_, a_bytes_.size() - 70000, 70000},
  };
  std::vector<unsigned char> expected;
  for (const FilePiece& p : pieces) {
    if (p.file == FilePiece::kZeros) {
      expected.insert(expected.end(), p.bytes, 0);
    } else {
      const auto& src = p.file == a_ ? a_bytes_ : b_bytes_;
      expected.insert(expected.end(), src.begin() + p.offset, src.begin() + p.offset + p.bytes);
    }
  }
  Result<Extent> extent = tier_->Map(pieces);
  ASSERT_TRUE(extent.ok()) << extent.status().ToString();
  EXPECT_EQ(extent->length, expected.size());
  // Whole, and in pieces of odd sizes at odd offsets, into aligned and
  // unaligned buffers.
  auto buffer = MakeAligned(expected.size() + 4096);
  for (uint64_t shift : {0ull, 1ull, 4096ull - 4097 % 4096}) {
    std::fill(buffer.get(), buffer.get() + expected.size() + 4096, 0xEE);
    ASSERT_TRUE(tier_->Read(*extent, 0, buffer.get() + shift, expected.size()).ok());
    EXPECT_EQ(0, std::memcmp(buffer.get() + shift, expected.data(), expected.size()))
        << "shift " << shift;
  }
  for (uint64_t offset = 0; offset < expected.size(); offset += 333333) {
    const uint64_t n = std::min<uint64_t>(777777, expected.size() - offset);
    std::vector<unsigned char> out(n);
    Status s = tier_->Read(*extent, offset, out.data(), n);
    ASSERT_TRUE(s.ok()) << s.ToString();
    EXPECT_EQ(0, std::memcmp(out.data(), expected.data() + offset, n)) << "offset " << offset;
  }
  const FileTierStats stats = tier_->file_stats();
  EXPECT_GT(stats.zero_bytes, 0u);
  if (GetParam() == FileReadMode::kDirect && tier_->file_direct(a_)) {  // not on tmpfs
    EXPECT_GT(stats.direct_bytes, 0u);  // the congruent reads went straight in
    EXPECT_GT(stats.edge_bytes, 0u);
  }
  if (GetParam() == FileReadMode::kBuffered) {
    EXPECT_EQ(stats.direct_bytes, 0u);
  }
  EXPECT_TRUE(tier_->Unmap(*extent).ok());
  std::vector<unsigned char> out(16);
  EXPECT_EQ(tier_->Read(*extent, 0, out.data(), out.size()).code(), ErrorCode::kInvalidArgument);
}

TEST_P(FileTierTest, MapChecksItsPieces) {
  EXPECT_EQ(tier_->Map({}).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(tier_->Map({{a_, 0, 0}}).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(tier_->Map({{7, 0, 10}}).status().code(), ErrorCode::kInvalidArgument);
  Result<Extent> past = tier_->Map({{b_, b_bytes_.size() - 10, 11}});
  EXPECT_EQ(past.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(past.status().message().find("b.bin"), std::string::npos) << past.status().ToString();
  EXPECT_EQ(tier_->Map({{a_, ~0ull - 5, 10}}).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(tier_->Map({{b_, b_bytes_.size() - 10, 10}}).ok());
}

TEST_P(FileTierTest, IsReadOnly) {
  Result<Extent> extent = tier_->Map({{a_, 0, 4096}});
  ASSERT_TRUE(extent.ok());
  std::vector<unsigned char> data(4096, 1);
  EXPECT_EQ(tier_->Write(*extent, 0, data.data(), data.size()).code(), ErrorCode::kPermissionDenied);
}

TEST_P(FileTierTest, AChangedFileIsAClearErrorAndOthersStillRead) {
  Result<Extent> on_a = tier_->Map({{a_, 100, 5000}});
  Result<Extent> on_b = tier_->Map({{b_, 100, 5000}});
  ASSERT_TRUE(on_a.ok() && on_b.ok());
  std::vector<unsigned char> out(5000);
  ASSERT_TRUE(tier_->Read(*on_a, 0, out.data(), out.size()).ok());
  {
    std::ofstream grow(dir_.File("a.bin"), std::ios::binary | std::ios::app);
    grow << "more";
  }
  Status changed = tier_->Read(*on_a, 0, out.data(), out.size());
  EXPECT_EQ(changed.code(), ErrorCode::kCorruption);
  EXPECT_NE(changed.message().find("a.bin"), std::string::npos) << changed.ToString();
  EXPECT_NE(changed.message().find("changed"), std::string::npos) << changed.ToString();
  EXPECT_EQ(tier_->CheckFile(a_).code(), ErrorCode::kCorruption);
  ASSERT_TRUE(tier_->Read(*on_b, 0, out.data(), out.size()).ok());
  EXPECT_EQ(0, std::memcmp(out.data(), b_bytes_.data() + 100, out.size()));
  // Same size, new modification time.
  struct timespec times[2] = {{0, UTIME_OMIT}, {12345, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, dir_.File("b.bin").c_str(), times, 0), 0);
  EXPECT_EQ(tier_->Read(*on_b, 0, out.data(), out.size()).code(), ErrorCode::kCorruption);
  EXPECT_EQ(tier_->file_stats().changed_files, 3u);  // two reads and CheckFile
}

TEST_P(FileTierTest, AsyncReadsOverlapAndMatchTheSyncOnes) {
  const std::vector<FilePiece> pieces = {
      {a_, 4097, 2000000}, {FilePiece::kZeros, 0, 3000}, {b_, 11, b_bytes_.size() - 11}};
  Result<Extent> extent = tier_->Map(pieces);
  ASSERT_TRUE(extent.ok());
  std::vector<unsigned char> expected(extent->length);
  ASSERT_TRUE(tier_->Read(*extent, 0, expected.data(), expected.size()).ok());
  // Eight reads at once of odd pieces (some into unaligned buffers, some
  // only zeros), each completion exactly once.
  constexpr int kReads = 8;
  std::vector<decltype(MakeAligned(1))> buffers;
  for (int i = 0; i < kReads; ++i) buffers.push_back(MakeAligned(300007 + 4096));
  std::mutex mutex;
  std::condition_variable cv;
  int done = 0, calls[kReads] = {};
  Status statuses[kReads];
  uint64_t offsets[kReads], sizes[kReads];
  for (int i = 0; i < kReads; ++i) {
    offsets[i] = i == kReads - 1 ? 2000000 + 10 : static_cast<uint64_t>(i) * 250001;
    sizes[i] = i == kReads - 1 ? 2000 : std::min<uint64_t>(300007, expected.size() - offsets[i]);
    unsigned char* dst = buffers[i].get() + (i % 2);
    tier_->ReadAsync(*extent, offsets[i], dst, sizes[i], [&, i](Status st) {
      std::lock_guard<std::mutex> lock(mutex);
      statuses[i] = std::move(st);
      ++calls[i];
      ++done;
      cv.notify_all();
    });
  }
  {
    std::unique_lock<std::mutex> lock(mutex);
    cv.wait(lock, [&] { return done == kReads; });
  }
  for (int i = 0; i < kReads; ++i) {
    EXPECT_EQ(1, calls[i]);
    ASSERT_TRUE(statuses[i].ok()) << i << ": " << statuses[i].ToString();
    const unsigned char* got = buffers[i].get() + (i % 2);
    EXPECT_EQ(0, std::memcmp(got, expected.data() + offsets[i], sizes[i])) << "read " << i;
  }
  // A changed file: the async read reports it, naming the file.
  {
    std::ofstream grow(dir_.File("a.bin"), std::ios::binary | std::ios::app);
    grow << "more";
  }
  Status changed;
  bool called = false;
  tier_->ReadAsync(*extent, 0, buffers[0].get(), 4096, [&](Status st) {
    std::lock_guard<std::mutex> lock(mutex);
    changed = std::move(st);
    called = true;
    cv.notify_all();
  });
  std::unique_lock<std::mutex> lock(mutex);
  cv.wait(lock, [&] { return called; });
  EXPECT_EQ(ErrorCode::kCorruption, changed.code());
  EXPECT_NE(changed.message().find("a.bin"), std::string::npos) << changed.ToString();
}

TEST_P(FileTierTest, AddFileNamesWhatIsWrong) {
  Result<int> missing = tier_->AddFile(dir_.File("missing.bin"));
  EXPECT_EQ(missing.status().code(), ErrorCode::kNotFound);
  EXPECT_NE(missing.status().message().find("missing.bin"), std::string::npos);
  EXPECT_FALSE(tier_->AddFile(dir_.path()).ok());  // a directory
}

// Records what PinResidentFiles asks the device for; refuses the call
// numbered `refuse` (0: none).
struct PinRecorder {
  std::vector<std::pair<const void*, size_t>> pinned;
  std::vector<void*> unpinned;
  int calls = 0;
  int refuse = 0;
  FileTier::PinFunction Pin() {
    return [this](const void* p, size_t n) {
      if (++calls == refuse) return Status::PermissionDenied("refused");
      pinned.push_back({p, n});
      return Status::Ok();
    };
  }
  FileTier::UnpinFunction Unpin() {
    return [this](void* p) {
      unpinned.push_back(p);
      return Status::Ok();
    };
  }
};

TEST_P(FileTierTest, PinnedResidentFilesHandOutTheirBytesAsRuns) {
  const std::vector<FilePiece> pieces = {
      {a_, 4097, 1000000}, {FilePiece::kZeros, 0, 3000}, {b_, 11, b_bytes_.size() - 11}};
  Result<Extent> extent = tier_->Map(pieces);
  ASSERT_TRUE(extent.ok());
  std::vector<Tier::HostRun> runs;
  EXPECT_EQ(tier_->HostRuns(*extent, extent->length, &runs).code(), ErrorCode::kUnavailable)
      << "not pinned yet: the bytes must be read";
  PinRecorder recorder;
  {
    // Just written: in the page cache.
    ASSERT_TRUE(tier_->PinResidentFiles(recorder.Pin(), recorder.Unpin()));
    EXPECT_TRUE(tier_->pinned());
    ASSERT_EQ(recorder.pinned.size(), 2u);
    EXPECT_EQ(recorder.pinned[0].second, a_bytes_.size());
    EXPECT_EQ(recorder.pinned[1].second, b_bytes_.size());
    EXPECT_EQ(tier_->file_stats().pinned_bytes, a_bytes_.size() + b_bytes_.size());
    EXPECT_FALSE(tier_->PinResidentFiles(recorder.Pin(), recorder.Unpin())) << "once";
    // The whole extent, then a prefix ending inside the zeros.
    ASSERT_TRUE(tier_->HostRuns(*extent, extent->length, &runs).ok());
    ASSERT_EQ(runs.size(), 3u);
    EXPECT_EQ(runs[0].bytes, 1000000u);
    EXPECT_EQ(0, std::memcmp(runs[0].data, a_bytes_.data() + 4097, runs[0].bytes));
    EXPECT_EQ(runs[1].data, nullptr);
    EXPECT_EQ(runs[1].bytes, 3000u);
    EXPECT_EQ(runs[2].bytes, b_bytes_.size() - 11);
    EXPECT_EQ(0, std::memcmp(runs[2].data, b_bytes_.data() + 11, runs[2].bytes));
    ASSERT_TRUE(tier_->HostRuns(*extent, 1000100, &runs).ok());
    ASSERT_EQ(runs.size(), 2u);
    EXPECT_EQ(runs[1].bytes, 100u);
    EXPECT_EQ(tier_->file_stats().mapped_bytes, 2 * 1000000u + b_bytes_.size() - 11);
    EXPECT_EQ(tier_->HostRuns(*extent, extent->length + 1, &runs).code(), ErrorCode::kInvalidArgument);
    // A changed file: refused as a read would be; the other file still answers.
    struct timespec times[2] = {{0, UTIME_OMIT}, {777, 0}};
    ASSERT_EQ(::utimensat(AT_FDCWD, dir_.File("b.bin").c_str(), times, 0), 0);
    Status changed = tier_->HostRuns(*extent, extent->length, &runs);
    EXPECT_EQ(changed.code(), ErrorCode::kCorruption);
    EXPECT_NE(changed.message().find("b.bin"), std::string::npos) << changed.ToString();
    Result<Extent> on_a = tier_->Map({{a_, 0, 4096}});
    ASSERT_TRUE(on_a.ok());
    EXPECT_TRUE(tier_->HostRuns(*on_a, 4096, &runs).ok());
  }
  EXPECT_TRUE(recorder.unpinned.empty());
  tier_.reset();
  ASSERT_EQ(recorder.unpinned.size(), 2u) << "each file unpinned when the tier goes";
  EXPECT_EQ(recorder.unpinned[0], recorder.pinned[0].first);
  EXPECT_EQ(recorder.unpinned[1], recorder.pinned[1].first);
}

TEST_P(FileTierTest, APinRefusedLeavesNothingPinned) {
  PinRecorder recorder;
  recorder.refuse = 2;  // the second file
  EXPECT_FALSE(tier_->PinResidentFiles(recorder.Pin(), recorder.Unpin()));
  EXPECT_FALSE(tier_->pinned());
  ASSERT_EQ(recorder.pinned.size(), 1u);
  ASSERT_EQ(recorder.unpinned.size(), 1u);
  EXPECT_EQ(recorder.unpinned[0], recorder.pinned[0].first);
  EXPECT_EQ(tier_->file_stats().pinned_bytes, 0u);
  Result<Extent> extent = tier_->Map({{a_, 0, 5000}});
  ASSERT_TRUE(extent.ok());
  std::vector<Tier::HostRun> runs;
  EXPECT_EQ(tier_->HostRuns(*extent, 5000, &runs).code(), ErrorCode::kUnavailable);
  std::vector<unsigned char> out(5000);
  ASSERT_TRUE(tier_->Read(*extent, 0, out.data(), out.size()).ok()) << "reads still work";
  EXPECT_EQ(0, std::memcmp(out.data(), a_bytes_.data(), out.size()));
  tier_.reset();
  EXPECT_EQ(recorder.unpinned.size(), 1u) << "nothing left to unpin";
}

TEST_P(FileTierTest, AFileNotInThePageCacheIsNotPinned) {
  // Dropped from the page cache where the filesystem allows it (not tmpfs).
  for (const char* name : {"a.bin", "b.bin"}) {
    const int fd = ::open(dir_.File(name).c_str(), O_RDONLY);
    ASSERT_GE(fd, 0);
    (void)::fdatasync(fd);
    (void)::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    ::close(fd);
  }
  const int fd = ::open(dir_.File("a.bin").c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  void* map = ::mmap(nullptr, a_bytes_.size(), PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  ASSERT_NE(map, MAP_FAILED);
  std::vector<unsigned char> pages((a_bytes_.size() + 4095) / 4096);
  ASSERT_EQ(::mincore(map, a_bytes_.size(), pages.data()), 0);
  ::munmap(map, a_bytes_.size());
  if (std::all_of(pages.begin(), pages.end(), [](unsigned char v) { return (v & 1) != 0; })) {
    GTEST_SKIP() << "this filesystem keeps the file in memory";
  }
  PinRecorder recorder;
  EXPECT_FALSE(tier_->PinResidentFiles(recorder.Pin(), recorder.Unpin()));
  EXPECT_TRUE(recorder.pinned.empty()) << "all files or none";
}

INSTANTIATE_TEST_SUITE_P(Modes, FileTierTest,
                         ::testing::Values(FileReadMode::kAuto, FileReadMode::kDirect,
                                           FileReadMode::kBuffered),
                         [](const ::testing::TestParamInfo<FileReadMode>& info) {
                           return std::string(FileReadModeName(info.param));
                         });

TEST(FileTierOptionsTest, RejectsBadOptions) {
  FileTierOptions options;
  options.alignment = 1000;
  EXPECT_EQ(FileTier::Create(options).status().code(), ErrorCode::kInvalidArgument);
  options = FileTierOptions();
  options.block_size = 5000;
  EXPECT_EQ(FileTier::Create(options).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(ParseFileReadMode("sometimes").status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(*ParseFileReadMode("direct"), FileReadMode::kDirect);
}

}  // namespace
}  // namespace tiercache
