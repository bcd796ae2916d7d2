// The typed conformance suite every Tier implementation passes.
//
// To run it against a tier, define a factory type with
//   static std::unique_ptr<tiercache::Tier> Make(uint64_t capacity);
// (returning nullptr makes the test skip, e.g. io_uring refused), then
//   INSTANTIATE_TYPED_TEST_SUITE_P(MyTier, TierConformance, ::testing::Types<MyFactory>);
#ifndef TIERCACHE_TESTS_TIERS_TIER_CONFORMANCE_H_
#define TIERCACHE_TESTS_TIERS_TIER_CONFORMANCE_H_

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "common/units.h"
#include "tiers/tier.h"

namespace tiercache::testing {

// Deterministic, position-dependent bytes so misplaced data is caught.
inline void FillPattern(unsigned char* p, uint64_t n, uint64_t seed) {
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (uint64_t i = 0; i < n; ++i) {
    if ((i & 7) == 0) x = x * 6364136223846793005ull + 1442695040888963407ull;
    p[i] = static_cast<unsigned char>(x >> ((i & 7) * 8));
  }
}

template <typename Factory>
class TierConformance : public ::testing::Test {
 protected:
  static constexpr uint64_t kCapacity = 320 * kMiB;

  void SetUp() override {
    tier_ = Factory::Make(kCapacity);
    if (!tier_) GTEST_SKIP() << "tier not available on this machine";
  }

  void RoundTrip(uint64_t bytes, uint64_t offset, uint64_t buffer_shift, uint64_t seed) {
    SCOPED_TRACE("bytes=" + std::to_string(bytes) + " offset=" + std::to_string(offset) +
                 " shift=" + std::to_string(buffer_shift));
    Result<Extent> extent = tier_->Allocate(offset + bytes);
    ASSERT_TRUE(extent.ok()) << extent.status().ToString();
    std::vector<unsigned char> in(bytes + buffer_shift), out(bytes + buffer_shift + 1, 0xEE);
    FillPattern(in.data() + buffer_shift, bytes, seed);
    ASSERT_TRUE(tier_->Write(*extent, offset, in.data() + buffer_shift, bytes).ok());
    ASSERT_TRUE(tier_->Read(*extent, offset, out.data() + buffer_shift, bytes).ok());
    ASSERT_EQ(0, std::memcmp(in.data() + buffer_shift, out.data() + buffer_shift, bytes));
    EXPECT_EQ(0xEE, out[bytes + buffer_shift]) << "read wrote past the end of the buffer";
    ASSERT_TRUE(tier_->Free(*extent).ok());
  }

