// Every fault the fault layer can inject, driven through a whole Runtime
// (DRAM, a PMEM file and an NVMe file over the emulated device): each call
// ends in success or in the error the fault stands for, never a crash; after
// the faults stop, an integrity check reads every block from its home again
// and finds each one intact (a block whose medium was damaged is reported
// kCorruption every time, never served), and the runtime serves the rest.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "alloc/emulated_device.h"
#include "alloc/fault_injecting_device.h"
#include "common/fault_injector.h"
#include "common/log.h"
#include "runtime/runtime.h"
#include "tests/runtime/runtime_test_util.h"
#include "tiers/nvme_tier.h"

namespace tiercache {
namespace {

using testing::Pattern;

constexpr const char* kTierNames[] = {"dram", "pmem", "nvme"};
constexpr int kBlocksPerTier = 4;

struct Block {
  BlockId id;
  std::string tier;
  std::vector<unsigned char> data;
};

struct Outcome {
  int ok = 0;
  std::map<ErrorCode, int> errors;
};

class FaultRig {
 public:
  explicit FaultRig(uint64_t dram_bytes = 8 * kMiB) {
    char pattern[] = "/tmp/tiercache-faults-XXXXXX";
    if (mkdtemp(pattern) != nullptr) dir_ = pattern;
    RuntimeConfig config;
    config.gpu_budget_bytes = 6 * kMiB;
    config.gpu_cache_bytes = 2 * kMiB;  // a third of the blocks: constant eviction
    config.dram_bytes = dram_bytes;
    config.pmem_path = dir_;
    config.pmem_bytes = 16 * kMiB;
    config.nvme_path = dir_;
    config.nvme_bytes = 32 * kMiB;
    config.chunk_bytes = 64 * kKiB;
    config.staging_buffers = 3;
    config.demote_on_evict = false;  // evicted blocks come back from their home
    config.acquire_wait_ms = 2000;
    EmulatedDeviceOptions options;
    options.total_memory = 1 * kGiB;
    emulated_ = std::make_shared<EmulatedDevice>(options);
    device_ = std::make_shared<FaultInjectingDevice>(emulated_, faults_);
    Result<std::unique_ptr<Runtime>> runtime = Runtime::Create(config, device_);
    status_ = runtime.status();
    if (!runtime.ok()) return;
    runtime_ = std::move(*runtime);
    for (const char* name : kTierNames) {
      if (Tier* tier = runtime_->tier(name); tier != nullptr) tier->SetFaultInjector(faults_.get());
    }
    stream_ = device_->CreateStream().value();
  }
  ~FaultRig() {
    faults_->Clear();
    if (runtime_ != nullptr) {
      (void)device_->StreamSynchronize(stream_);
      (void)runtime_->cache().Drain();
      for (const char* name : kTierNames) {
        if (Tier* tier = runtime_->tier(name); tier != nullptr) tier->SetFaultInjector(nullptr);
      }
      (void)device_->DestroyStream(stream_);
      runtime_.reset();
    }
    std::error_code ignored;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ignored);
  }

  const Status& status() const { return status_; }
  Runtime& runtime() { return *runtime_; }
  FaultInjector& faults() { return *faults_; }
  Tier& tier(const std::string& name) { return *runtime_->tier(name); }
  std::vector<Block>& blocks() { return blocks_; }

  void RegisterBlocks() {
    for (const char* name : kTierNames) {
      for (int i = 0; i < kBlocksPerTier; ++i) {
        Block b{0, name, Pattern(150 * kKiB + 4099 * i + 7, blocks_.size() + 1)};
        Result<BlockId> id = runtime_->cache().RegisterFromBuffer(
            std::string(name) + std::to_string(i), b.data.data(), b.data.size(), &tier(name));
        ASSERT_TRUE(id.ok()) << id.status().ToString();
        b.id = *id;
        blocks_.push_back(std::move(b));
      }
    }
  }

  // Acquires block b, compares every byte, releases. A failed acquire must
  // leave the block unpinned and off the GPU.
  Status Check(const Block& b) {
    Result<void*> ptr = runtime_->cache().Acquire(b.id, stream_);
    if (!ptr.ok()) {
      Result<BlockInfo> info = runtime_->cache().Info(b.id);
      EXPECT_TRUE(info.ok());
      EXPECT_EQ(0u, info->pins) << b.tier;
      return ptr.status();
    }
    std::vector<unsigned char> host(b.data.size());
    EXPECT_TRUE(device_->CopyAsync(host.data(), *ptr, host.size(), CopyKind::kDeviceToHost,
                                   stream_).ok());
    EXPECT_TRUE(device_->StreamSynchronize(stream_).ok());
    EXPECT_TRUE(host == b.data) << "block " << b.id << " on " << b.tier << " came back altered";
    return runtime_->cache().Release(b.id, stream_);
  }

