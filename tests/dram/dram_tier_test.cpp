#include "tiers/dram_tier.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "common/log.h"
#include "tests/tiers/tier_conformance.h"

namespace tiercache::testing {
namespace {

struct DramTierFactory {
  static std::unique_ptr<Tier> Make(uint64_t capacity) {
    DramTierOptions options;
    options.capacity = capacity;
    auto tier = DramTier::Create(std::move(options));
    EXPECT_TRUE(tier.ok()) << tier.status().ToString();
    return tier.ok() ? std::move(tier).value() : nullptr;
  }
};

INSTANTIATE_TYPED_TEST_SUITE_P(Dram, TierConformance, ::testing::Types<DramTierFactory>);

uint64_t FallbackCount(const std::string& name) {
  for (const FallbackEvent& event : Fallbacks()) {
    if (event.name == name) return event.count;
  }
  return 0;
}

std::shared_ptr<const Topology> TwoSocketTopology() {
  auto topology = Topology::FromXmlFile(std::string(TIERCACHE_TOPOLOGY_DATA) +
                                        "/two_socket_gpus.xml");
  EXPECT_TRUE(topology.ok()) << topology.status().ToString();
  return topology.ok() ? *topology : nullptr;
}

// Records every pin/unpin call; can be told to refuse the n-th pin.
struct PinRecorder {
  struct Call {
    void* data;
    size_t bytes;
  };
  std::mutex mutex;
  std::vector<Call> pins, unpins;
  int fail_pin_number = 0;  // 1-based; 0 never fails

  void Attach(DramTierOptions& options) {
    options.pin = [this](void* data, size_t bytes) {
      std::lock_guard<std::mutex> lock(mutex);
      pins.push_back({data, bytes});
      if (static_cast<int>(pins.size()) == fail_pin_number) {
        return Status::Unavailable("the driver refused to lock the pages");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));  // a cost to measure
      return Status::Ok();
    };
    options.unpin = [this](void* data, size_t bytes) {
      std::lock_guard<std::mutex> lock(mutex);
      unpins.push_back({data, bytes});
      return Status::Ok();
    };
  }
};

TEST(DramTier, IsBoundToTheChosenNodeOrRecordsTheFallback) {
  auto topology = Topology::ThisMachine().value();
  const int node = topology->numa_nodes().front().os_index;
  const uint64_t before = FallbackCount("numa.membind");
  DramTierOptions options;
  options.capacity = 16 * kMiB;
  options.numa_node = node;
  auto tier = DramTier::Create(std::move(options));
  ASSERT_TRUE(tier.ok()) << tier.status().ToString();
  EXPECT_EQ(TierKind::kDram, (*tier)->kind());
  EXPECT_EQ(node, (*tier)->numa_node());
  DramTierStats stats = (*tier)->dram_stats();
  EXPECT_EQ(node, stats.numa_node);
  if (stats.placement == Placement::kBound) {
    EXPECT_FALSE(stats.membind_fallback);
  } else {
    EXPECT_TRUE(stats.membind_fallback);
    EXPECT_FALSE(stats.fallback_reason.empty());
    EXPECT_EQ(before + 1, FallbackCount("numa.membind"));
  }
  Result<Extent> extent = (*tier)->Allocate(16 * kMiB);
  ASSERT_TRUE(extent.ok());
  void* bytes = (*tier)->HostAddress(*extent);
  ASSERT_NE(nullptr, bytes);
  std::memset(bytes, 0x3C, 16 * kMiB);
  Result<std::vector<int>> holders = topology->NodesHoldingMemory(bytes, 16 * kMiB);
  if (holders.ok() && stats.placement != Placement::kUnplaced) {
    EXPECT_EQ(std::vector<int>{node}, *holders);
  }
}

TEST(DramTier, RefusedBindingFallsBackToFirstTouchAndSaysSoInStats) {
  const uint64_t before = FallbackCount("numa.membind");
  DramTierOptions options;
  options.capacity = 4 * kMiB;
  options.allow_membind = false;
  auto tier = DramTier::Create(std::move(options));
  ASSERT_TRUE(tier.ok()) << tier.status().ToString();
  DramTierStats stats = (*tier)->dram_stats();
  EXPECT_TRUE(stats.membind_fallback);
  EXPECT_NE(Placement::kBound, stats.placement);
  EXPECT_FALSE(stats.fallback_reason.empty());
  EXPECT_EQ(before + 1, FallbackCount("numa.membind"));
  // Still a working tier.
  Result<Extent> extent = (*tier)->Allocate(100000);
  ASSERT_TRUE(extent.ok());
  std::vector<unsigned char> in(100000), out(100000);
  FillPattern(in.data(), in.size(), 7);
  ASSERT_TRUE((*tier)->Write(*extent, 0, in.data(), in.size()).ok());
  ASSERT_TRUE((*tier)->Read(*extent, 0, out.data(), out.size()).ok());
  EXPECT_EQ(in, out);
}

TEST(DramTier, PinsEachSlabOnceAndUnpinsThemOnDestruction) {
  PinRecorder recorder;
  DramTierOptions options;
  options.capacity = 10 * kMiB;
  options.pin_slab_bytes = 4 * kMiB;
  recorder.Attach(options);
  auto created = DramTier::Create(std::move(options));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  std::unique_ptr<DramTier> tier = std::move(created).value();
  ASSERT_EQ(3u, recorder.pins.size());
  EXPECT_TRUE(tier->pinned());

  // The slabs tile the tier's memory exactly, in order.
  Result<Extent> whole = tier->Allocate(tier->capacity());
  ASSERT_TRUE(whole.ok());
  auto* base = static_cast<unsigned char*>(tier->HostAddress(*whole));
  const size_t expected[] = {4 * kMiB, 4 * kMiB, 2 * kMiB};
  size_t offset = 0;
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(base + offset, recorder.pins[i].data) << "slab " << i;
    EXPECT_EQ(expected[i], recorder.pins[i].bytes) << "slab " << i;
    offset += recorder.pins[i].bytes;
  }
  EXPECT_EQ(tier->capacity(), offset);
  ASSERT_TRUE(tier->Free(*whole).ok());

