// Topology's live memory figures (MemTotal from meminfo) and page touching.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "common/check.h"
#include "common/units.h"
#include "tiers/topology.h"

namespace tiercache {
namespace {

std::shared_ptr<const Topology> LoadFixture(const char* name) {
  Result<std::shared_ptr<const Topology>> topology =
      Topology::FromXmlFile(std::string(TIERCACHE_TOPOLOGY_DATA) + "/" + name);
  EXPECT_TRUE(topology.ok()) << topology.status().ToString();
  return topology.ok() ? *topology : nullptr;
}

uint64_t PageBytes() { return static_cast<uint64_t>(sysconf(_SC_PAGESIZE)); }

// How many pages of [data, +bytes) the kernel has mapped (mincore(2)).
size_t ResidentPages(const void* data, size_t bytes) {
  const uint64_t page = PageBytes();
  const uintptr_t begin = reinterpret_cast<uintptr_t>(data) & ~(page - 1);
  const size_t length = reinterpret_cast<uintptr_t>(data) + bytes - begin;
  std::vector<unsigned char> resident((length + page - 1) / page);
  EXPECT_EQ(0, mincore(reinterpret_cast<void*>(begin), length, resident.data()));
  size_t count = 0;
  for (unsigned char r : resident) count += r & 1;
  return count;
}

// A fresh anonymous mapping: no page is resident until written.
struct Mapping {
  explicit Mapping(size_t n) : bytes(n) {
    data = mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    EXPECT_NE(MAP_FAILED, data);
  }
  ~Mapping() { munmap(data, bytes); }
  void* data;
  size_t bytes;
};

// ---- meminfo ---------------------------------------------------------------------

TEST(ParseMemTotal, ReadsProcAndNodeMeminfo) {
  const char proc[] =
      "MemTotal:       24682416 kB\n"
      "MemFree:        23630064 kB\n"
      "MemAvailable:   23801232 kB\n";
  EXPECT_EQ(uint64_t{24682416} * 1024, ParseMemTotal(proc).value());
  const char node[] =
      "Node 0 MemFree:        17388480 kB\n"
      "Node 0 MemTotal:       18440772 kB\n"
      "Node 0 MemUsed:         1052292 kB\n";
  EXPECT_EQ(uint64_t{18440772} * 1024, ParseMemTotal(node).value());
  EXPECT_EQ(uint64_t{7} * 1024, ParseMemTotal("Node 12 MemTotal: 7 kB").value())
      << "no trailing newline";
}

TEST(ParseMemTotal, MissingLineIsNotFound) {
  EXPECT_EQ(ErrorCode::kNotFound, ParseMemTotal("").status().code());
  EXPECT_EQ(ErrorCode::kNotFound,
            ParseMemTotal("MemFree: 10 kB\nHugeMemTotal: 5 kB\nMemTotal 12 kB\n").status().code())
      << "other keys, and a MemTotal without its colon, are not MemTotal";
}

TEST(ParseMemTotal, GarbageNumbersAndUnitsAreInvalidArgument) {
  for (const char* text : {"MemTotal: kB\n", "MemTotal: -5 kB\n", "MemTotal: 12x4 kB\n",
                           "MemTotal: 0x10 kB\n", "MemTotal:\n", "MemTotal: 12\n",
                           "MemTotal: 12 MB\n", "MemTotal: 12 kB extra\n",
                           "MemTotal: 99999999999999999999 kB\n",
                           "MemTotal: 18014398509481984 kB\n"}) {
    Result<uint64_t> total = ParseMemTotal(text);
    EXPECT_EQ(ErrorCode::kInvalidArgument, total.status().code()) << text;
    EXPECT_NE(std::string::npos, total.status().message().find("MemTotal")) << text;
  }
  // The largest figure that still fits in 64 bits as bytes.
  EXPECT_EQ((uint64_t{1} << 54) - 1, ParseMemTotal("MemTotal: 18014398509481983 kB").value() / 1024);
}

TEST(ReadMemTotal, ReadsAFileAndNamesItInErrors) {
  char path[] = "/tmp/tiercache_meminfo_XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  const std::string good = "MemFree: 1 kB\nMemTotal:   2048 kB\n";
  ASSERT_EQ(static_cast<ssize_t>(good.size()), write(fd, good.data(), good.size()));
  close(fd);
  EXPECT_EQ(2048u * 1024, ReadMemTotal(path).value());

  FILE* file = std::fopen(path, "w");
  ASSERT_NE(nullptr, file);
  std::fputs("MemTotal: lots kB\n", file);
  std::fclose(file);
  Result<uint64_t> garbage = ReadMemTotal(path);
  EXPECT_EQ(ErrorCode::kInvalidArgument, garbage.status().code());
  EXPECT_NE(std::string::npos, garbage.status().message().find(path));
  unlink(path);

  Result<uint64_t> missing = ReadMemTotal(path);
  EXPECT_EQ(ErrorCode::kNotFound, missing.status().code());
  EXPECT_NE(std::string::npos, missing.status().message().find(path));
}

// ---- the limit AllocateOnNode checks against ---------------------------------------

TEST(NodeMemoryLimit, XmlTopologyKeepsHwlocsFigure) {
  auto topology = LoadFixture("cxl_far_memory.xml");
  ASSERT_TRUE(topology);
  for (const NumaNode& node : topology->numa_nodes()) {
    MemoryLimit limit = topology->NodeMemoryLimit(node.os_index).value();
    EXPECT_EQ(node.local_memory_bytes, limit.bytes) << node.os_index;
    EXPECT_EQ("hwloc's topology", limit.source);
  }
  EXPECT_EQ(ErrorCode::kInvalidArgument, topology->NodeMemoryLimit(77).status().code());
}

TEST(NodeMemoryLimit, ThisMachineTakesTheLargestOfHwlocAndTheKernel) {
  auto topology = Topology::ThisMachine().value();
  for (const NumaNode& node : topology->numa_nodes()) {
    MemoryLimit limit = topology->NodeMemoryLimit(node.os_index).value();
    EXPECT_GE(limit.bytes, node.local_memory_bytes);
    EXPECT_FALSE(limit.source.empty());
    const std::string sys =
        "/sys/devices/system/node/node" + std::to_string(node.os_index) + "/meminfo";
    if (Result<uint64_t> live = ReadMemTotal(sys); live.ok()) {
      // MemTotal only changes when memory is hot-plugged; a 1 GiB margin
      // covers that happening between the two readings.
      EXPECT_GE(limit.bytes + kGiB, *live) << sys;
    }
    if (topology->numa_nodes().size() == 1) {
      Result<uint64_t> proc = ReadMemTotal("/proc/meminfo");
      ASSERT_TRUE(proc.ok()) << proc.status().ToString();
      EXPECT_GE(limit.bytes + kGiB, *proc);
    }
  }
}

// The lent GPU machine's case: hwloc read the node at a fraction of what the
// VM has by now. hwloc's own HWLOC_XMLFILE and HWLOC_THISSYSTEM stand a small
// one-node description in for this machine, so the live figures apply.
TEST(NodeMemoryLimit, LiveFigureLiftsANodeHwlocUnderreports) {
  const std::string xml = std::string(TIERCACHE_TOPOLOGY_DATA) + "/one_node_vm.xml";
  setenv("HWLOC_XMLFILE", xml.c_str(), 1);
  setenv("HWLOC_THISSYSTEM", "1", 1);
  Result<std::shared_ptr<const Topology>> loaded = Topology::Load();
  unsetenv("HWLOC_XMLFILE");
  unsetenv("HWLOC_THISSYSTEM");
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  const Topology& topology = **loaded;
  ASSERT_TRUE(topology.is_this_system());
  ASSERT_EQ(64 * kMiB, topology.Node(0)->local_memory_bytes);
  const uint64_t proc = ReadMemTotal("/proc/meminfo").value();
  ASSERT_GT(proc, 256 * kMiB);

  MemoryLimit limit = topology.NodeMemoryLimit(0).value();
  EXPECT_GE(limit.bytes + kGiB, proc);
  EXPECT_EQ(0u, limit.source.find("MemTotal in ")) << limit.source;
  // More than hwloc's figure, well within the machine's: placed.
  Result<NodeMemory> memory = topology.AllocateOnNode(0, 128 * kMiB);
  ASSERT_TRUE(memory.ok()) << memory.status().ToString();
  EXPECT_GE(memory->size(), 128 * kMiB);
}

TEST(NodeMemoryLimit, MoreThanTheLiveFigureIsOutOfMemoryNamingTheSource) {
  auto topology = Topology::ThisMachine().value();
  const int node = topology->numa_nodes().front().os_index;
  MemoryLimit limit = topology->NodeMemoryLimit(node).value();
  ASSERT_GT(limit.bytes, 0u);
  Result<NodeMemory> memory = topology->AllocateOnNode(node, limit.bytes + kGiB);
  EXPECT_EQ(ErrorCode::kOutOfMemory, memory.status().code());
  EXPECT_NE(std::string::npos, memory.status().message().find(limit.source))
      << memory.status().message();
}

// ---- touching pages ----------------------------------------------------------------

TEST(TouchPages, FaultsInEveryPageAndKeepsTheContents) {
  auto topology = Topology::ThisMachine().value();
  const size_t bytes = 24 * kMiB;
  Mapping mapping(bytes);
  ASSERT_EQ(0u, ResidentPages(mapping.data, bytes));
  // An unaligned range: its first and last pages are partial.
  auto* base = static_cast<unsigned char*>(mapping.data);
  base[100] = 0x42;
  unsigned char* first = base + 100;
  const size_t length = bytes - 100 - 5;
  const int cpu_node = [&] {
    for (const NumaNode& node : topology->numa_nodes()) {
      if (!node.cpus.empty() && !node.far_memory) return node.os_index;
    }
    return -1;
  }();
  ASSERT_GE(cpu_node, 0);
  Status bound = topology->TouchPages(first, length, topology->Node(cpu_node)->cpus);
  if (!bound.ok()) {
    EXPECT_TRUE(bound.code() == ErrorCode::kPermissionDenied ||
                bound.code() == ErrorCode::kUnsupported)
        << bound.ToString();
  }
  EXPECT_EQ(bytes / PageBytes(), ResidentPages(mapping.data, bytes));
  EXPECT_EQ(0x42, first[0]);
  EXPECT_EQ(0, first[length - 1]);
}

TEST(TouchPages, TouchesEvenWhenTheThreadsCannotBeBound) {
  auto topology = LoadFixture("two_socket_gpus.xml");  // not this machine: binding refused
  ASSERT_TRUE(topology);
  const size_t bytes = 3 * kMiB;
  Mapping mapping(bytes);
  Status bound = topology->TouchPages(mapping.data, bytes, topology->Node(0)->cpus);
  EXPECT_EQ(ErrorCode::kUnsupported, bound.code()) << bound.ToString();
  EXPECT_EQ(bytes / PageBytes(), ResidentPages(mapping.data, bytes));

  Mapping unbound(bytes);
  EXPECT_TRUE(topology->TouchPages(unbound.data, bytes, {}).ok()) << "no binding asked";
  EXPECT_EQ(bytes / PageBytes(), ResidentPages(unbound.data, bytes));
  EXPECT_TRUE(topology->TouchPages(unbound.data, 0, {}).ok());
  EXPECT_THROW((void)topology->TouchPages(nullptr, 4096, {}), LogicError);
}

TEST(TouchPages, FirstTouchPlacementSaysItTouchedAndBindingDoesNot) {
  auto topology = Topology::ThisMachine().value();
  const int node = topology->numa_nodes().front().os_index;
  Result<NodeMemory> touched =
      topology->AllocateOnNode(node, 4 * kMiB, NodeAllocationOptions{.allow_membind = false});
  ASSERT_TRUE(touched.ok()) << touched.status().ToString();
  EXPECT_TRUE(touched->pages_touched());
  EXPECT_EQ(touched->size() / PageBytes(), ResidentPages(touched->data(), touched->size()));
  Result<NodeMemory> maybe_bound = topology->AllocateOnNode(node, 4 * kMiB);
  ASSERT_TRUE(maybe_bound.ok());
  EXPECT_EQ(maybe_bound->placement() != Placement::kBound, maybe_bound->pages_touched());
  if (maybe_bound->placement() == Placement::kBound) {
    EXPECT_EQ(0u, ResidentPages(maybe_bound->data(), maybe_bound->size()));
  }
  NodeMemory moved = std::move(*touched);
  EXPECT_TRUE(moved.pages_touched());
  EXPECT_FALSE(touched->pages_touched());
}

}  // namespace
}  // namespace tiercache