  // Rounds of: every block acquired and checked, a new block registered on
  // each tier, an activation saved and restored; then everything evicted and
  // the pool's free memory handed back to the device.
  Outcome Workload(int rounds) {
    Outcome out;
    auto count = [&](const Status& s) { s.ok() ? ++out.ok : ++out.errors[s.code()]; };
    for (int round = 0; round < rounds; ++round) {
      for (const Block& b : blocks_) count(Check(b));
      for (const char* name : kTierNames) count(RegisterOne(name, round));
      count(SaveAndRestore(300 * kKiB + round));
      EXPECT_TRUE(runtime_->cache().Drain().ok());
      for (const Block& b : blocks_) (void)runtime_->cache().Evict(b.id);
      (void)runtime_->allocator().Trim();  // the next round asks the device again
    }
    return out;
  }

  // Faults off, every block read again from its home (evicted first).
  // Returns the blocks that failed, with their codes.
  std::map<BlockId, ErrorCode> IntegrityCheck() {
    faults_->Clear();
    EXPECT_TRUE(runtime_->cache().Drain().ok());
    std::map<BlockId, ErrorCode> failed;
    for (const Block& b : blocks_) {
      (void)runtime_->cache().Evict(b.id);
      Status s = Check(b);
      if (!s.ok()) failed[b.id] = s.code();
    }
    return failed;
  }

 private:
  // A block registered while faults may fire: on failure nothing of it may
  // remain (no name, no space held in the tier).
  Status RegisterOne(const std::string& tier_name, int round) {
    Tier& home = tier(tier_name);
    const uint64_t used_before = home.used();
    const std::string name = "extra-" + tier_name + std::to_string(extra_++);
    Block b{0, tier_name, Pattern(90 * kKiB + 13 * round, 1000 + blocks_.size())};
    Result<BlockId> id =
        runtime_->cache().RegisterFromBuffer(name, b.data.data(), b.data.size(), &home);
    if (!id.ok()) {
      EXPECT_EQ(ErrorCode::kNotFound, runtime_->cache().FindBlock(name).status().code()) << name;
      EXPECT_EQ(used_before, home.used()) << name << ": a failed registration kept space";
      return id.status();
    }
    b.id = *id;
    blocks_.push_back(std::move(b));
    return Status::Ok();
  }

  Status SaveAndRestore(uint64_t bytes) {
    ActivationStore* store = runtime_->activations();
    if (store == nullptr) return Status::Ok();
    const std::vector<unsigned char> data = Pattern(bytes, 77 + bytes);
    TC_ASSIGN_OR_RETURN(void* ptr, runtime_->allocator().Allocate(bytes, stream_));
    TC_RETURN_IF_ERROR(device_->CopyAsync(ptr, data.data(), bytes, CopyKind::kHostToDevice,
                                          stream_));
    TC_RETURN_IF_ERROR(device_->StreamSynchronize(stream_));  // `data` is a local
    Result<ActivationHandle> handle = store->Save(ptr, bytes, stream_);
    if (!handle.ok()) {
      (void)runtime_->allocator().Free(ptr, stream_);
      return handle.status();
    }
    TC_ASSIGN_OR_RETURN(void* back, store->Restore(*handle, stream_));
    std::vector<unsigned char> host(bytes);
    Status s = device_->CopyAsync(host.data(), back, bytes, CopyKind::kDeviceToHost, stream_);
    if (s.ok()) s = device_->StreamSynchronize(stream_);
    EXPECT_TRUE(host == data) << "a restored activation came back altered";
    (void)runtime_->allocator().Free(back, stream_);
    return s;
  }

