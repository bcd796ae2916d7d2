// Topology: the machine's NUMA nodes, cores and PCI devices, and the two
// placement actions built on them (bind a thread to a node's CPUs, allocate
// memory on a node). The only user of hwloc in tiercache.
//
// Contract
// - A Topology is read once (this machine, or an hwloc XML file describing
//   some machine) and never changes afterwards. NUMA nodes are named by their
//   operating-system index (what numactl and /sys call "node N").
// - A node is "far memory" when it has no CPUs of its own: CXL expanders,
//   PMEM or HBM onlined as system RAM. Such nodes are a slower host tier, not
//   the place for staging buffers. See docs/tiers-dram.md for how it is told.
// - LocatePci() maps the PCI bus id a CUDA device reports ("0000:00:06.0")
//   to the NUMA node(s) and CPUs nearest to it: the first ancestor of the PCI
//   object that has memory attached decides.
// - AllocateOnNode() binds with hwloc; where the system refuses (EPERM in a
//   container, ENOSYS, or a topology that does not describe this machine), it
//   places pages by first touch from threads bound to the node's CPUs,
//   records the fallback "numa.membind" (log.h) and says so in the returned
//   NodeMemory's placement(). A node that does not exist is kInvalidArgument.
// - A node's memory size comes from hwloc, which reads it once at load. On a
//   machine whose memory grows as it is used (a VM with memory hot-plug or a
//   balloon) that figure can be a fraction of what is there now, so for this
//   machine NodeMemoryLimit() also reads the kernel's live MemTotal figures
//   and the allocation check uses the largest.
// - TouchPages() faults a range in from a few threads bound near the node:
//   first-touch placement uses it, and so does the DRAM tier before it pins,
//   because the driver would otherwise fault every page from one thread.
//
// Thread safety: a Topology is immutable after loading; every const method
// may be called concurrently from any thread. A NodeMemory is a move-only
// owner; distinct objects may be used from distinct threads.
#ifndef TIERCACHE_TIERS_TOPOLOGY_H_
#define TIERCACHE_TIERS_TOPOLOGY_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace tiercache {

struct NumaNode {
  int os_index = -1;
  uint64_t local_memory_bytes = 0;
  // The CPUs (PU os indexes, as sched_setaffinity numbers them) local to the
  // node. For a far node: the CPUs hwloc places it next to; may be empty.
  std::vector<int> cpus;
  int core_count = 0;     // cores among `cpus`
  bool far_memory = false;  // no CPUs of its own (CXL, PMEM as RAM, HBM)
  std::string memory_kind;  // hwloc's subtype when it names one ("MCDRAM", "CXL-DRAM")
};

struct Core {
  int logical_index = -1;  // unique, 0..cores-1 in topology order
  std::vector<int> cpus;   // its hardware threads (PU os indexes)
};

struct PciDevice {
  std::string bus_id;  // "0000:17:00.0"
  uint16_t vendor_id = 0;
  uint16_t device_id = 0;
  uint16_t class_id = 0;        // 0x0302: 3D controller (a compute GPU)
  std::vector<int> numa_nodes;  // nearest nodes, CPU-attached ones first
};

struct PciLocality {
  std::string bus_id;
  std::vector<int> numa_nodes;  // nearest nodes, CPU-attached ones first
  std::vector<int> cpus;        // the CPUs under the same ancestor
  int core_count = 0;
};

// A PCI function's address. ParsePciBusId() accepts "DDDD:BB:DD.F" (what
// cudaDeviceGetPCIBusId writes), nvidia-smi's "DDDDDDDD:BB:DD.F" and
// "BB:DD.F" (domain 0), hex digits in either case; anything else is
// kInvalidArgument. FormatPciBusId() writes the canonical lower-case
// "dddd:bb:dd.f" that PciDevice::bus_id uses.
struct PciAddress {
  unsigned domain = 0, bus = 0, device = 0, function = 0;
};
Result<PciAddress> ParsePciBusId(std::string_view text);
std::string FormatPciBusId(const PciAddress& address);

