#include "tiers/dram_tier.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <utility>

#include "common/log.h"
#include "common/units.h"

namespace tiercache {
namespace {

uint64_t PageBytes() { return static_cast<uint64_t>(sysconf(_SC_PAGESIZE)); }

// Larger than any host's memory, small enough that rounding cannot overflow.
constexpr uint64_t kMaxCapacity = uint64_t{1} << 56;

uint64_t NanosecondsSince(std::chrono::steady_clock::time_point start) {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now() - start)
                                   .count());
}

Status Prefixed(const std::string& name, const Status& status) {
  return Status(status.code(), name + ": " + status.message());
}

// The node the options ask for, as the header's contract says.
Result<int> ChooseNode(const Topology& topology, const DramTierOptions& options) {
  if (options.numa_node >= 0) {
    TC_RETURN_IF_ERROR(topology.Node(options.numa_node).status());
    return options.numa_node;
  }
  if (options.numa_node != -1) {
    return Status::InvalidArgument("NUMA node " + std::to_string(options.numa_node) +
                                   " does not exist (use -1 for the nearest node)");
  }
  if (!options.pci_bus_id.empty()) return topology.NearestNode(options.pci_bus_id);
  for (const NumaNode& node : topology.numa_nodes()) {
    if (!node.far_memory) return node.os_index;
  }
  return topology.numa_nodes().front().os_index;
}

}  // namespace

Result<std::unique_ptr<DramTier>> DramTier::Create(DramTierOptions options) {
  const std::string name = options.name;
  if (options.capacity == 0) return Status::InvalidArgument(name + ": capacity of 0 bytes");
  if (options.capacity > kMaxCapacity) {
    return Status::InvalidArgument(name + ": capacity of " + FormatBytes(options.capacity) +
                                   " is beyond any host");
  }
  if (!IsPowerOfTwo(options.granularity) || options.granularity > kMaxCapacity) {
    return Status::InvalidArgument(name + ": granularity must be a power of two");
  }
  if (static_cast<bool>(options.pin) != static_cast<bool>(options.unpin)) {
    return Status::InvalidArgument(name + ": the pin and unpin callbacks go together");
  }
  if (!options.topology) {
    Result<std::shared_ptr<const Topology>> topology = Topology::ThisMachine();
    if (!topology.ok()) return Prefixed(name, topology.status());
    options.topology = *topology;
  }
  Result<int> node = ChooseNode(*options.topology, options);
  if (!node.ok()) return Prefixed(name, node.status());
  const uint64_t capacity =
      AlignUp(options.capacity, std::max(options.granularity, PageBytes()));
  Result<NodeMemory> memory = options.topology->AllocateOnNode(
      *node, capacity, NodeAllocationOptions{.allow_membind = options.allow_membind, .huge_pages = options.huge_pages});
  if (!memory.ok()) return Prefixed(name, memory.status());
  std::unique_ptr<DramTier> tier(new DramTier(std::move(options), capacity, std::move(*memory)));
  if (tier->options_.pin) TC_RETURN_IF_ERROR(tier->PinSlabs());
  return tier;
}

DramTier::DramTier(DramTierOptions options, uint64_t capacity, NodeMemory memory)
    : Tier(options.name, TierKind::kDram, capacity, options.granularity),
      options_(std::move(options)),
      memory_(std::move(memory)),
      bytes_(static_cast<unsigned char*>(memory_.data())) {}

DramTier::~DramTier() { UnpinSlabs(); }

// One registration per slab, at creation: pinning is a page-table walk the
// driver pays per byte, so doing it per block would cost it again and again.
Status DramTier::PinSlabs() {
  const uint64_t slab = options_.pin_slab_bytes == 0
                            ? capacity()
                            : AlignUp(std::min(options_.pin_slab_bytes, capacity()), PageBytes());
  const uint64_t count = (capacity() + slab - 1) / slab;
  PrefaultForPinning();
  for (uint64_t offset = 0; offset < capacity(); offset += slab) {
    const size_t length = std::min(slab, capacity() - offset);
    const auto start = std::chrono::steady_clock::now();
    Status status = options_.pin(bytes_ + offset, length);
    pin_nanoseconds_ += NanosecondsSince(start);
    if (!status.ok()) {
      const uint64_t index = offset / slab;
      UnpinSlabs();
      return Status(status.code(), name() + ": pinning slab " + std::to_string(index + 1) +
                                       " of " + std::to_string(count) + " (" +
                                       FormatBytes(length) + " at offset " +
                                       std::to_string(offset) + ") failed: " + status.message());
    }
    slabs_.push_back(Slab{bytes_ + offset, length});
  }
  TC_LOG_INFO("%s: pinned %s on NUMA node %d in %zu slab(s)%s: pre-fault %.1f ms, pin %.1f ms",
              name().c_str(), FormatBytes(capacity()).c_str(), numa_node(), slabs_.size(),
              memory_.huge_pages() ? ", huge pages advised" : "",
              static_cast<double>(prefault_nanoseconds_) / 1e6,
              static_cast<double>(pin_nanoseconds_) / 1e6);
  return Status::Ok();
}

// Registering untouched memory makes the driver fault every page in from the
// calling thread (608 ms per GiB on the H100 host, against 38 ms for memory
// already touched); a few threads near the node do it far faster. Bound
// memory gets its pages on the node whoever touches it, so a thread that
// cannot be bound costs speed only, never placement.
void DramTier::PrefaultForPinning() {
  if (memory_.pages_touched()) return;  // first-touch placement did it
  const auto start = std::chrono::steady_clock::now();
  Result<NumaNode> node = options_.topology->Node(memory_.node());
  const std::vector<int> cpus = node.ok() ? node->cpus : std::vector<int>();
  Status bound = options_.topology->TouchPages(bytes_, capacity(), cpus);
  prefault_nanoseconds_ = NanosecondsSince(start);
  if (!bound.ok()) {
    TC_LOG_DEBUG("%s: pre-fault threads not bound to NUMA node %d: %s", name().c_str(),
                 numa_node(), bound.ToString().c_str());
  }
}

void DramTier::UnpinSlabs() {
  for (auto it = slabs_.rbegin(); it != slabs_.rend(); ++it) {
    Status status = options_.unpin(it->data, it->bytes);
    if (!status.ok()) {
      TC_LOG_WARN("%s: unpinning %s failed: %s", name().c_str(), FormatBytes(it->bytes).c_str(),
                  status.ToString().c_str());
    }
  }
  slabs_.clear();
}

DramTierStats DramTier::dram_stats() const {
  DramTierStats stats;
  stats.numa_node = memory_.node();
  stats.placement = memory_.placement();
  stats.membind_fallback = memory_.placement() != Placement::kBound;
  stats.fallback_reason = memory_.fallback_reason();
  stats.slabs = slabs_.size();
  for (const Slab& slab : slabs_) stats.pinned_bytes += slab.bytes;
  stats.pin_nanoseconds = pin_nanoseconds_;
  stats.prefault_nanoseconds = prefault_nanoseconds_;
  stats.huge_pages = memory_.huge_pages();
  return stats;
}

Status DramTier::ReadImpl(uint64_t address, void* dst, uint64_t bytes) {
  std::memcpy(dst, bytes_ + address, bytes);
  return Status::Ok();
}

Status DramTier::WriteImpl(uint64_t address, const void* src, uint64_t bytes) {
  std::memcpy(bytes_ + address, src, bytes);
  return Status::Ok();
}

void* DramTier::HostAddressImpl(uint64_t address) const { return bytes_ + address; }

}  // namespace tiercache