  // Block traffic never pins again.
  std::vector<unsigned char> block(64 * kKiB, 0x11);
  for (int i = 0; i < 50; ++i) {
    Result<Extent> e = tier->Allocate(block.size());
    ASSERT_TRUE(e.ok());
    ASSERT_TRUE(tier->Write(*e, 0, block.data(), block.size()).ok());
    ASSERT_TRUE(tier->Free(*e).ok());
  }
  EXPECT_EQ(3u, recorder.pins.size());
  EXPECT_TRUE(recorder.unpins.empty());

  DramTierStats stats = tier->dram_stats();
  EXPECT_EQ(3u, stats.slabs);
  EXPECT_EQ(tier->capacity(), stats.pinned_bytes);
  EXPECT_GE(stats.pin_nanoseconds, 3'000'000u) << "three 1 ms pins were timed";

  tier.reset();
  ASSERT_EQ(3u, recorder.unpins.size());
  for (size_t i = 0; i < 3; ++i) {  // reverse order, same ranges
    EXPECT_EQ(recorder.pins[2 - i].data, recorder.unpins[i].data);
    EXPECT_EQ(recorder.pins[2 - i].bytes, recorder.unpins[i].bytes);
  }
}

TEST(DramTier, OneSlabByDefaultAndNoPinningWithoutCallbacks) {
  PinRecorder recorder;
  DramTierOptions options;
  options.capacity = 3 * kMiB;
  recorder.Attach(options);
  auto pinned = DramTier::Create(options);
  ASSERT_TRUE(pinned.ok());
  ASSERT_EQ(1u, recorder.pins.size());
  EXPECT_EQ((*pinned)->capacity(), recorder.pins[0].bytes);
  pinned->reset();
  EXPECT_EQ(1u, recorder.unpins.size());

  DramTierOptions plain;
  plain.capacity = 3 * kMiB;
  auto unpinned = DramTier::Create(plain);
  ASSERT_TRUE(unpinned.ok());
  EXPECT_FALSE((*unpinned)->pinned());
  EXPECT_EQ(0u, (*unpinned)->dram_stats().slabs);
  EXPECT_EQ(0u, (*unpinned)->dram_stats().pinned_bytes);
}