  std::unique_ptr<Tier> tier_;
};

TYPED_TEST_SUITE_P(TierConformance);

TYPED_TEST_P(TierConformance, ReportsCapacityAndAccountsAllocations) {
  Tier& tier = *this->tier_;
  EXPECT_GE(tier.capacity(), this->kCapacity);
  EXPECT_EQ(0u, tier.used());
  Result<Extent> a = tier.Allocate(1);
  Result<Extent> b = tier.Allocate(3 * kMiB + 5);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_GE(tier.used(), 3 * kMiB + 6);
  EXPECT_TRUE(tier.Free(*a).ok());
  EXPECT_TRUE(tier.Free(*b).ok());
  EXPECT_EQ(0u, tier.used());
  TierStats stats = tier.stats();
  EXPECT_EQ(2u, stats.allocations);
  EXPECT_EQ(2u, stats.frees);
}

TYPED_TEST_P(TierConformance, RoundTripsSmallSizesAlignedAndUnaligned) {
  uint64_t seed = 1;
  for (uint64_t bytes : {1ull, 7ull, 511ull, 512ull, 4095ull, 4096ull, 4097ull, 65539ull}) {
    for (uint64_t offset : {0ull, 1ull, 4096ull, 4099ull}) {
      for (uint64_t shift : {0ull, 3ull}) {
        this->RoundTrip(bytes, offset, shift, seed++);
        if (this->HasFatalFailure()) return;
      }
    }
  }
}

TYPED_TEST_P(TierConformance, RoundTripsLargeSizes) {
  this->RoundTrip(1 * kMiB, 0, 0, 11);
  this->RoundTrip(16 * kMiB + 1, 4097, 1, 12);
  this->RoundTrip(64 * kMiB, 0, 0, 13);
  this->RoundTrip(256 * kMiB, 0, 0, 14);
  this->RoundTrip(256 * kMiB - 3, 5, 7, 15);
}

TYPED_TEST_P(TierConformance, PartialWritesLeaveNeighboursIntact) {
  Tier& tier = *this->tier_;
  const uint64_t n = 3 * 4096 + 100;
  Result<Extent> e = tier.Allocate(n);
  ASSERT_TRUE(e.ok());
  std::vector<unsigned char> base(n), patch(5000), out(n);
  FillPattern(base.data(), n, 21);
  FillPattern(patch.data(), patch.size(), 22);
  ASSERT_TRUE(tier.Write(*e, 0, base.data(), n).ok());
  ASSERT_TRUE(tier.Write(*e, 4000, patch.data(), patch.size()).ok());
  std::memcpy(base.data() + 4000, patch.data(), patch.size());
  ASSERT_TRUE(tier.Read(*e, 0, out.data(), n).ok());
  EXPECT_EQ(base, out);
  // Two neighbouring extents: writing one must not touch the other.
  Result<Extent> f = tier.Allocate(n);
  ASSERT_TRUE(f.ok());
  std::vector<unsigned char> other(n);
  FillPattern(other.data(), n, 23);
  ASSERT_TRUE(tier.Write(*f, 0, other.data(), n).ok());
  ASSERT_TRUE(tier.Read(*e, 0, out.data(), n).ok());
  EXPECT_EQ(base, out);
  EXPECT_TRUE(tier.Free(*e).ok());
  EXPECT_TRUE(tier.Free(*f).ok());
}

TYPED_TEST_P(TierConformance, AsyncRoundTripCallsBackOncePerRequest) {
  Tier& tier = *this->tier_;
  constexpr int kRequests = 64;
  const uint64_t n = 64 * kKiB + 17;
  std::vector<Extent> extents;
  std::vector<std::vector<unsigned char>> in(kRequests), out(kRequests);
  for (int i = 0; i < kRequests; ++i) {
    Result<Extent> e = tier.Allocate(n);
    ASSERT_TRUE(e.ok());
    extents.push_back(*e);
    in[i].resize(n);
    out[i].assign(n, 0);
    FillPattern(in[i].data(), n, 100 + i);
  }
  std::mutex mutex;
  std::condition_variable cv;
  int completed = 0, failed = 0;
  auto done = [&](Status s) {
    std::lock_guard<std::mutex> lock(mutex);
    ++completed;
    if (!s.ok()) ++failed;
    cv.notify_all();
  };
  auto wait_for = [&](int count) {
    std::unique_lock<std::mutex> lock(mutex);
    return cv.wait_for(lock, std::chrono::seconds(60), [&] { return completed >= count; });
  };
  for (int i = 0; i < kRequests; ++i) tier.WriteAsync(extents[i], 0, in[i].data(), n, done);
  ASSERT_TRUE(wait_for(kRequests));
  for (int i = 0; i < kRequests; ++i) tier.ReadAsync(extents[i], 0, out[i].data(), n, done);
  ASSERT_TRUE(wait_for(2 * kRequests));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(2 * kRequests, completed);  // no duplicate callbacks
  EXPECT_EQ(0, failed);
  for (int i = 0; i < kRequests; ++i) EXPECT_EQ(in[i], out[i]) << "request " << i;
  for (const Extent& e : extents) EXPECT_TRUE(tier.Free(e).ok());
}

TYPED_TEST_P(TierConformance, RejectsBadArgumentsWithoutLosingData) {
  Tier& tier = *this->tier_;
  const uint64_t n = 8192;
  Result<Extent> e = tier.Allocate(n);
  ASSERT_TRUE(e.ok());
  std::vector<unsigned char> data(n), out(n + 1);
  FillPattern(data.data(), n, 31);
  ASSERT_TRUE(tier.Write(*e, 0, data.data(), n).ok());

  EXPECT_EQ(ErrorCode::kInvalidArgument, tier.Allocate(0).status().code());
  EXPECT_EQ(ErrorCode::kOutOfSpace, tier.Allocate(tier.capacity() + 1).status().code());
  EXPECT_EQ(ErrorCode::kInvalidArgument, tier.Read(*e, 1, out.data(), n).code());
  EXPECT_EQ(ErrorCode::kInvalidArgument, tier.Write(*e, n + 1, data.data(), 1).code());
  EXPECT_EQ(ErrorCode::kInvalidArgument, tier.Read(*e, 0, nullptr, 1).code());
  EXPECT_EQ(ErrorCode::kInvalidArgument,
            tier.Read(Extent{e->offset + 4096, 10}, 0, out.data(), 10).code());
  Status async_status;
  tier.ReadAsync(*e, 0, nullptr, 4, [&](Status s) { async_status = s; });
  EXPECT_EQ(ErrorCode::kInvalidArgument, async_status.code());
  EXPECT_EQ(ErrorCode::kInvalidArgument, tier.Free(Extent{e->offset + 4096, 10}).code());

  ASSERT_TRUE(tier.Read(*e, 0, out.data(), n).ok());
  EXPECT_EQ(0, std::memcmp(data.data(), out.data(), n));
  EXPECT_TRUE(tier.Free(*e).ok());
  EXPECT_EQ(ErrorCode::kInvalidArgument, tier.Free(*e).code()) << "double free";
  EXPECT_EQ(ErrorCode::kInvalidArgument, tier.Read(*e, 0, out.data(), 1).code())
      << "read after free";
}

TYPED_TEST_P(TierConformance, FillingTheTierFailsCleanly) {
  Tier& tier = *this->tier_;
  std::vector<Extent> extents;
  const uint64_t piece = 32 * kMiB;
  for (;;) {
    Result<Extent> e = tier.Allocate(piece);
    if (!e.ok()) {
      EXPECT_EQ(ErrorCode::kOutOfSpace, e.status().code());
      break;
    }
    extents.push_back(*e);
    ASSERT_LE(extents.size() * piece, tier.capacity());
  }
  EXPECT_GE(extents.size() * piece + piece, this->kCapacity);
  std::vector<unsigned char> data(4096), out(4096);
  FillPattern(data.data(), data.size(), 41);
  ASSERT_TRUE(tier.Write(extents.back(), piece - 4096, data.data(), 4096).ok());
  ASSERT_TRUE(tier.Read(extents.back(), piece - 4096, out.data(), 4096).ok());
  EXPECT_EQ(data, out);
  for (const Extent& e : extents) ASSERT_TRUE(tier.Free(e).ok());
  EXPECT_EQ(0u, tier.used());
  EXPECT_GE(tier.stats().allocation_failures, 1u);
}

TYPED_TEST_P(TierConformance, ConcurrentThreadsKeepTheirOwnBytes) {
  Tier& tier = *this->tier_;
  std::atomic<int> errors{0};
  auto worker = [&](int id) {
    std::mt19937_64 rng(id);
    for (int round = 0; round < 40; ++round) {
      const uint64_t n = 1 + rng() % (256 * kKiB);
      const uint64_t offset = rng() % 5000;
      Result<Extent> e = tier.Allocate(n + offset);
      if (!e.ok()) { ++errors; continue; }
      std::vector<unsigned char> in(n), out(n);
      FillPattern(in.data(), n, id * 1000 + round);
      if (!tier.Write(*e, offset, in.data(), n).ok()) ++errors;
      if (!tier.Read(*e, offset, out.data(), n).ok()) ++errors;
      if (in != out) ++errors;
      if (!tier.Free(*e).ok()) ++errors;
    }
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) threads.emplace_back(worker, i + 1);
  for (auto& t : threads) t.join();
  EXPECT_EQ(0, errors.load());
  EXPECT_EQ(0u, tier.used());
  TierStats stats = tier.stats();
  EXPECT_EQ(160u, stats.reads);
  EXPECT_EQ(160u, stats.writes);
  EXPECT_EQ(0u, stats.read_errors + stats.write_errors);
}

REGISTER_TYPED_TEST_SUITE_P(TierConformance, ReportsCapacityAndAccountsAllocations,
                            RoundTripsSmallSizesAlignedAndUnaligned, RoundTripsLargeSizes,
                            PartialWritesLeaveNeighboursIntact,
                            AsyncRoundTripCallsBackOncePerRequest,
                            RejectsBadArgumentsWithoutLosingData, FillingTheTierFailsCleanly,
                            ConcurrentThreadsKeepTheirOwnBytes);

}  // namespace tiercache::testing

#endif  // TIERCACHE_TESTS_TIERS_TIER_CONFORMANCE_H_
