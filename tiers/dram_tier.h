// DramTier: host memory on one NUMA node, optionally page-locked for DMA.
//
// Contract
// - The tier's bytes are one contiguous region from
//   Topology::AllocateOnNode(): bound to the chosen node with hwloc, or, when
//   the system refuses binding, placed by first touch (the "numa.membind"
//   fallback, visible in dram_stats().placement). Byte-addressable:
//   HostAddress() returns a pointer into the region.
// - The node is `numa_node` when >= 0 (an unknown node is kInvalidArgument),
//   else the node nearest to `pci_bus_id` (the GPU the memory stages for),
//   else the topology's first CPU-attached node.
// - Pinning: when `pin` is set, the region is registered in slabs of
//   `pin_slab_bytes` (0: one slab), each exactly once at creation and
//   unregistered with `unpin` on destruction. Pinning costs ~38 ms per GiB
//   (cudaHostRegister on an H100 host), so it is paid once per slab, never
//   per block; the time is in dram_stats(). Before the first `pin` the
//   region's pages are faulted in from a few threads near the node
//   (Topology::TouchPages), unless first-touch placement already did: the
//   driver would fault them from one thread, at 608 ms per GiB. The tier
//   does not depend on the
//   device layer: the runtime passes Device::RegisterHost / UnregisterHost in
//   as callbacks. A failing `pin` fails Create() with the callback's code.
//
// Thread safety: as Tier; dram_stats() and the accessors may be called from
// any thread.
#ifndef TIERCACHE_TIERS_DRAM_TIER_H_
#define TIERCACHE_TIERS_DRAM_TIER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tiers/tier.h"
#include "tiers/topology.h"

namespace tiercache {

struct DramTierOptions {
  std::string name = "dram";
  uint64_t capacity = 0;         // rounded up to granularity and the page size
  int numa_node = -1;            // -1: nearest to pci_bus_id, else the first CPU node
  std::string pci_bus_id;        // "0000:00:06.0", consulted when numa_node is -1
  uint64_t granularity = 4096;   // a power of two; extents are multiples of it
  // Page-locking: both or neither. pin(p, n) registers [p, p + n);
  // unpin(p, n) undoes it with the same arguments.
  std::function<Status(void*, size_t)> pin;
  std::function<Status(void*, size_t)> unpin;
  uint64_t pin_slab_bytes = 0;   // 0: the whole region is one slab
  // The topology to place memory with; null means Topology::ThisMachine().
  std::shared_ptr<const Topology> topology;
  // false skips hwloc binding (first-touch placement), as a refusal would.
  bool allow_membind = true;
  // Transparent huge pages for the region (NodeAllocationOptions::huge_pages).
  bool huge_pages = true;
};

// What the DRAM tier adds to TierStats: where its memory is and what pinning
// cost.
struct DramTierStats {
  int numa_node = -1;
  Placement placement = Placement::kUnplaced;
  bool membind_fallback = false;   // placement != kBound
  std::string fallback_reason;     // empty unless membind_fallback
  uint64_t slabs = 0;              // pinned slabs (0 when not pinned)
  uint64_t pinned_bytes = 0;
  uint64_t pin_nanoseconds = 0;    // total time spent in `pin`
  // Time spent faulting the region in before pinning; 0 when not pinned or
  // when first-touch placement had touched every page already.
  uint64_t prefault_nanoseconds = 0;
  bool huge_pages = false;         // the kernel accepted the huge-page advice
};

class DramTier : public Tier {
 public:
  static Result<std::unique_ptr<DramTier>> Create(DramTierOptions options);
  ~DramTier() override;

  int numa_node() const { return memory_.node(); }
  bool pinned() const { return !slabs_.empty(); }
  DramTierStats dram_stats() const;

 protected:
  Status ReadImpl(uint64_t address, void* dst, uint64_t bytes) override;
  Status WriteImpl(uint64_t address, const void* src, uint64_t bytes) override;
  void* HostAddressImpl(uint64_t address) const override;

 private:
  struct Slab {
    void* data;
    size_t bytes;
  };

  DramTier(DramTierOptions options, uint64_t capacity, NodeMemory memory);
  Status PinSlabs();
  void PrefaultForPinning();
  void UnpinSlabs();

  DramTierOptions options_;
  NodeMemory memory_;
  unsigned char* bytes_;
  std::vector<Slab> slabs_;  // pinned, in order; written only during Create()
  uint64_t pin_nanoseconds_ = 0;       // written only during Create()
  uint64_t prefault_nanoseconds_ = 0;  // written only during Create()
};

}  // namespace tiercache

#endif  // TIERCACHE_TIERS_DRAM_TIER_H_
