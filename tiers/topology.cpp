#include "tiers/topology.h"

#include <hwloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <utility>

#include "common/log.h"
#include "common/units.h"

namespace tiercache {

struct Topology::Handle {
  hwloc_topology_t topology = nullptr;
  ~Handle() {
    if (topology != nullptr) hwloc_topology_destroy(topology);
  }
};

namespace {

// hwloc bitmaps are C objects; this keeps their frees in one place.
struct Bitmap {
  Bitmap() : set(hwloc_bitmap_alloc()) {}
  ~Bitmap() { hwloc_bitmap_free(set); }
  Bitmap(const Bitmap&) = delete;
  Bitmap& operator=(const Bitmap&) = delete;
  hwloc_bitmap_t set;
};

std::vector<int> Members(hwloc_const_bitmap_t set) {
  std::vector<int> members;
  if (set == nullptr || hwloc_bitmap_iszero(set)) return members;
  unsigned index;
  hwloc_bitmap_foreach_begin(index, set) { members.push_back(static_cast<int>(index)); }
  hwloc_bitmap_foreach_end();
  return members;
}

uint64_t PageBytes() {
  static const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  return page;
}

// The operating system refused a binding call: say which way.
Status BindingError(int err, const std::string& what) {
  if (err == EPERM || err == EACCES) return Status::FromErrno(err, what);
  if (err == ENOSYS || err == EXDEV || err == ENOTSUP) {
    return Status::Unsupported(what + ": " + std::strerror(err));
  }
  return Status::FromErrno(err, what);
}

// hwloc's own marks for memory that is not plain DRAM next to CPUs: DAX
// devices onlined as RAM (PMEM, CXL), CXL devices, and the subtypes hwloc
// gives such nodes.
bool MarkedAsDeviceMemory(hwloc_obj_t node) {
  if (hwloc_obj_get_info_by_name(node, "DAXDevice") != nullptr ||
      hwloc_obj_get_info_by_name(node, "CXLDevice") != nullptr) {
    return true;
  }
  if (node->subtype == nullptr) return false;
  for (const char* kind : {"NVM", "SPM", "CXL-DRAM", "CXL-NVM", "HBM", "MCDRAM", "GPUMemory"}) {
    if (std::strcmp(node->subtype, kind) == 0) return true;
  }
  return false;
}

// Linux gives each CPU to exactly one node, so the cpusets of CPU-attached
// nodes are disjoint (hwloc rejects overlapping ones). A CPU-less node
// borrows its locality from others: it gets their cpuset (HMAT initiators,
// distances) or is attached to the machine root. So a node whose cpuset
// covers another unmarked node's cpuset has no CPUs of its own; between equal
// cpusets the lower os index is the one that owns the CPUs.
std::vector<bool> FindFarNodes(const std::vector<hwloc_obj_t>& nodes) {
  std::vector<bool> far(nodes.size(), false);
  for (size_t i = 0; i < nodes.size(); ++i) {
    hwloc_obj_t n = nodes[i];
    if (n->cpuset == nullptr || hwloc_bitmap_iszero(n->cpuset) || MarkedAsDeviceMemory(n)) {
      far[i] = true;
      continue;
    }
    for (size_t j = 0; j < nodes.size() && !far[i]; ++j) {
      hwloc_obj_t m = nodes[j];
      if (i == j || m->cpuset == nullptr || hwloc_bitmap_iszero(m->cpuset) ||
          MarkedAsDeviceMemory(m) || !hwloc_bitmap_isincluded(m->cpuset, n->cpuset)) {
        continue;
      }
      const bool equal = hwloc_bitmap_isequal(m->cpuset, n->cpuset);
      if (!equal || m->os_index < n->os_index) far[i] = true;
    }
  }
  return far;
}

// The first ancestor of an I/O object that has memory attached.
hwloc_obj_t MemoryAncestor(hwloc_obj_t object) {
  hwloc_obj_t ancestor = object->parent;
  while (ancestor != nullptr &&
         (ancestor->nodeset == nullptr || hwloc_bitmap_iszero(ancestor->nodeset))) {
    ancestor = ancestor->parent;
  }
  return ancestor;
}

}  // namespace

const char* PlacementName(Placement placement) {
  switch (placement) {
    case Placement::kBound: return "bound";
    case Placement::kFirstTouch: return "first-touch";
    case Placement::kUnplaced: return "unplaced";
  }
  return "unknown";
}

// ---- NodeMemory -------------------------------------------------------------

NodeMemory::NodeMemory(NodeMemory&& other) noexcept { *this = std::move(other); }

NodeMemory& NodeMemory::operator=(NodeMemory&& other) noexcept {
  if (this != &other) {
    Release();
    owner_ = std::move(other.owner_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    node_ = std::exchange(other.node_, -1);
    placement_ = other.placement_;
    from_hwloc_ = other.from_hwloc_;
    pages_touched_ = std::exchange(other.pages_touched_, false);
    huge_pages_ = std::exchange(other.huge_pages_, false);
    fallback_reason_ = std::move(other.fallback_reason_);
  }
  return *this;
}

NodeMemory::~NodeMemory() { Release(); }

void NodeMemory::Release() {
  if (data_ != nullptr) {
    if (from_hwloc_) {
      hwloc_free(owner_->handle_->topology, data_, size_);
    } else {
      munmap(data_, size_);
    }
  }
  data_ = nullptr;
  size_ = 0;
  pages_touched_ = false;
  owner_.reset();
}

// ---- loading ------------------------------------------------------------------

Topology::Topology() : handle_(std::make_unique<Handle>()) {}
Topology::~Topology() = default;

Result<std::shared_ptr<const Topology>> Topology::ThisMachine() {
  static std::mutex mutex;
  static std::shared_ptr<const Topology> cached;  // GUARDED_BY(mutex)
  std::lock_guard<std::mutex> lock(mutex);
  if (!cached) {
    TC_ASSIGN_OR_RETURN(cached, Load());
  }
  return cached;
}

Result<std::shared_ptr<const Topology>> Topology::Load() { return LoadWith(nullptr); }

Result<std::shared_ptr<const Topology>> Topology::FromXmlFile(const std::string& path) {
  if (access(path.c_str(), R_OK) != 0) {
    return Status::FromErrno(errno, "hwloc XML topology " + path);
  }
  return LoadWith(path.c_str());
}

Result<std::shared_ptr<const Topology>> Topology::LoadWith(const char* xml_path) {
  std::shared_ptr<Topology> topology(new Topology());
  const std::string source = xml_path ? std::string("hwloc XML topology ") + xml_path
                                      : std::string("this machine's topology");
  if (hwloc_topology_init(&topology->handle_->topology) != 0) {
    topology->handle_->topology = nullptr;
    return Status::OutOfMemory("cannot initialise hwloc for " + source);
  }
  hwloc_topology_t t = topology->handle_->topology;
  // PCI devices are what GPUs are found by; bridges and OS devices that lead
  // nowhere important are dropped.
  hwloc_topology_set_io_types_filter(t, HWLOC_TYPE_FILTER_KEEP_IMPORTANT);
  // Linux's own backend reads PCI devices from sysfs. The libpciaccess
  // component finds nothing more (and leaks on each load); the GPU-runtime,
  // OpenCL and display components would initialise drivers just to name
  // devices we find by bus id anyway.
  for (const char* component : {"pci", "cuda", "nvml", "rsmi", "levelzero", "opencl", "gl"}) {
    hwloc_topology_set_components(t, HWLOC_TOPOLOGY_COMPONENTS_FLAG_BLACKLIST, component);
  }
  if (xml_path != nullptr && hwloc_topology_set_xml(t, xml_path) != 0) {
    return Status::InvalidArgument(source + " cannot be used: " + std::strerror(errno));
  }
  if (hwloc_topology_load(t) != 0) {
    return Status::InvalidArgument(source + " is not a valid hwloc topology: " +
                                   std::strerror(errno));
  }
  topology->this_system_ = hwloc_topology_is_thissystem(t) != 0;
  topology->Scan();
  if (topology->nodes_.empty()) {
    return Status::InvalidArgument(source + " has no NUMA node");
  }
  return std::shared_ptr<const Topology>(std::move(topology));
}

void Topology::Scan() {
  hwloc_topology_t t = handle_->topology;
  std::vector<hwloc_obj_t> node_objects;
  for (hwloc_obj_t o = nullptr;
       (o = hwloc_get_next_obj_by_type(t, HWLOC_OBJ_NUMANODE, o)) != nullptr;) {
    node_objects.push_back(o);
  }
  std::sort(node_objects.begin(), node_objects.end(),
            [](hwloc_obj_t a, hwloc_obj_t b) { return a->os_index < b->os_index; });
  const std::vector<bool> far = FindFarNodes(node_objects);
  for (size_t i = 0; i < node_objects.size(); ++i) {
    hwloc_obj_t o = node_objects[i];
    NumaNode node;
    node.os_index = static_cast<int>(o->os_index);
    node.local_memory_bytes = o->attr->numanode.local_memory;
    node.cpus = Members(o->cpuset);
    if (o->cpuset != nullptr) {
      node.core_count = hwloc_get_nbobjs_inside_cpuset_by_type(t, o->cpuset, HWLOC_OBJ_CORE);
    }
    node.far_memory = far[i];
    if (o->subtype != nullptr) node.memory_kind = o->subtype;
    nodes_.push_back(std::move(node));
  }
  for (hwloc_obj_t o = nullptr; (o = hwloc_get_next_obj_by_type(t, HWLOC_OBJ_CORE, o)) != nullptr;) {
    cores_.push_back(Core{static_cast<int>(o->logical_index), Members(o->cpuset)});
  }
  for (hwloc_obj_t o = nullptr; (o = hwloc_get_next_pcidev(t, o)) != nullptr;) {
    const auto& pci = o->attr->pcidev;
    PciDevice device;
    device.bus_id = FormatPciBusId(PciAddress{pci.domain, pci.bus, pci.dev, pci.func});
    device.vendor_id = pci.vendor_id;
    device.device_id = pci.device_id;
    device.class_id = pci.class_id;
    if (hwloc_obj_t ancestor = MemoryAncestor(o)) {
      for (int index : Members(ancestor->nodeset)) device.numa_nodes.push_back(index);
    }
    // CPU-attached nodes first: they are where staging memory should live.
    auto is_far = [this](int index) {
      Result<NumaNode> node = Node(index);
      return node.ok() && node->far_memory;
    };
    std::stable_sort(device.numa_nodes.begin(), device.numa_nodes.end(),
                     [&](int a, int b) { return !is_far(a) && is_far(b); });
    pci_devices_.push_back(std::move(device));
  }
}

// ---- queries --------------------------------------------------------------------

std::vector<int> Topology::FarMemoryNodes() const {
  std::vector<int> far;
  for (const NumaNode& node : nodes_) {
    if (node.far_memory) far.push_back(node.os_index);
  }
  return far;
}

std::string Topology::NodeList() const {
  std::string list;
  for (const NumaNode& node : nodes_) {
    list += (list.empty() ? "" : ", ") + std::to_string(node.os_index);
  }
  return list;
}

Result<NumaNode> Topology::Node(int os_index) const {
  for (const NumaNode& node : nodes_) {
    if (node.os_index == os_index) return node;
  }
  return Status::InvalidArgument("NUMA node " + std::to_string(os_index) +
                                 " does not exist (the topology has node(s) " + NodeList() + ")");
}

Result<PciLocality> Topology::LocatePci(std::string_view bus_id) const {
  TC_ASSIGN_OR_RETURN(PciAddress id, ParsePciBusId(bus_id));
  hwloc_topology_t t = handle_->topology;
  hwloc_obj_t device = hwloc_get_pcidev_by_busid(t, id.domain, id.bus, id.device, id.function);
  const std::string canonical = FormatPciBusId(id);
  if (device == nullptr) {
    return Status::NotFound("PCI device " + canonical + " is not in the topology (it lists " +
                            std::to_string(pci_devices_.size()) + " PCI devices)");
  }
  hwloc_obj_t ancestor = MemoryAncestor(device);
  if (ancestor == nullptr) {
    return Status::NotFound("PCI device " + canonical + " has no NUMA node above it");
  }
  PciLocality locality;
  locality.bus_id = canonical;
  for (const PciDevice& known : pci_devices_) {
    if (known.bus_id == canonical) locality.numa_nodes = known.numa_nodes;
  }
  if (ancestor->cpuset != nullptr) {
    locality.cpus = Members(ancestor->cpuset);
    locality.core_count = hwloc_get_nbobjs_inside_cpuset_by_type(t, ancestor->cpuset,
                                                                 HWLOC_OBJ_CORE);
  }
  return locality;
}

Result<int> Topology::NearestNode(std::string_view bus_id) const {
  TC_ASSIGN_OR_RETURN(PciLocality locality, LocatePci(bus_id));
  if (locality.numa_nodes.empty()) {
    return Status::NotFound("PCI device " + locality.bus_id + " has no NUMA node above it");
  }
  return locality.numa_nodes.front();  // CPU-attached nodes come first
}

// ---- binding ----------------------------------------------------------------------

Status Topology::BindThreadToNode(int os_index) const {
  TC_ASSIGN_OR_RETURN(NumaNode node, Node(os_index));
  if (node.cpus.empty()) {
    return Status::InvalidArgument("NUMA node " + std::to_string(os_index) +
                                   " has no CPUs near it to bind a thread to");
  }
  return BindThreadToCpus(node.cpus);
}

// hwloc "binds" against a topology loaded from XML by doing nothing and
// reporting success; refusing instead keeps a fake binding from looking real.
Status Topology::RequireThisSystem(const char* what) const {
  if (this_system_) return Status::Ok();
  return Status::Unsupported(std::string(what) +
                             " needs this machine's topology; this one was loaded from XML");
}

Status Topology::BindThreadToCpus(const std::vector<int>& cpus) const {
  hwloc_topology_t t = handle_->topology;
  hwloc_const_cpuset_t known = hwloc_topology_get_complete_cpuset(t);
  if (cpus.empty()) return Status::InvalidArgument("binding a thread to an empty CPU set");
  Bitmap set;
  for (int cpu : cpus) {
    if (cpu < 0 || !hwloc_bitmap_isset(known, static_cast<unsigned>(cpu))) {
      return Status::InvalidArgument("CPU " + std::to_string(cpu) + " does not exist");
    }
    hwloc_bitmap_set(set.set, static_cast<unsigned>(cpu));
  }
  TC_RETURN_IF_ERROR(RequireThisSystem("binding a thread"));
  if (hwloc_set_cpubind(t, set.set, HWLOC_CPUBIND_THREAD) != 0) {
    return BindingError(errno, "binding the calling thread to " + std::to_string(cpus.size()) +
                                   " CPU(s)");
  }
  return Status::Ok();
}

// ---- allocation -----------------------------------------------------------------

Result<NodeMemory> Topology::AllocateOnNode(int os_index, size_t bytes,
                                            NodeAllocationOptions options) const {
  if (bytes == 0) return Status::InvalidArgument("allocation of 0 bytes on a NUMA node");
  TC_ASSIGN_OR_RETURN(MemoryLimit limit, NodeMemoryLimit(os_index));
  if (limit.bytes > 0 && bytes > limit.bytes) {
    return Status::OutOfMemory("cannot place " + FormatBytes(bytes) + " on NUMA node " +
                               std::to_string(os_index) + ", which has " +
                               FormatBytes(limit.bytes) + " (" + limit.source + ")");
  }
  NodeMemory memory;
  memory.owner_ = shared_from_this();
  memory.node_ = os_index;
  memory.size_ = AlignUp(bytes, PageBytes());
  std::string why;
  if (!options.allow_membind) {
    why = "memory binding disabled by the caller";
  } else if (Status status = RequireThisSystem("memory binding"); !status.ok()) {
    why = status.message();
  } else {
    Bitmap nodeset;
    hwloc_bitmap_only(nodeset.set, static_cast<unsigned>(os_index));
    // STRICT: without it hwloc silently returns unbound memory, and the
    // fallback would be invisible.
    errno = 0;
    void* data = hwloc_alloc_membind(
        handle_->topology, memory.size_, nodeset.set, HWLOC_MEMBIND_BIND,
        HWLOC_MEMBIND_STRICT | HWLOC_MEMBIND_BYNODESET | HWLOC_MEMBIND_NOCPUBIND);
    if (data != nullptr) {
      memory.data_ = data;
      memory.from_hwloc_ = true;
      memory.placement_ = Placement::kBound;
      if (options.huge_pages) AdviseHugePages(memory);
      return memory;
    }
    why = std::string("binding to NUMA node ") + std::to_string(os_index) + " refused (" +
          std::strerror(errno) + ")";
  }
  void* data = mmap(nullptr, memory.size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                    -1, 0);
  if (data == MAP_FAILED) {
    return Status::OutOfMemory("cannot map " + FormatBytes(memory.size_) + " for NUMA node " +
                               std::to_string(os_index) + ": " + std::strerror(errno));
  }
  memory.data_ = data;
  if (options.huge_pages) AdviseHugePages(memory);
  TC_RETURN_IF_ERROR(PlaceByFirstTouch(memory, why));
  RecordFallback("numa.membind", memory.fallback_reason_);
  return memory;
}

// Before the first touch, so faults fill whole 2 MiB pages. Refused (THP
// disabled, EINVAL) costs nothing but the advice.
void Topology::AdviseHugePages(NodeMemory& memory) {
  memory.huge_pages_ = madvise(memory.data_, memory.size_, MADV_HUGEPAGE) == 0;
  if (!memory.huge_pages_) {
    TC_LOG_DEBUG("transparent huge pages refused for %s: %s", FormatBytes(memory.size_).c_str(),
                 std::strerror(errno));
  }
}

// Linux puts a page on the node of the CPU that first writes it, so threads
// bound to the node's CPUs touching every page place the memory there.
Status Topology::PlaceByFirstTouch(NodeMemory& memory, const std::string& why) const {
  TC_ASSIGN_OR_RETURN(NumaNode node, Node(memory.node_));
  memory.pages_touched_ = true;
  // A page goes to the toucher's own node, so a node without CPUs of its
  // own (CXL, PMEM as RAM) cannot be reached this way: touching from the
  // CPUs near it would fill the DRAM node next to it instead.
  if (node.cpus.empty() || node.far_memory) {
    TC_RETURN_IF_ERROR(TouchPages(memory.data_, memory.size_, {}));
    memory.placement_ = Placement::kUnplaced;
    memory.fallback_reason_ =
        why + "; the node has no CPUs of its own to touch its pages from, pages placed by the kernel";
    return Status::Ok();
  }
  Status bound = TouchPages(memory.data_, memory.size_, node.cpus);
  if (bound.ok()) {
    memory.placement_ = Placement::kFirstTouch;
    memory.fallback_reason_ = why + "; pages placed by first touch from the node's CPUs";
  } else {
    memory.placement_ = Placement::kUnplaced;
    memory.fallback_reason_ = why + "; binding the touching thread failed too (" +
                              bound.ToString() + "), pages placed by the kernel";
  }
  return Status::Ok();
}

Result<std::vector<int>> Topology::NodesHoldingMemory(const void* address, size_t bytes) const {
  if (address == nullptr || bytes == 0) {
    return Status::InvalidArgument("asking where an empty range lives");
  }
  TC_RETURN_IF_ERROR(RequireThisSystem("locating memory"));
  Bitmap nodeset;
  if (hwloc_get_area_memlocation(handle_->topology, address, bytes, nodeset.set,
                                 HWLOC_MEMBIND_BYNODESET) != 0) {
    return BindingError(errno, "querying the NUMA location of memory");
  }
  return Members(nodeset.set);
}

std::string Topology::Describe() const {
  std::string text;
  for (const NumaNode& node : nodes_) {
    text += "numa node " + std::to_string(node.os_index) + ": " +
            FormatBytes(node.local_memory_bytes) + ", " + std::to_string(node.cpus.size()) +
            " cpus, " + std::to_string(node.core_count) + " cores" +
            (node.far_memory ? ", far memory" : "") +
            (node.memory_kind.empty() ? "" : " (" + node.memory_kind + ")") + "\n";
  }
  for (const PciDevice& device : pci_devices_) {
    char ids[48];
    std::snprintf(ids, sizeof(ids), " [%04x:%04x] class %04x, nodes", device.vendor_id,
                  device.device_id, device.class_id);
    text += "pci " + device.bus_id + ids;
    for (int node : device.numa_nodes) text += " " + std::to_string(node);
    text += "\n";
  }
  return text;
}

}  // namespace tiercache
