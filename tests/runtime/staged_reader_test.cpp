// StagedReader: pieces come back in order, checked, however the tier's
// completions arrive (here: each on its own thread after a random delay, so
// out of order); no more reads are in flight than the depth; a bad piece is
// re-read; a failing one ends the reader with its error.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <random>
#include <thread>

#include "runtime/checksum.h"
#include "runtime/staged_reader.h"
#include "tests/runtime/runtime_test_util.h"

namespace tiercache {
namespace {

using testing::FaultyTier;
using testing::Pattern;

// FaultyTier whose async reads complete later, on threads of their own.
class SlowAsyncTier final : public FaultyTier {
 public:
  using FaultyTier::FaultyTier;
  ~SlowAsyncTier() override {
    for (std::thread& t : threads_) t.join();
  }
  std::atomic<int> in_flight{0}, most_in_flight{0};

 protected:
  void ReadAsyncImpl(uint64_t address, void* dst, uint64_t bytes, IoCallback done) override {
    const int now = ++in_flight;
    int seen = most_in_flight.load();
    while (now > seen && !most_in_flight.compare_exchange_weak(seen, now)) {
    }
    const int delay_us = static_cast<int>(rng_() % 3000);
    threads_.emplace_back([this, address, dst, bytes, done = std::move(done), delay_us] {
      std::this_thread::sleep_for(std::chrono::microseconds(delay_us));
      Status s = ReadImpl(address, dst, bytes);
      --in_flight;
      done(std::move(s));
    });
  }

 private:
  std::mt19937 rng_{7};
  std::vector<std::thread> threads_;
};

struct ReaderRig {
  std::shared_ptr<EmulatedDevice> device = std::make_shared<EmulatedDevice>(EmulatedDeviceOptions{});
  std::unique_ptr<StagingPool> pool;
  SlowAsyncTier tier{"slow", 4 * kMiB};
  Extent extent;
  std::vector<unsigned char> data = Pattern(1 * kMiB + 1234, 3);
  std::vector<uint32_t> sums;
  static constexpr uint64_t kChunk = 64 * kKiB;

  ReaderRig() {
    pool = StagingPool::Create(device, nullptr, false, kChunk, 4).value();
    extent = tier.Allocate(data.size()).value();
    EXPECT_TRUE(tier.Write(extent, 0, data.data(), data.size()).ok());
    for (uint64_t o = 0; o < data.size(); o += kChunk) {
      sums.push_back(ChecksumBytes(data.data() + o, std::min(kChunk, data.size() - o)));
    }
  }
  StagedReader Reader(int depth, const std::vector<uint32_t>* checksums, std::vector<uint32_t>* fill,
                      std::atomic<int>* rereads) {
    return StagedReader(pool.get(), &tier, extent, data.size(), kChunk, depth, checksums, fill,
                        [this, rereads](uint64_t offset, unsigned char* dst, uint64_t n, uint64_t) {
                          ++*rereads;
                          return tier.Read(extent, offset, dst, n);
                        });
  }
};

TEST(StagedReaderTest, PiecesArriveInOrderWithTheWindowFull) {
  ReaderRig rig;
  std::atomic<int> rereads{0};
  std::vector<uint32_t> fill;
  {
    StagedReader reader = rig.Reader(4, nullptr, &fill, &rereads);
    uint64_t expect_offset = 0, index = 0;
    while (!reader.finished()) {
      Result<StagedReader::Piece> piece = reader.Next();
      ASSERT_TRUE(piece.ok()) << piece.status().ToString();
      EXPECT_EQ(expect_offset, piece->offset);
      EXPECT_EQ(index++, piece->index);
      EXPECT_EQ(0, std::memcmp(piece->slot->data, rig.data.data() + piece->offset, piece->bytes));
      expect_offset += piece->bytes;
      reader.Done(*piece, false);
    }
    EXPECT_EQ(rig.data.size(), expect_offset);
  }
  EXPECT_EQ(0, rereads.load());
  EXPECT_EQ(rig.sums, fill);  // filled in order
  EXPECT_GE(rig.tier.most_in_flight.load(), 2);  // reads overlapped
  EXPECT_LE(rig.tier.most_in_flight.load(), 4);
}

TEST(StagedReaderTest, BadPiecesAreRereadAndAFailingOneEndsTheReader) {
  ReaderRig rig;
  std::atomic<int> rereads{0};
  rig.tier.FailNextReads(2, FaultAction::kCorruptRead);  // the first two async reads
  {
    StagedReader reader = rig.Reader(3, &rig.sums, nullptr, &rereads);
    while (!reader.finished()) {
      Result<StagedReader::Piece> piece = reader.Next();
      ASSERT_TRUE(piece.ok()) << piece.status().ToString();
      EXPECT_EQ(0, std::memcmp(piece->slot->data, rig.data.data() + piece->offset, piece->bytes));
      reader.Done(*piece, false);
    }
  }
  EXPECT_EQ(2, rereads.load());
  // Every read fails: the first piece's error ends it; the destructor waits
  // for the reads still in flight.
  rig.tier.FailNextReads(-1, FaultAction::kIoError);
  StagedReader reader = rig.Reader(3, &rig.sums, nullptr, &rereads);
  Result<StagedReader::Piece> piece = reader.Next();
  EXPECT_EQ(ErrorCode::kIoError, piece.status().code());
  EXPECT_TRUE(reader.finished());
}

}  // namespace
}  // namespace tiercache
