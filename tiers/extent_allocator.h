// ExtentAllocator: hands out byte ranges of a linear address space
// [0, capacity) in multiples of a granularity, best fit, coalescing on free.
//
// Every tier is such an address space (a DRAM slab, a PMEM mapping, an NVMe
// file), so the Tier base class owns one of these.
//
// Thread safety: none; the owner serialises calls (Tier holds its mutex).
#ifndef TIERCACHE_TIERS_EXTENT_ALLOCATOR_H_
#define TIERCACHE_TIERS_EXTENT_ALLOCATOR_H_

#include <cstdint>
#include <map>
#include <set>
#include <utility>

#include "common/status.h"

namespace tiercache {

// A byte range of a tier. `offset` is tier-absolute; `length` is what the
// caller asked for (the space reserved is rounded up to the granularity).
struct Extent {
  uint64_t offset = 0;
  uint64_t length = 0;
  bool operator==(const Extent& o) const { return offset == o.offset && length == o.length; }
};

class ExtentAllocator {
 public:
  // REQUIRES: granularity is a power of two; capacity is a multiple of it.
  ExtentAllocator(uint64_t capacity, uint64_t granularity);

  // Best fit; kOutOfSpace when no free range is large enough.
  Result<Extent> Allocate(uint64_t bytes);
  // kInvalidArgument when `extent` is not exactly a live allocation.
  Status Free(const Extent& extent);
  // Marks a specific range as allocated (recovery of a persistent index).
  // kAlreadyExists when it overlaps anything already allocated.
  Status Reserve(const Extent& extent);

  // True when `extent` is exactly a live allocation.
  bool IsLive(const Extent& extent) const;

  uint64_t capacity() const { return capacity_; }
  uint64_t granularity() const { return granularity_; }
  uint64_t used() const { return used_; }            // reserved bytes, rounded
  uint64_t largest_free() const;
  size_t live_extents() const { return live_.size(); }

 private:
  uint64_t Rounded(uint64_t bytes) const;
  void InsertFree(uint64_t offset, uint64_t length);
  void EraseFree(std::map<uint64_t, uint64_t>::iterator it);

  uint64_t capacity_;
  uint64_t granularity_;
  uint64_t used_ = 0;
  std::map<uint64_t, uint64_t> free_by_offset_;            // offset -> length
  std::set<std::pair<uint64_t, uint64_t>> free_by_size_;   // (length, offset)
  std::map<uint64_t, uint64_t> live_;                      // offset -> rounded length
};

}  // namespace tiercache

#endif  // TIERCACHE_TIERS_EXTENT_ALLOCATOR_H_