TEST(DramTier, FailingPinIsAClearErrorAndUndoesEarlierSlabs) {
  PinRecorder recorder;
  recorder.fail_pin_number = 2;
  DramTierOptions options;
  options.name = "staging";
  options.capacity = 12 * kMiB;
  options.pin_slab_bytes = 4 * kMiB;
  recorder.Attach(options);
  auto tier = DramTier::Create(std::move(options));
  ASSERT_FALSE(tier.ok());
  EXPECT_EQ(ErrorCode::kUnavailable, tier.status().code());
  const std::string& message = tier.status().message();
  EXPECT_NE(std::string::npos, message.find("staging")) << message;
  EXPECT_NE(std::string::npos, message.find("slab 2 of 3")) << message;
  EXPECT_NE(std::string::npos, message.find("refused to lock")) << message;
  EXPECT_EQ(2u, recorder.pins.size()) << "stops at the first failure";
  ASSERT_EQ(1u, recorder.unpins.size()) << "the slab already pinned is released";
  EXPECT_EQ(recorder.pins[0].data, recorder.unpins[0].data);
}

// mincore(2): has the kernel mapped every page of [data, +bytes)?
bool AllPagesResident(void* data, size_t bytes) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  std::vector<unsigned char> resident((bytes + page - 1) / page);
  if (mincore(data, bytes, resident.data()) != 0) return false;
  for (unsigned char r : resident) {
    if ((r & 1) == 0) return false;
  }
  return true;
}

// A pin that refuses pages not yet faulted in: cudaHostRegister would fault
// them in itself, from one thread, at 608 ms per GiB.
void AttachResidentOnlyPin(DramTierOptions& options, int* pins) {
  options.pin = [pins](void* data, size_t bytes) {
    ++*pins;
    return AllPagesResident(data, bytes) ? Status::Ok()
                                         : Status::Unavailable("pages not faulted in");
  };
  options.unpin = [](void*, size_t) { return Status::Ok(); };
}

TEST(DramTier, PinGetsPagesAlreadyFaultedInAndStatsTimeThePrefault) {
  auto topology = Topology::ThisMachine().value();
  const int node = topology->numa_nodes().front().os_index;
  // The check can fail: freshly bound memory has no page mapped yet.
  Result<NodeMemory> fresh = topology->AllocateOnNode(node, 8 * kMiB);
  ASSERT_TRUE(fresh.ok());
  if (fresh->placement() != Placement::kBound) {
    GTEST_SKIP() << "memory binding refused here, every page is touched at placement: "
                 << fresh->fallback_reason();
  }
  ASSERT_FALSE(AllPagesResident(fresh->data(), fresh->size()));

  int pins = 0;
  DramTierOptions options;
  options.capacity = 24 * kMiB;
  options.numa_node = node;
  options.pin_slab_bytes = 8 * kMiB;
  AttachResidentOnlyPin(options, &pins);
  auto tier = DramTier::Create(std::move(options));
  ASSERT_TRUE(tier.ok()) << tier.status().ToString();
  EXPECT_EQ(3, pins);
  DramTierStats stats = (*tier)->dram_stats();
  EXPECT_EQ(Placement::kBound, stats.placement);
  EXPECT_GT(stats.prefault_nanoseconds, 0u);
  EXPECT_EQ(3u, stats.slabs);
  // Faulting in kept the memory zeroed.
  Result<Extent> whole = (*tier)->Allocate((*tier)->capacity());
  ASSERT_TRUE(whole.ok());
  const auto* bytes = static_cast<const unsigned char*>((*tier)->HostAddress(*whole));
  for (uint64_t offset = 0; offset < (*tier)->capacity(); offset += 4096) {
    ASSERT_EQ(0, bytes[offset]) << offset;
  }
}

TEST(DramTier, FirstTouchPlacementSkipsThePrefault) {
  int pins = 0;
  DramTierOptions options;
  options.capacity = 8 * kMiB;
  options.allow_membind = false;
  AttachResidentOnlyPin(options, &pins);
  auto tier = DramTier::Create(std::move(options));
  ASSERT_TRUE(tier.ok()) << tier.status().ToString();
  EXPECT_EQ(1, pins) << "first touch had faulted every page in";
  EXPECT_EQ(0u, (*tier)->dram_stats().prefault_nanoseconds);

  DramTierOptions unpinned;
  unpinned.capacity = 8 * kMiB;
  auto plain = DramTier::Create(std::move(unpinned));
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(0u, (*plain)->dram_stats().prefault_nanoseconds) << "nothing to pin, no pre-fault";
}

