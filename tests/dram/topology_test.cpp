#include "tiers/topology.h"

#include <gtest/gtest.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "common/log.h"
#include "common/units.h"

namespace tiercache {
namespace {

std::string Fixture(const char* name) { return std::string(TIERCACHE_TOPOLOGY_DATA) + "/" + name; }

std::shared_ptr<const Topology> LoadFixture(const char* name) {
  Result<std::shared_ptr<const Topology>> topology = Topology::FromXmlFile(Fixture(name));
  EXPECT_TRUE(topology.ok()) << topology.status().ToString();
  return topology.ok() ? *topology : nullptr;
}

std::vector<int> Range(int first, int last) {
  std::vector<int> v;
  for (int i = first; i <= last; ++i) v.push_back(i);
  return v;
}

uint64_t FallbackCount(const std::string& name) {
  for (const FallbackEvent& event : Fallbacks()) {
    if (event.name == name) return event.count;
  }
  return 0;
}

// ---- the two-socket machine with a GPU under each socket ------------------------

TEST(TopologyTwoSocket, ListsNodesCoresAndPciDevices) {
  auto topology = LoadFixture("two_socket_gpus.xml");
  ASSERT_TRUE(topology);
  EXPECT_FALSE(topology->is_this_system());
  ASSERT_EQ(2u, topology->numa_nodes().size());
  for (int i = 0; i < 2; ++i) {
    const NumaNode& node = topology->numa_nodes()[i];
    EXPECT_EQ(i, node.os_index);
    EXPECT_EQ(64 * kGiB, node.local_memory_bytes);
    EXPECT_EQ(Range(8 * i, 8 * i + 7), node.cpus);
    EXPECT_EQ(4, node.core_count);
    EXPECT_FALSE(node.far_memory);
  }
  EXPECT_TRUE(topology->FarMemoryNodes().empty());
  ASSERT_EQ(8u, topology->cores().size());
  EXPECT_EQ((std::vector<int>{14, 15}), topology->cores()[7].cpus);

  std::vector<std::string> gpus;
  for (const PciDevice& device : topology->pci_devices()) {
    if (device.class_id == 0x0302 && device.vendor_id == 0x10de) gpus.push_back(device.bus_id);
  }
  EXPECT_EQ((std::vector<std::string>{"0000:17:00.0", "0000:b1:00.0"}), gpus);
}

TEST(TopologyTwoSocket, EachGpuMapsToItsOwnSocketsNodeAndCores) {
  auto topology = LoadFixture("two_socket_gpus.xml");
  ASSERT_TRUE(topology);
  Result<PciLocality> first = topology->LocatePci("0000:17:00.0");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(std::vector<int>{0}, first->numa_nodes);
  EXPECT_EQ(Range(0, 7), first->cpus);
  EXPECT_EQ(4, first->core_count);

  Result<PciLocality> second = topology->LocatePci("0000:b1:00.0");
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(std::vector<int>{1}, second->numa_nodes);
  EXPECT_EQ(Range(8, 15), second->cpus);
  EXPECT_EQ(4, second->core_count);

  EXPECT_EQ(0, topology->NearestNode("0000:17:00.0").value());
  EXPECT_EQ(1, topology->NearestNode("0000:b1:00.0").value());
  // The NVMe drive behind socket 1 is local to node 1 as well.
  EXPECT_EQ(1, topology->NearestNode("0000:b2:00.0").value());
}

TEST(TopologyTwoSocket, AcceptsTheBusIdSpellingsDriversUse) {
  auto topology = LoadFixture("two_socket_gpus.xml");
  ASSERT_TRUE(topology);
  // cudaDeviceGetPCIBusId, nvidia-smi (8-digit domain, upper case), no domain.
  for (const char* id : {"0000:B1:00.0", "00000000:b1:00.0", "b1:00.0"}) {
    Result<int> node = topology->NearestNode(id);
    ASSERT_TRUE(node.ok()) << id << ": " << node.status().ToString();
    EXPECT_EQ(1, *node) << id;
  }
  EXPECT_EQ("0000:b1:00.0", topology->LocatePci("00000000:B1:00.0")->bus_id);
}

TEST(TopologyTwoSocket, RejectsMalformedAndUnknownBusIds) {
  auto topology = LoadFixture("two_socket_gpus.xml");
  ASSERT_TRUE(topology);
  for (const char* id : {"", "gpu0", "0000:17:00", "0000:17:00.8", "0000:1x:00.0",
                         "0000:17:20.0", "0000:117:00.0", "000000000:17:00.0", "0000:17:00.0.1"}) {
    Result<PciLocality> locality = topology->LocatePci(id);
    EXPECT_EQ(ErrorCode::kInvalidArgument, locality.status().code()) << "\"" << id << "\"";
  }
  Result<PciLocality> missing = topology->LocatePci("0000:99:00.0");
  EXPECT_EQ(ErrorCode::kNotFound, missing.status().code());
  EXPECT_NE(std::string::npos, missing.status().message().find("0000:99:00.0"));
}

TEST(TopologyTwoSocket, UnknownNodeIsInvalidArgument) {
  auto topology = LoadFixture("two_socket_gpus.xml");
  ASSERT_TRUE(topology);
  for (int bad : {-1, 2, 1000}) {
    Result<NumaNode> node = topology->Node(bad);
    EXPECT_EQ(ErrorCode::kInvalidArgument, node.status().code());
    EXPECT_NE(std::string::npos, node.status().message().find("0, 1")) << node.status().message();
    EXPECT_EQ(ErrorCode::kInvalidArgument, topology->AllocateOnNode(bad, 4096).status().code());
    EXPECT_EQ(ErrorCode::kInvalidArgument, topology->BindThreadToNode(bad).code());
  }
  EXPECT_EQ(ErrorCode::kInvalidArgument, topology->AllocateOnNode(0, 0).status().code());
  EXPECT_EQ(ErrorCode::kInvalidArgument, topology->BindThreadToCpus({}).code());
  EXPECT_EQ(ErrorCode::kInvalidArgument, topology->BindThreadToCpus({0, 16}).code());
}

// Memory "on node 1" of a machine this process does not run on cannot be
// bound: the allocation still succeeds, and says so.
TEST(TopologyTwoSocket, AllocationOnAForeignTopologyFallsBackAndIsRecorded) {
  auto topology = LoadFixture("two_socket_gpus.xml");
  ASSERT_TRUE(topology);
  const uint64_t before = FallbackCount("numa.membind");
  Result<NodeMemory> memory = topology->AllocateOnNode(1, 3 * kMiB + 1);
  ASSERT_TRUE(memory.ok()) << memory.status().ToString();
  EXPECT_EQ(1, memory->node());
  EXPECT_NE(Placement::kBound, memory->placement());
  EXPECT_FALSE(memory->fallback_reason().empty());
  EXPECT_EQ(before + 1, FallbackCount("numa.membind"));
  ASSERT_GE(memory->size(), 3 * kMiB + 1);
  auto* bytes = static_cast<unsigned char*>(memory->data());
  EXPECT_EQ(0, bytes[0]);
  EXPECT_EQ(0, bytes[memory->size() - 1]);
  std::memset(bytes, 0x5A, memory->size());
  EXPECT_EQ(0x5A, bytes[memory->size() - 1]);
  // Binding a thread to a foreign machine's CPUs is refused, not faked.
  Status bind = topology->BindThreadToNode(0);
  EXPECT_FALSE(bind.ok());
  EXPECT_EQ(ErrorCode::kUnsupported, bind.code()) << bind.ToString();
}

// ---- CPU-less memory nodes ---------------------------------------------------------

TEST(TopologyFarMemory, RecognisesCpulessNodesAsFarMemory) {
  auto topology = LoadFixture("cxl_far_memory.xml");
  ASSERT_TRUE(topology);
  ASSERT_EQ(4u, topology->numa_nodes().size());
  EXPECT_EQ((std::vector<int>{2, 3}), topology->FarMemoryNodes());
  EXPECT_FALSE(topology->Node(0)->far_memory);
  EXPECT_FALSE(topology->Node(1)->far_memory);
  EXPECT_EQ(128 * kGiB, topology->Node(2)->local_memory_bytes);
  EXPECT_EQ(256 * kGiB, topology->Node(3)->local_memory_bytes);
  // Node 2 borrows socket 0's CPUs as its locality but owns none.
  EXPECT_EQ(Range(0, 3), topology->Node(2)->cpus);
  EXPECT_EQ(Range(0, 3), topology->Node(0)->cpus);
}

TEST(TopologyFarMemory, GpuPrefersTheCpuAttachedNodeOverFarMemory) {
  auto topology = LoadFixture("cxl_far_memory.xml");
  ASSERT_TRUE(topology);
  Result<PciLocality> gpu = topology->LocatePci("0000:2a:00.0");
  ASSERT_TRUE(gpu.ok()) << gpu.status().ToString();
  ASSERT_FALSE(gpu->numa_nodes.empty());
  EXPECT_EQ(0, gpu->numa_nodes.front());
  EXPECT_TRUE(std::is_permutation(gpu->numa_nodes.begin(), gpu->numa_nodes.end(),
                                  std::vector<int>{0, 2, 3}.begin()))
      << ::testing::PrintToString(gpu->numa_nodes);
  EXPECT_EQ(Range(0, 3), gpu->cpus);
  EXPECT_EQ(0, topology->NearestNode("0000:2a:00.0").value());
  EXPECT_NE(std::string::npos, topology->Describe().find("far memory"));
}

TEST(TopologyFarMemory, FirstTouchCannotReachACpulessNode) {
  auto topology = LoadFixture("cxl_far_memory.xml");
  ASSERT_TRUE(topology);
  Result<NodeMemory> memory = topology->AllocateOnNode(2, kMiB);
  ASSERT_TRUE(memory.ok()) << memory.status().ToString();
  EXPECT_EQ(Placement::kUnplaced, memory->placement());
  EXPECT_NE(std::string::npos, memory->fallback_reason().find("no CPUs of its own"))
      << memory->fallback_reason();
}

TEST(TopologyFarMemory, MoreThanTheNodeHoldsIsOutOfMemory) {
  auto topology = LoadFixture("cxl_far_memory.xml");
  ASSERT_TRUE(topology);
  Result<NodeMemory> memory = topology->AllocateOnNode(0, 32 * kGiB + 1);
  EXPECT_EQ(ErrorCode::kOutOfMemory, memory.status().code());
  EXPECT_NE(std::string::npos, memory.status().message().find("32.00 GiB"))
      << memory.status().message();
}

// ---- bus ids -----------------------------------------------------------------------------

TEST(PciBusId, ParsesTheSpellingsDriversUseAndFormatsCanonically) {
  Result<PciAddress> cuda = ParsePciBusId("0000:00:06.0");
  ASSERT_TRUE(cuda.ok());
  EXPECT_EQ(0u, cuda->domain);
  EXPECT_EQ(0u, cuda->bus);
  EXPECT_EQ(6u, cuda->device);
  EXPECT_EQ(0u, cuda->function);
  Result<PciAddress> smi = ParsePciBusId("0001:C3:1F.7");
  ASSERT_TRUE(smi.ok());
  EXPECT_EQ(1u, smi->domain);
  EXPECT_EQ(0xc3u, smi->bus);
  EXPECT_EQ(0x1fu, smi->device);
  EXPECT_EQ(7u, smi->function);
  EXPECT_EQ("0001:c3:1f.7", FormatPciBusId(*smi));
  EXPECT_EQ("0000:b1:00.0", FormatPciBusId(ParsePciBusId("00000000:B1:00.0").value()));
  EXPECT_EQ("0000:17:00.0", FormatPciBusId(ParsePciBusId("17:00.0").value()));
  Result<PciAddress> bad = ParsePciBusId("0000:17:00");
  EXPECT_EQ(ErrorCode::kInvalidArgument, bad.status().code());
  EXPECT_NE(std::string::npos, bad.status().message().find("0000:17:00"));
}

// ---- loading errors ------------------------------------------------------------------

TEST(TopologyLoad, MissingOrBrokenXmlIsAClearError) {
  Result<std::shared_ptr<const Topology>> missing =
      Topology::FromXmlFile(Fixture("no_such_machine.xml"));
  EXPECT_EQ(ErrorCode::kNotFound, missing.status().code());
  EXPECT_NE(std::string::npos, missing.status().message().find("no_such_machine.xml"));

  char path[] = "/tmp/tiercache_topology_XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  const char garbage[] = "<?xml version=\"1.0\"?><topology><object type=\"Nonsense\"";
  ASSERT_EQ(static_cast<ssize_t>(sizeof(garbage) - 1), write(fd, garbage, sizeof(garbage) - 1));
  close(fd);
  Result<std::shared_ptr<const Topology>> broken = Topology::FromXmlFile(path);
  unlink(path);
  EXPECT_EQ(ErrorCode::kInvalidArgument, broken.status().code()) << broken.status().ToString();
}

// Debian's libhwloc reads XML with libxml2 only when libhwloc-plugins is
// installed; without it hwloc's own minimal parser must read the fixtures.
TEST(TopologyLoad, FixturesLoadWithHwlocsMinimalXmlParserToo) {
  setenv("HWLOC_LIBXML_IMPORT", "0", 1);
  auto two_socket = Topology::FromXmlFile(Fixture("two_socket_gpus.xml"));
  auto far = Topology::FromXmlFile(Fixture("cxl_far_memory.xml"));
  unsetenv("HWLOC_LIBXML_IMPORT");
  ASSERT_TRUE(two_socket.ok()) << two_socket.status().ToString();
  ASSERT_TRUE(far.ok()) << far.status().ToString();
  EXPECT_EQ(1, (*two_socket)->NearestNode("0000:b1:00.0").value());
  EXPECT_EQ((std::vector<int>{2, 3}), (*far)->FarMemoryNodes());
}

// ---- this machine ----------------------------------------------------------------------

TEST(TopologyThisMachine, FindsAtLeastOneNodeWithCpus) {
  Result<std::shared_ptr<const Topology>> topology = Topology::ThisMachine();
  ASSERT_TRUE(topology.ok()) << topology.status().ToString();
  EXPECT_TRUE((*topology)->is_this_system());
  ASSERT_FALSE((*topology)->numa_nodes().empty());
  size_t cpus = 0;
  for (const NumaNode& node : (*topology)->numa_nodes()) {
    if (!node.far_memory) cpus += node.cpus.size();
  }
  EXPECT_GE(cpus, 1u);
  EXPECT_FALSE((*topology)->cores().empty());
  EXPECT_EQ(topology->get(), Topology::ThisMachine()->get()) << "loaded once per process";
  // Every PCI device found maps to nodes that exist.
  for (const PciDevice& device : (*topology)->pci_devices()) {
    Result<PciLocality> locality = (*topology)->LocatePci(device.bus_id);
    ASSERT_TRUE(locality.ok()) << device.bus_id << ": " << locality.status().ToString();
    for (int node : locality->numa_nodes) EXPECT_TRUE((*topology)->Node(node).ok());
  }
}

int FirstCpuNode(const Topology& topology) {
  for (const NumaNode& node : topology.numa_nodes()) {
    if (!node.far_memory && !node.cpus.empty()) return node.os_index;
  }
  return -1;
}

TEST(TopologyThisMachine, BindsAThreadToANodesCpus) {
  auto topology = Topology::ThisMachine().value();
  const int node = FirstCpuNode(*topology);
  ASSERT_GE(node, 0);
  const std::vector<int> cpus = topology->Node(node)->cpus;
  Status status;
  int cpu_after = -1;
  std::thread worker([&] {
    status = topology->BindThreadToNode(node);
    cpu_after = sched_getcpu();
  });
  worker.join();
  if (status.code() == ErrorCode::kPermissionDenied || status.code() == ErrorCode::kUnsupported) {
    GTEST_SKIP() << "thread binding refused here: " << status.ToString();
  }
  ASSERT_TRUE(status.ok()) << status.ToString();
  EXPECT_NE(cpus.end(), std::find(cpus.begin(), cpus.end(), cpu_after));
}

TEST(TopologyThisMachine, AllocatesOnANodeBoundOrWithTheFallbackRecorded) {
  auto topology = Topology::ThisMachine().value();
  const int node = FirstCpuNode(*topology);
  const uint64_t before = FallbackCount("numa.membind");
  Result<NodeMemory> memory = topology->AllocateOnNode(node, 8 * kMiB);
  ASSERT_TRUE(memory.ok()) << memory.status().ToString();
  if (memory->placement() == Placement::kBound) {
    EXPECT_TRUE(memory->fallback_reason().empty());
  } else {
    EXPECT_FALSE(memory->fallback_reason().empty());
    EXPECT_EQ(before + 1, FallbackCount("numa.membind"));
  }
  std::memset(memory->data(), 0xA5, memory->size());
  Result<std::vector<int>> holders = topology->NodesHoldingMemory(memory->data(), memory->size());
  if (holders.ok() && memory->placement() != Placement::kUnplaced) {
    EXPECT_EQ(std::vector<int>{node}, *holders);
  }
}

TEST(TopologyThisMachine, RefusedBindingPlacesByFirstTouch) {
  auto topology = Topology::ThisMachine().value();
  const int node = FirstCpuNode(*topology);
  const uint64_t before = FallbackCount("numa.membind");
  Result<NodeMemory> memory =
      topology->AllocateOnNode(node, 5 * kMiB, NodeAllocationOptions{.allow_membind = false});
  ASSERT_TRUE(memory.ok()) << memory.status().ToString();
  EXPECT_NE(Placement::kBound, memory->placement());
  EXPECT_NE(std::string::npos, memory->fallback_reason().find("disabled"));
  EXPECT_EQ(before + 1, FallbackCount("numa.membind"));
  const auto* bytes = static_cast<const unsigned char*>(memory->data());
  EXPECT_EQ(0, bytes[0]);
  EXPECT_EQ(0, bytes[memory->size() - 1]);
  Result<std::vector<int>> holders = topology->NodesHoldingMemory(memory->data(), memory->size());
  if (holders.ok() && memory->placement() == Placement::kFirstTouch) {
    EXPECT_EQ(std::vector<int>{node}, *holders) << "first touch put the pages elsewhere";
  }
}

// The kernel's THP mode: "always", "madvise" or "never" (the bracketed one).
std::string TransparentHugePageMode() {
  std::FILE* f = std::fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
  if (f == nullptr) return "";
  char line[128] = {};
  const bool read = std::fgets(line, sizeof(line), f) != nullptr;
  std::fclose(f);
  if (!read) return "";
  const char* open = std::strchr(line, '[');
  const char* close = open ? std::strchr(open, ']') : nullptr;
  return close ? std::string(open + 1, close) : "";
}

// Bytes of the mapping holding `p` that /proc/self/smaps reports backed by
// anonymous huge pages.
uint64_t AnonHugeBytes(const void* p) {
  std::FILE* f = std::fopen("/proc/self/smaps", "r");
  if (f == nullptr) return 0;
  const auto address = reinterpret_cast<uintptr_t>(p);
  char line[512];
  bool inside = false;
  uint64_t kib = 0;
  while (std::fgets(line, sizeof(line), f) != nullptr) {
    unsigned long start = 0, end = 0;
    if (std::sscanf(line, "%lx-%lx ", &start, &end) == 2) {  // a mapping's header line
      inside = address >= start && address < end;
      continue;
    }
    unsigned long value = 0;
    if (inside && std::sscanf(line, "AnonHugePages: %lu kB", &value) == 1) kib += value;
  }
  std::fclose(f);
  return kib * 1024;
}

TEST(TopologyThisMachine, HugePageAdviceBacksTheRegionWithHugePages) {
  const std::string mode = TransparentHugePageMode();
  if (mode != "always" && mode != "madvise") GTEST_SKIP() << "transparent huge pages: " << mode;
  auto topology = Topology::ThisMachine().value();
  const int node = FirstCpuNode(*topology);
  // First-touch placement faults every page in at allocation.
  Result<NodeMemory> advised = topology->AllocateOnNode(
      node, 64 * kMiB, NodeAllocationOptions{.allow_membind = false, .huge_pages = true});
  ASSERT_TRUE(advised.ok()) << advised.status().ToString();
  EXPECT_TRUE(advised->huge_pages());
  EXPECT_GT(AnonHugeBytes(advised->data()), 0u) << "no huge page behind a 64 MiB advised region";
  Result<NodeMemory> plain = topology->AllocateOnNode(
      node, 64 * kMiB, NodeAllocationOptions{.allow_membind = false, .huge_pages = false});
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  EXPECT_FALSE(plain->huge_pages());
  if (mode == "madvise") {
    EXPECT_EQ(0u, AnonHugeBytes(plain->data())) << "unadvised region";
  }
}

TEST(TopologyThisMachine, NodeMemoryMovesOwnership) {
  auto topology = Topology::ThisMachine().value();
  Result<NodeMemory> memory = topology->AllocateOnNode(FirstCpuNode(*topology), 4096);
  ASSERT_TRUE(memory.ok());
  void* data = memory->data();
  NodeMemory moved = std::move(*memory);
  EXPECT_EQ(data, moved.data());
  EXPECT_EQ(nullptr, memory->data());
  EXPECT_EQ(0u, memory->size());
  NodeMemory assigned;
  assigned = std::move(moved);
  EXPECT_EQ(data, assigned.data());
  EXPECT_EQ(nullptr, moved.data());
  static_cast<char*>(assigned.data())[4095] = 1;
}

}  // namespace
}  // namespace tiercache
