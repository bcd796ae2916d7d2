#include "tiers/extent_allocator.h"

#include <iterator>
#include <string>

#include "common/check.h"
#include "common/units.h"

namespace tiercache {

ExtentAllocator::ExtentAllocator(uint64_t capacity, uint64_t granularity)
    : capacity_(capacity), granularity_(granularity) {
  TC_CHECK(IsPowerOfTwo(granularity), "granularity must be a power of two");
  TC_CHECK(capacity % granularity == 0, "capacity must be a multiple of the granularity");
  if (capacity > 0) InsertFree(0, capacity);
}

uint64_t ExtentAllocator::Rounded(uint64_t bytes) const {
  return AlignUp(bytes == 0 ? 1 : bytes, granularity_);
}

void ExtentAllocator::InsertFree(uint64_t offset, uint64_t length) {
  free_by_offset_.emplace(offset, length);
  free_by_size_.emplace(length, offset);
}

void ExtentAllocator::EraseFree(std::map<uint64_t, uint64_t>::iterator it) {
  free_by_size_.erase({it->second, it->first});
  free_by_offset_.erase(it);
}

Result<Extent> ExtentAllocator::Allocate(uint64_t bytes) {
  if (bytes > capacity_) {
    return Status::OutOfSpace("request of " + std::to_string(bytes) +
                              " bytes exceeds capacity " + std::to_string(capacity_));
  }
  const uint64_t need = Rounded(bytes);
  auto fit = free_by_size_.lower_bound({need, 0});
  if (fit == free_by_size_.end()) {
    return Status::OutOfSpace("no free range of " + std::to_string(need) + " bytes (" +
                              std::to_string(capacity_ - used_) + " free in total)");
  }
  const uint64_t offset = fit->second;
  const uint64_t length = fit->first;
  EraseFree(free_by_offset_.find(offset));
  if (length > need) InsertFree(offset + need, length - need);
  live_.emplace(offset, need);
  used_ += need;
  return Extent{offset, bytes};
}

Status ExtentAllocator::Free(const Extent& extent) {
  auto live = live_.find(extent.offset);
  if (live == live_.end() || live->second != Rounded(extent.length)) {
    return Status::InvalidArgument("free of an extent that is not allocated (offset " +
                                   std::to_string(extent.offset) + ")");
  }
  uint64_t offset = live->first;
  uint64_t length = live->second;
  live_.erase(live);
  used_ -= length;
  auto next = free_by_offset_.lower_bound(offset);
  if (next != free_by_offset_.end() && next->first == offset + length) {
    length += next->second;
    EraseFree(next);
  }
  auto prev = free_by_offset_.lower_bound(offset);
  if (prev != free_by_offset_.begin()) {
    --prev;
    if (prev->first + prev->second == offset) {
      offset = prev->first;
      length += prev->second;
      EraseFree(prev);
    }
  }
  InsertFree(offset, length);
  return Status::Ok();
}

Status ExtentAllocator::Reserve(const Extent& extent) {
  const uint64_t need = Rounded(extent.length);
  if (extent.offset % granularity_ != 0 || extent.offset + need > capacity_ ||
      extent.offset + need < extent.offset) {
    return Status::InvalidArgument("extent out of range or misaligned");
  }
  auto it = free_by_offset_.upper_bound(extent.offset);
  if (it == free_by_offset_.begin()) return Status::AlreadyExists("extent overlaps a live one");
  --it;
  const uint64_t free_offset = it->first;
  const uint64_t free_length = it->second;
  if (free_offset + free_length < extent.offset + need) {
    return Status::AlreadyExists("extent overlaps a live one");
  }
  EraseFree(it);
  if (extent.offset > free_offset) InsertFree(free_offset, extent.offset - free_offset);
  const uint64_t end = extent.offset + need;
  if (free_offset + free_length > end) InsertFree(end, free_offset + free_length - end);
  live_.emplace(extent.offset, need);
  used_ += need;
  return Status::Ok();
}

bool ExtentAllocator::IsLive(const Extent& extent) const {
  auto live = live_.find(extent.offset);
  return live != live_.end() && live->second == Rounded(extent.length);
}

uint64_t ExtentAllocator::largest_free() const {
  return free_by_size_.empty() ? 0 : std::prev(free_by_size_.end())->first;
}

}  // namespace tiercache