TEST(DramTier, ImpossibleNodeIsInvalidArgument) {
  for (int node : {4096, -2}) {
    DramTierOptions options;
    options.capacity = kMiB;
    options.numa_node = node;
    auto tier = DramTier::Create(std::move(options));
    EXPECT_EQ(ErrorCode::kInvalidArgument, tier.status().code()) << node;
    EXPECT_NE(std::string::npos, tier.status().message().find(std::to_string(node)))
        << tier.status().message();
  }
}

TEST(DramTier, RejectsBadOptions) {
  DramTierOptions zero;
  EXPECT_EQ(ErrorCode::kInvalidArgument, DramTier::Create(zero).status().code());
  DramTierOptions odd;
  odd.capacity = kMiB;
  odd.granularity = 3000;
  EXPECT_EQ(ErrorCode::kInvalidArgument, DramTier::Create(odd).status().code());
  DramTierOptions huge;
  huge.capacity = ~uint64_t{0};
  EXPECT_EQ(ErrorCode::kInvalidArgument, DramTier::Create(huge).status().code());
  DramTierOptions half;
  half.capacity = kMiB;
  half.pin = [](void*, size_t) { return Status::Ok(); };
  EXPECT_EQ(ErrorCode::kInvalidArgument, DramTier::Create(half).status().code());
}

TEST(DramTier, MoreThanTheNodeHoldsIsOutOfMemoryNotACrash) {
  auto topology = Topology::ThisMachine().value();
  const NumaNode& node = topology->numa_nodes().front();
  // The figure the check itself uses: hwloc's or, when larger, the kernel's
  // live MemTotal.
  const MemoryLimit limit = topology->NodeMemoryLimit(node.os_index).value();
  ASSERT_GE(limit.bytes, node.local_memory_bytes);
  DramTierOptions options;
  options.numa_node = node.os_index;
  options.capacity = limit.bytes + kGiB;
  auto tier = DramTier::Create(options);
  EXPECT_EQ(ErrorCode::kOutOfMemory, tier.status().code()) << tier.status().ToString();
  EXPECT_NE(std::string::npos, tier.status().message().find(limit.source))
      << tier.status().ToString();
  options.allow_membind = false;  // the fallback would touch every page: it must not try
  tier = DramTier::Create(options);
  EXPECT_EQ(ErrorCode::kOutOfMemory, tier.status().code()) << tier.status().ToString();
}

TEST(DramTier, RoundsCapacityUpToGranularityAndPages) {
  DramTierOptions options;
  options.capacity = 5000;
  auto tier = DramTier::Create(options);
  ASSERT_TRUE(tier.ok());
  EXPECT_EQ(8192u, (*tier)->capacity());
  options.granularity = 64 * kKiB;
  tier = DramTier::Create(options);
  ASSERT_TRUE(tier.ok());
  EXPECT_EQ(64 * kKiB, (*tier)->capacity());
}

TEST(DramTier, NearestNodeToAGpuOnATwoSocketMachine) {
  auto topology = TwoSocketTopology();
  ASSERT_TRUE(topology);
  DramTierOptions options;
  options.capacity = 2 * kMiB;
  options.topology = topology;
  options.pci_bus_id = "0000:b1:00.0";
  auto tier = DramTier::Create(options);
  ASSERT_TRUE(tier.ok()) << tier.status().ToString();
  EXPECT_EQ(1, (*tier)->numa_node());
  // An XML machine is not this one: nothing can be bound, and stats say so.
  EXPECT_TRUE((*tier)->dram_stats().membind_fallback);

  options.pci_bus_id = "0000:17:00.0";
  tier = DramTier::Create(options);
  ASSERT_TRUE(tier.ok());
  EXPECT_EQ(0, (*tier)->numa_node());

  options.pci_bus_id = "0000:42:00.0";
  EXPECT_EQ(ErrorCode::kNotFound, DramTier::Create(options).status().code());
  options.pci_bus_id = "not a bus id";
  EXPECT_EQ(ErrorCode::kInvalidArgument, DramTier::Create(options).status().code());
}

}  // namespace
}  // namespace tiercache::testing
