// The fault layer itself: how rules match and count, and how a tier acts
// out each action through its own Read/Write (here a MemoryTier).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <vector>

#include "common/fault_injector.h"
#include "common/units.h"
#include "tiers/memory_tier.h"

namespace tiercache {
namespace {

FaultRule Rule(FaultSite site, FaultAction action, std::string target = "", uint64_t skip = 0,
               int64_t count = 1) {
  FaultRule rule;
  rule.site = site;
  rule.action = action;
  rule.target = std::move(target);
  rule.skip = skip;
  rule.count = count;
  return rule;
}

TEST(FaultInjectorTest, RulesMatchSiteAndTargetSkipThenCount) {
  FaultInjector faults;
  faults.Add(Rule(FaultSite::kTierRead, FaultAction::kIoError, "nvme", 2, 3));
  EXPECT_FALSE(faults.Next(FaultSite::kTierWrite, "nvme"));  // other site
  EXPECT_FALSE(faults.Next(FaultSite::kTierRead, "pmem"));   // other target
  EXPECT_FALSE(faults.Next(FaultSite::kTierRead, "nvme"));   // skipped
  EXPECT_FALSE(faults.Next(FaultSite::kTierRead, "nvme"));   // skipped
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(FaultAction::kIoError, faults.Next(FaultSite::kTierRead, "nvme").action) << i;
  }
  EXPECT_FALSE(faults.Next(FaultSite::kTierRead, "nvme"));  // spent
  EXPECT_EQ(3u, faults.injected(FaultSite::kTierRead));
  EXPECT_EQ(0u, faults.injected(FaultSite::kTierWrite));
}

TEST(FaultInjectorTest, ProbabilityIsRepeatableForASeed) {
  auto run = [](uint64_t seed) {
    FaultInjector faults(seed);
    FaultRule rule = Rule(FaultSite::kTierRead, FaultAction::kIoError, "", 0, -1);
    rule.probability = 0.25;
    faults.Add(rule);
    std::vector<bool> fired;
    for (int i = 0; i < 400; ++i) fired.push_back(bool(faults.Next(FaultSite::kTierRead, "x")));
    return fired;
  };
  const std::vector<bool> a = run(3), b = run(3), c = run(4);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  const long hits = std::count(a.begin(), a.end(), true);
  EXPECT_GT(hits, 60);
  EXPECT_LT(hits, 140);
}

class TierFaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tier_ = MemoryTier::Create("mem", 1 * kMiB).value();
    tier_->SetFaultInjector(&faults_);
    extent_ = tier_->Allocate(data_.size()).value();
    for (size_t i = 0; i < data_.size(); ++i) data_[i] = static_cast<unsigned char>(i * 7 + 1);
    ASSERT_TRUE(tier_->Write(extent_, 0, data_.data(), data_.size()).ok());
  }
  void TearDown() override { tier_->SetFaultInjector(nullptr); }
  std::vector<unsigned char> ReadAll(Status* status) {
    std::vector<unsigned char> out(data_.size());
    *status = tier_->Read(extent_, 0, out.data(), out.size());
    return out;
  }

  FaultInjector faults_;
  std::unique_ptr<MemoryTier> tier_;
  Extent extent_;
  std::vector<unsigned char> data_ = std::vector<unsigned char>(9000);
};

TEST_F(TierFaultTest, ReadFaultsActOutWhatTheyStandFor) {
  Status s;
  faults_.Add(Rule(FaultSite::kTierRead, FaultAction::kIoError));
  ReadAll(&s);
  EXPECT_EQ(ErrorCode::kIoError, s.code());
  EXPECT_EQ(1u, tier_->stats().read_errors);

  faults_.Add(Rule(FaultSite::kTierRead, FaultAction::kShortRead));
  std::vector<unsigned char> got = ReadAll(&s);
  EXPECT_TRUE(s.ok());
  EXPECT_TRUE(std::equal(data_.begin(), data_.begin() + 4500, got.begin()));
  EXPECT_FALSE(got == data_);

  faults_.Add(Rule(FaultSite::kTierRead, FaultAction::kCorruptRead));
  got = ReadAll(&s);
  EXPECT_TRUE(s.ok());
  EXPECT_FALSE(got == data_);
  EXPECT_TRUE(ReadAll(&s) == data_) << "a corrupt read leaves the medium alone";

  faults_.Add(Rule(FaultSite::kTierRead, FaultAction::kCorruptPage));
  got = ReadAll(&s);
  EXPECT_FALSE(got == data_);
  EXPECT_TRUE(ReadAll(&s) == got) << "a bad page stays bad";
}

TEST_F(TierFaultTest, WriteAndAllocateFaults) {
  std::vector<unsigned char> fresh(data_.size(), 0xAB);
  faults_.Add(Rule(FaultSite::kTierWrite, FaultAction::kTornWrite));
  EXPECT_EQ(ErrorCode::kIoError, tier_->Write(extent_, 0, fresh.data(), fresh.size()).code());
  Status s;
  std::vector<unsigned char> got = ReadAll(&s);
  EXPECT_EQ(0xAB, got[0]);                   // the first half landed
  EXPECT_EQ(data_.back(), got.back());       // the rest did not

  faults_.Add(Rule(FaultSite::kTierWrite, FaultAction::kOutOfSpace));
  EXPECT_EQ(ErrorCode::kOutOfSpace, tier_->Write(extent_, 0, fresh.data(), 10).code());
  faults_.Add(Rule(FaultSite::kTierAllocate, FaultAction::kOutOfSpace));
  const uint64_t used = tier_->used();
  EXPECT_EQ(ErrorCode::kOutOfSpace, tier_->Allocate(4096).status().code());
  EXPECT_EQ(used, tier_->used());
  EXPECT_TRUE(tier_->Allocate(4096).ok()) << "the rule fired once";
}

TEST_F(TierFaultTest, DelayIsSpentInTheCallAndCounted) {
  FaultRule rule = Rule(FaultSite::kTierRead, FaultAction::kDelay);
  rule.delay = std::chrono::milliseconds(20);
  faults_.Add(rule);
  const auto start = std::chrono::steady_clock::now();
  Status s;
  EXPECT_TRUE(ReadAll(&s) == data_);
  EXPECT_TRUE(s.ok());
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(20));
  EXPECT_GE(tier_->stats().read_nanoseconds, 20'000'000u);
}

TEST_F(TierFaultTest, AsyncCallsActOutFaultsThroughTheCallback) {
  faults_.Add(Rule(FaultSite::kTierRead, FaultAction::kIoError));
  std::vector<unsigned char> out(100);
  Status got = Status::Ok();
  int calls = 0;
  tier_->ReadAsync(extent_, 0, out.data(), out.size(), [&](Status s) { got = s; ++calls; });
  EXPECT_EQ(1, calls);
  EXPECT_EQ(ErrorCode::kIoError, got.code());
  tier_->WriteAsync(extent_, 0, out.data(), out.size(), [&](Status s) { got = s; ++calls; });
  EXPECT_EQ(2, calls);
  EXPECT_TRUE(got.ok());
}

TEST_F(TierFaultTest, DetachedTiersSeeNoFaults) {
  faults_.Add(Rule(FaultSite::kTierRead, FaultAction::kIoError, "", 0, -1));
  tier_->SetFaultInjector(nullptr);
  Status s;
  EXPECT_TRUE(ReadAll(&s) == data_);
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(0u, faults_.injected_total());
}

}  // namespace
}  // namespace tiercache