// The MemTotal figure of meminfo text in bytes: /proc/meminfo's
// "MemTotal:  123 kB" or a node's "Node 0 MemTotal:  123 kB" (from
// /sys/devices/system/node/node<N>/meminfo). kNotFound when no MemTotal line
// is there; kInvalidArgument when its number is not a decimal count of kB
// that fits in 64 bits.
Result<uint64_t> ParseMemTotal(std::string_view meminfo);
// Reads the file at `path` and parses it as above. A file that cannot be
// read gives the errno's code (kNotFound for a missing one).
Result<uint64_t> ReadMemTotal(const std::string& path);

// How much memory a node can hold, and where that figure came from
// ("hwloc", "/proc/meminfo", "/sys/devices/system/node/node0/meminfo").
// bytes is 0 when nothing knows (no check is made then).
struct MemoryLimit {
  uint64_t bytes = 0;
  std::string source;
};

// How an allocation's pages were placed.
enum class Placement {
  kBound,       // hwloc memory binding to the node (the normal case)
  kFirstTouch,  // binding refused; touched from threads on the node's CPUs
  kUnplaced,    // neither was possible; the kernel placed the pages
};
const char* PlacementName(Placement placement);  // "bound", "first-touch", "unplaced"

class Topology;

// Memory from Topology::AllocateOnNode(). Releases it on destruction; keeps
// its Topology alive until then.
class NodeMemory {
 public:
  NodeMemory() = default;
  NodeMemory(NodeMemory&& other) noexcept;
  NodeMemory& operator=(NodeMemory&& other) noexcept;
  NodeMemory(const NodeMemory&) = delete;
  NodeMemory& operator=(const NodeMemory&) = delete;
  ~NodeMemory();

  void* data() const { return data_; }
  size_t size() const { return size_; }  // the request rounded up to pages
  int node() const { return node_; }
  Placement placement() const { return placement_; }
  // Why binding was not used; empty when placement() is kBound.
  const std::string& fallback_reason() const { return fallback_reason_; }
  // True when every page was faulted in at allocation (the first-touch
  // paths); bound memory is faulted in later, by whoever writes it first.
  bool pages_touched() const { return pages_touched_; }
  // True when the kernel accepted the advice to back the region with
  // transparent huge pages (NodeAllocationOptions::huge_pages). Advice, not
  // a promise: fragmented memory still gets small pages.
  bool huge_pages() const { return huge_pages_; }

 private:
  friend class Topology;
  void Release();

  std::shared_ptr<const Topology> owner_;
  void* data_ = nullptr;
  size_t size_ = 0;
  int node_ = -1;
  Placement placement_ = Placement::kUnplaced;
  bool from_hwloc_ = false;  // hwloc_free() vs munmap()
  bool pages_touched_ = false;
  bool huge_pages_ = false;
  std::string fallback_reason_;
};

struct NodeAllocationOptions {
  // false skips hwloc binding and goes straight to first-touch placement
  // (what a refused binding gets; tests use it to exercise that path).
  bool allow_membind = true;
  // Advises the kernel (madvise MADV_HUGEPAGE) to back the region with 2 MiB
  // transparent huge pages before any page is touched: faulting in and
  // pinning then walk 512x fewer pages, and a device reading the memory by
  // DMA needs fewer IOMMU translations. Ignored where THP is off.
  bool huge_pages = true;
};

class Topology : public std::enable_shared_from_this<Topology> {
 public:
  // This machine, loaded once per process and shared (with PCI devices).
  // hwloc's own HWLOC_XMLFILE environment variable substitutes an XML file.
  static Result<std::shared_ptr<const Topology>> ThisMachine();
  // A fresh load of this machine.
  static Result<std::shared_ptr<const Topology>> Load();
  // A machine described by an hwloc v2 XML file (lstopo --of xml). It does
  // not describe the machine the process runs on: binding a thread is
  // kUnsupported, and allocation works but places nothing (kUnplaced, the
  // fallback recorded).
  static Result<std::shared_ptr<const Topology>> FromXmlFile(const std::string& path);