  std::string dir_;
  std::shared_ptr<FaultInjector> faults_ = std::make_shared<FaultInjector>(7);
  std::shared_ptr<EmulatedDevice> emulated_;
  std::shared_ptr<FaultInjectingDevice> device_;
  Status status_;
  std::unique_ptr<Runtime> runtime_;
  Stream stream_ = nullptr;
  std::vector<Block> blocks_;
  int extra_ = 0;  // names registrations uniquely
};

struct Scenario {
  const char* name;
  std::vector<FaultRule> rules;
  std::set<ErrorCode> allowed;  // what a faulted call may return
  // Armed before the runtime first asks for device memory (the pool keeps
  // what it got, so later rounds might never ask again).
  bool from_the_start = false;
};

FaultRule Rule(FaultSite site, FaultAction action, const char* target, double probability,
               int64_t count = -1) {
  FaultRule rule;
  rule.site = site;
  rule.action = action;
  rule.target = target;
  rule.count = count;
  rule.probability = probability;
  return rule;
}

std::vector<Scenario> Scenarios() {
  using enum FaultSite;
  using enum FaultAction;
  return {
      {"IoErrorOnNvmeReads", {Rule(kTierRead, kIoError, "nvme", 0.3)}, {ErrorCode::kIoError}},
      {"IoErrorOnPmemReads", {Rule(kTierRead, kIoError, "pmem", 0.3)}, {ErrorCode::kIoError}},
      {"IoErrorOnWrites", {Rule(kTierWrite, kIoError, "", 0.3)}, {ErrorCode::kIoError}},
      {"ShortReads",
       {Rule(kTierRead, kShortRead, "nvme", 0.3), Rule(kTierRead, kShortRead, "pmem", 0.3)},
       {ErrorCode::kCorruption}},
      {"CorruptReads",
       {Rule(kTierRead, kCorruptRead, "nvme", 0.3), Rule(kTierRead, kCorruptRead, "pmem", 0.3)},
       {ErrorCode::kCorruption}},
      {"FullDisk",
       {Rule(kTierAllocate, kOutOfSpace, "nvme", 1.0), Rule(kTierWrite, kOutOfSpace, "nvme", 1.0),
        Rule(kTierAllocate, kOutOfSpace, "pmem", 0.5)},
       {ErrorCode::kOutOfSpace}},
      {"TornWrites",
       {Rule(kTierWrite, kTornWrite, "nvme", 0.5), Rule(kTierWrite, kTornWrite, "pmem", 0.5)},
       {ErrorCode::kIoError}},
      {"DeviceAllocationFailures",
       {Rule(kDeviceAllocate, kOutOfMemory, "", 1.0, 2), Rule(kDeviceAllocate, kOutOfMemory, "", 0.5)},
       {ErrorCode::kOutOfMemory}, true},
      {"SlowTiers",
       {Rule(kTierRead, kDelay, "nvme", 1.0), Rule(kTierRead, kDelay, "pmem", 1.0)}, {}},
  };
}

class FaultScenarioTest : public ::testing::TestWithParam<Scenario> {};

TEST_P(FaultScenarioTest, EveryCallSucceedsOrFailsCleanlyAndNothingIsLost) {
  const Scenario& scenario = GetParam();
  FaultRig rig;
  ASSERT_TRUE(rig.status().ok()) << rig.status().ToString();
  auto arm = [&] {
    for (FaultRule rule : scenario.rules) {
      if (rule.action == FaultAction::kDelay) rule.delay = std::chrono::microseconds(2000);
      rig.faults().Add(rule);
    }
  };
  if (scenario.from_the_start) arm();
  ASSERT_NO_FATAL_FAILURE(rig.RegisterBlocks());
  if (!scenario.from_the_start) {
    ASSERT_TRUE(rig.Workload(1).errors.empty()) << "faults are not armed yet";
    arm();
  }
  const Outcome outcome = rig.Workload(3);
  const uint64_t injected = rig.faults().injected_total();
  EXPECT_GT(injected, 0u) << "the scenario never reached its seam";
  for (const auto& [code, n] : outcome.errors) {
    EXPECT_TRUE(scenario.allowed.count(code)) << n << " call(s) failed with "
                                              << ErrorCodeName(code);
  }
  EXPECT_GT(outcome.ok, 0) << "the runtime served nothing while faults fired";
  std::printf("[ %s ] %llu faults injected; %d calls ok, %d failed cleanly\n", scenario.name,
              static_cast<unsigned long long>(injected), outcome.ok,
              [&] { int n = 0; for (auto& [c, k] : outcome.errors) n += k; return n; }());

  EXPECT_TRUE(rig.IntegrityCheck().empty()) << "a block was lost or corrupted";
  EXPECT_TRUE(rig.Workload(1).errors.empty()) << "the runtime did not recover";
}

INSTANTIATE_TEST_SUITE_P(Faults, FaultScenarioTest, ::testing::ValuesIn(Scenarios()),
                         [](const auto& info) { return std::string(info.param.name); });

// A bad PMEM page damages the only copy of one block: that block is reported
// as corrupt on every acquire, never served, and every other block is.
TEST(FaultInjectionTest, ACorruptedPmemPageCostsOnlyItsBlock) {
  FaultRig rig;
  ASSERT_TRUE(rig.status().ok()) << rig.status().ToString();
  ASSERT_NO_FATAL_FAILURE(rig.RegisterBlocks());
  rig.faults().Add(Rule(FaultSite::kTierRead, FaultAction::kCorruptPage, "pmem", 1.0, 1));
  const Outcome outcome = rig.Workload(1);
  EXPECT_EQ(1u, rig.faults().injected_total());
  for (const auto& [code, n] : outcome.errors) {
    EXPECT_EQ(ErrorCode::kCorruption, code) << n << " x " << ErrorCodeName(code);
  }
  const std::map<BlockId, ErrorCode> failed = rig.IntegrityCheck();
  ASSERT_EQ(1u, failed.size());
  EXPECT_EQ(ErrorCode::kCorruption, failed.begin()->second);
  EXPECT_EQ(1u, rig.IntegrityCheck().size()) << "the damaged block must fail again, not pass";
}

// Pinning refused by the driver: a runtime that needs a pinned DRAM tier
// says so and opens nothing; without a DRAM tier the staging ring runs
// unpinned (a recorded fallback) and every block is served.
TEST(FaultInjectionTest, RefusedPinningIsAClearErrorOrAFallback) {
  auto faults = std::make_shared<FaultInjector>();
  faults->Add(Rule(FaultSite::kDeviceRegisterHost, FaultAction::kRefuse, "", 1.0));
  EmulatedDeviceOptions options;
  options.total_memory = 1 * kGiB;
  auto device = std::make_shared<FaultInjectingDevice>(
      std::make_shared<EmulatedDevice>(options), faults);
  RuntimeConfig config;
  config.dram_bytes = 4 * kMiB;
  Result<std::unique_ptr<Runtime>> refused = Runtime::Create(config, device);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(ErrorCode::kPermissionDenied, refused.status().code());
  EXPECT_NE(std::string::npos, refused.status().message().find("pinning")) << refused.status().ToString();

  char dir[] = "/tmp/tiercache-faults-XXXXXX";
  ASSERT_NE(nullptr, mkdtemp(dir));
  config.dram_bytes = 0;
  config.nvme_path = dir;
  config.nvme_bytes = 8 * kMiB;
  config.chunk_bytes = 64 * kKiB;
  {
    auto runtime = Runtime::Create(config, device);
    ASSERT_TRUE(runtime.ok()) << runtime.status().ToString();
    const auto data = Pattern(700 * kKiB + 3, 5);
    BlockCache& cache = (*runtime)->cache();
    BlockId id = cache.RegisterFromBuffer("b", data.data(), data.size(),
                                          (*runtime)->tier("nvme")).value();
    Stream stream = device->CreateStream().value();
    void* ptr = cache.Acquire(id, stream).value();
    std::vector<unsigned char> host(data.size());
    ASSERT_TRUE(device->CopyAsync(host.data(), ptr, host.size(), CopyKind::kDeviceToHost,
                                  stream).ok());
    ASSERT_TRUE(device->StreamSynchronize(stream).ok());
    EXPECT_TRUE(host == data);
    ASSERT_TRUE(cache.Release(id, stream).ok());
    ASSERT_TRUE(cache.Drain().ok());
    ASSERT_TRUE(device->DestroyStream(stream).ok());
  }
  bool fallback = false;
  for (const FallbackEvent& f : Fallbacks()) fallback |= f.name == "pinned_host";
  EXPECT_TRUE(fallback);
  std::filesystem::remove_all(dir);
}

// io_uring refused at set-up: the NVMe tier runs on the pread/pwrite pool,
// records the fallback, and moves bytes intact.
TEST(FaultInjectionTest, RefusedIoUringFallsBackToTheThreadPool) {
#if !defined(TIERCACHE_HAVE_URING)
  GTEST_SKIP() << "built without liburing: the thread pool is the only engine";
#else
  char dir[] = "/tmp/tiercache-faults-XXXXXX";
  ASSERT_NE(nullptr, mkdtemp(dir));
  FaultInjector faults;
  faults.Add(Rule(FaultSite::kIoUringSetup, FaultAction::kRefuse, "", 1.0));
  NvmeTierOptions options;
  options.path = std::string(dir) + "/tier.nvme";
  options.capacity = 4 * kMiB;
  options.io.kind = IoEngineKind::kUring;
  options.io.faults = &faults;
  {
    auto tier = NvmeTier::Create(options);
    ASSERT_TRUE(tier.ok()) << tier.status().ToString();
    EXPECT_EQ(IoEngineKind::kThreads, (*tier)->engine_kind());
    EXPECT_EQ(1u, faults.injected(FaultSite::kIoUringSetup));
    const auto data = Pattern(300 * kKiB + 11, 9);
    Extent e = (*tier)->Allocate(data.size()).value();
    ASSERT_TRUE((*tier)->Write(e, 0, data.data(), data.size()).ok());
    std::vector<unsigned char> back(data.size());
    ASSERT_TRUE((*tier)->Read(e, 0, back.data(), back.size()).ok());
    EXPECT_TRUE(back == data);
  }
  bool fallback = false;
  for (const FallbackEvent& f : Fallbacks()) fallback |= f.name == "nvme.io_engine";
  EXPECT_TRUE(fallback);
  std::filesystem::remove_all(dir);
#endif
}

}  // namespace
}  // namespace tiercache