  ~Topology();
  Topology(const Topology&) = delete;
  Topology& operator=(const Topology&) = delete;

  // True when the topology describes the machine this process runs on.
  bool is_this_system() const { return this_system_; }
  const std::vector<NumaNode>& numa_nodes() const { return nodes_; }  // by os index
  const std::vector<Core>& cores() const { return cores_; }
  const std::vector<PciDevice>& pci_devices() const { return pci_devices_; }
  std::vector<int> FarMemoryNodes() const;

  // kInvalidArgument when no node has that os index.
  Result<NumaNode> Node(int os_index) const;

  // `bus_id` in any spelling ParsePciBusId() accepts. kInvalidArgument for a
  // malformed id, kNotFound when the topology has no such PCI device.
  Result<PciLocality> LocatePci(std::string_view bus_id) const;
  // The first CPU-attached node of LocatePci() (its first node when all are
  // far).
  Result<int> NearestNode(std::string_view bus_id) const;

  // Binds the calling thread to the node's CPUs. kInvalidArgument for an
  // unknown node or one without CPUs near it; kPermissionDenied or
  // kUnsupported when the system refuses.
  Status BindThreadToNode(int os_index) const;
  Status BindThreadToCpus(const std::vector<int>& cpus) const;

  // The most memory node `os_index` can hold. For an XML topology: hwloc's
  // figure. For this machine, read at each call: the largest of hwloc's
  // figure, the node's MemTotal in /sys/devices/system/node/node<N>/meminfo
  // and, when the topology has a single node, MemTotal in /proc/meminfo
  // (files that cannot be read are left out). kInvalidArgument for an
  // unknown node.
  Result<MemoryLimit> NodeMemoryLimit(int os_index) const;

  // `bytes` (> 0) of zeroed memory on node `os_index`, placed as the
  // contract above says (a far node cannot be reached by first touch: its
  // fallback is kUnplaced). More than NodeMemoryLimit() is kOutOfMemory.
  Result<NodeMemory> AllocateOnNode(int os_index, size_t bytes,
                                    NodeAllocationOptions options = {}) const;

  // Faults in every page of [data, data + bytes) by writing each page's
  // first byte back to itself (contents are kept), from one to four threads
  // (one per 256 MiB, at most as many as `cpus` when it is not empty). Each
  // thread binds itself to `cpus` first when `cpus` is not empty. The pages
  // are touched whatever happens to the binding; the result is Ok when every
  // thread was bound as asked (or none was asked), else the first binding
  // error. REQUIRES: nothing else accesses the range meanwhile.
  Status TouchPages(void* data, size_t bytes, const std::vector<int>& cpus) const;

  // The nodes that currently hold the touched pages of [address, +bytes).
  // kUnsupported where the system cannot tell (no move_pages, XML topology).
  Result<std::vector<int>> NodesHoldingMemory(const void* address, size_t bytes) const;

  // One line per node and PCI device, for logs and tools.
  std::string Describe() const;

 private:
  struct Handle;  // owns the hwloc_topology_t
  Topology();
  static Result<std::shared_ptr<const Topology>> LoadWith(const char* xml_path);
  void Scan();
  std::string NodeList() const;
  Status RequireThisSystem(const char* what) const;
  Status PlaceByFirstTouch(NodeMemory& memory, const std::string& why) const;
  static void AdviseHugePages(NodeMemory& memory);

  std::unique_ptr<Handle> handle_;
  bool this_system_ = false;
  std::vector<NumaNode> nodes_;
  std::vector<Core> cores_;
  std::vector<PciDevice> pci_devices_;

  friend class NodeMemory;
};

}  // namespace tiercache

#endif  // TIERCACHE_TIERS_TOPOLOGY_H_
