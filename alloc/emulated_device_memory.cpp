// EmulatedDevice: device memory (aligned host allocations), the emulated
// virtual-memory API (reserved ranges, map and unmap), host registration,
// and the range checks every copy makes. Streams, events and the work they
// run are in emulated_device.cpp.
#include <cstdlib>
#include <cstring>

#include <sys/mman.h>

#include "alloc/emulated_device.h"
#include "common/units.h"

namespace tiercache {
namespace {

constexpr size_t kDeviceAlignment = 256;  // what cudaMalloc guarantees

bool Overlaps(const std::map<uintptr_t, size_t>& ranges, const void* pointer, size_t bytes) {
  uintptr_t address = reinterpret_cast<uintptr_t>(pointer);
  auto it = ranges.lower_bound(address + (bytes == 0 ? 1 : bytes));
  if (it == ranges.begin()) return false;
  --it;
  return address < it->first + it->second;
}

}  // namespace

// The entry of `ranges` containing [pointer, pointer + bytes), or end().
std::map<uintptr_t, size_t>::const_iterator EmulatedDevice::FindContaining(
    const std::map<uintptr_t, size_t>& ranges, const void* pointer, size_t bytes) {
  uintptr_t address = reinterpret_cast<uintptr_t>(pointer);
  auto it = ranges.upper_bound(address);
  if (it == ranges.begin()) return ranges.end();
  --it;
  uintptr_t end = it->first + it->second;
  if (address >= end || bytes > end - address) return ranges.end();
  return it;
}

// ---- memory ------------------------------------------------------------------

Result<void*> EmulatedDevice::AllocateMemory(size_t bytes) {
  if (bytes == 0) return Status::InvalidArgument("AllocateMemory of 0 bytes");
  if (bytes > info_.total_memory) {
    return Status::OutOfMemory("AllocateMemory of " + FormatBytes(bytes) +
                               " exceeds the emulated device's " + FormatBytes(info_.total_memory));
  }
  size_t rounded = AlignUp(bytes, kDeviceAlignment);
  {
    std::lock_guard<std::shared_mutex> lock(memory_mutex_);
    if (allocated_bytes_ + rounded > info_.total_memory) {
      return Status::OutOfMemory("emulated device memory exhausted: " + FormatBytes(allocated_bytes_) +
                                 " of " + FormatBytes(info_.total_memory) + " in use, asked " +
                                 FormatBytes(bytes));
    }
    allocated_bytes_ += rounded;  // reserved before the host allocation, returned on failure
  }
  void* pointer = std::aligned_alloc(kDeviceAlignment, rounded);
  std::lock_guard<std::shared_mutex> lock(memory_mutex_);
  if (pointer == nullptr) {
    allocated_bytes_ -= rounded;
    return Status::OutOfMemory("host allocation of " + FormatBytes(rounded) + " failed");
  }
  allocations_[reinterpret_cast<uintptr_t>(pointer)] = rounded;
  return pointer;
}

Status EmulatedDevice::FreeMemory(void* pointer) {
  size_t bytes = 0;
  {
    std::lock_guard<std::shared_mutex> lock(memory_mutex_);
    auto it = allocations_.find(reinterpret_cast<uintptr_t>(pointer));
    if (it == allocations_.end() ||
        FindContaining(reservations_, pointer, 1) != reservations_.end()) {
      return Status::InvalidArgument("FreeMemory of a pointer that is not a live device allocation");
    }
    bytes = it->second;
    allocations_.erase(it);  // later enqueues touching it now fail
  }
  // Work enqueued before the erase may still use the memory: drain it.
  Status synced = SynchronizeAll();
  std::free(pointer);
  std::lock_guard<std::shared_mutex> lock(memory_mutex_);
  allocated_bytes_ -= bytes;
  return synced;
}

// ---- virtual memory -------------------------------------------------------------

Result<void*> EmulatedDevice::ReserveAddressRange(size_t bytes) {
  if (bytes == 0 || bytes % kMappingGranularity != 0) {
    return Status::InvalidArgument("ReserveAddressRange of " + FormatBytes(bytes) +
                                   ": need a positive multiple of the granularity");
  }
  // One extra granule so the range can start on a granule boundary.
  size_t span = bytes + kMappingGranularity;
  void* raw = mmap(nullptr, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (raw == MAP_FAILED) return Status::OutOfMemory("cannot reserve " + FormatBytes(bytes) + " of addresses");
  uintptr_t start = AlignUp(reinterpret_cast<uintptr_t>(raw), kMappingGranularity);
  uintptr_t end = start + bytes;
  if (start > reinterpret_cast<uintptr_t>(raw)) munmap(raw, start - reinterpret_cast<uintptr_t>(raw));
  uintptr_t raw_end = reinterpret_cast<uintptr_t>(raw) + span;
  if (raw_end > end) munmap(reinterpret_cast<void*>(end), raw_end - end);
  std::lock_guard<std::shared_mutex> lock(memory_mutex_);
  reservations_[start] = bytes;
  return reinterpret_cast<void*>(start);
}

Status EmulatedDevice::FreeAddressRange(void* base) {
  size_t bytes = 0;
  {
    std::lock_guard<std::shared_mutex> lock(memory_mutex_);
    auto it = reservations_.find(reinterpret_cast<uintptr_t>(base));
    if (it == reservations_.end()) return Status::InvalidArgument("FreeAddressRange of an unreserved address");
    bytes = it->second;
  }
  // Whatever is still mapped goes first (UnmapMemory drains the streams).
  for (;;) {
    uintptr_t start = 0;
    size_t mapped = 0;
    {
      std::shared_lock<std::shared_mutex> lock(memory_mutex_);
      auto it = allocations_.lower_bound(reinterpret_cast<uintptr_t>(base));
      if (it != allocations_.end() && it->first < reinterpret_cast<uintptr_t>(base) + bytes) {
        start = it->first;
        mapped = it->second;
      }
    }
    if (mapped == 0) break;
    TC_RETURN_IF_ERROR(UnmapMemory(reinterpret_cast<void*>(start), mapped));
  }
  std::lock_guard<std::shared_mutex> lock(memory_mutex_);
  reservations_.erase(reinterpret_cast<uintptr_t>(base));
  munmap(base, bytes);
  return Status::Ok();
}

Status EmulatedDevice::MapMemory(void* address, size_t bytes) {
  uintptr_t start = reinterpret_cast<uintptr_t>(address);
  if (bytes == 0 || bytes % kMappingGranularity != 0 || start % kMappingGranularity != 0) {
    return Status::InvalidArgument("MapMemory: address and size must be multiples of the granularity");
  }
  std::lock_guard<std::shared_mutex> lock(memory_mutex_);
  if (FindContaining(reservations_, address, bytes) == reservations_.end()) {
    return Status::InvalidArgument("MapMemory outside a reserved address range");
  }
  if (Overlaps(allocations_, address, bytes)) return Status::InvalidArgument("MapMemory over mapped memory");
  if (allocated_bytes_ + bytes > info_.total_memory) {
    return Status::OutOfMemory("emulated device memory exhausted: " + FormatBytes(allocated_bytes_) +
                               " of " + FormatBytes(info_.total_memory) + " in use, asked " +
                               FormatBytes(bytes));
  }
  if (mprotect(address, bytes, PROT_READ | PROT_WRITE) != 0) {
    return Status::OutOfMemory("mprotect of " + FormatBytes(bytes) + " failed");
  }
  allocated_bytes_ += bytes;
  // Adjacent mappings join, so a block spanning two of them is one range.
  uintptr_t end = start + bytes;
  auto reservation = FindContaining(reservations_, address, bytes);
  if (auto next = allocations_.find(end);
      next != allocations_.end() && end < reservation->first + reservation->second) {
    end += next->second;
    allocations_.erase(next);
  }
  auto after = allocations_.lower_bound(start);
  if (after != allocations_.begin()) {
    auto before = std::prev(after);
    if (before->first + before->second == start && before->first >= reservation->first) {
      start = before->first;
      allocations_.erase(before);
    }
  }
  allocations_[start] = end - start;
  return Status::Ok();
}

Status EmulatedDevice::UnmapMemory(void* address, size_t bytes) {
  uintptr_t start = reinterpret_cast<uintptr_t>(address);
  if (bytes == 0 || bytes % kMappingGranularity != 0 || start % kMappingGranularity != 0) {
    return Status::InvalidArgument("UnmapMemory: address and size must be multiples of the granularity");
  }
  {
    std::lock_guard<std::shared_mutex> lock(memory_mutex_);
    if (FindContaining(reservations_, address, bytes) == reservations_.end()) {
      return Status::InvalidArgument("UnmapMemory outside a reserved address range");
    }
    auto it = FindContaining(allocations_, address, bytes);
    if (it == allocations_.end()) return Status::InvalidArgument("UnmapMemory of memory not mapped");
    uintptr_t range = it->first;
    size_t range_bytes = it->second;
    allocations_.erase(it);  // later enqueues touching it now fail
    if (start > range) allocations_[range] = start - range;
    if (start + bytes < range + range_bytes) allocations_[start + bytes] = range + range_bytes - start - bytes;
  }
  Status synced = SynchronizeAll();  // work enqueued before may still use it
  madvise(address, bytes, MADV_DONTNEED);
  mprotect(address, bytes, PROT_NONE);
  std::lock_guard<std::shared_mutex> lock(memory_mutex_);
  allocated_bytes_ -= bytes;
  return synced;
}

Result<uint64_t> EmulatedDevice::FreeMemoryBytes() {
  std::shared_lock<std::shared_mutex> lock(memory_mutex_);
  return info_.total_memory - allocated_bytes_;
}

Status EmulatedDevice::RegisterHost(void* pointer, size_t bytes) {
  if (pointer == nullptr || bytes == 0) return Status::InvalidArgument("RegisterHost of an empty range");
  std::lock_guard<std::shared_mutex> lock(memory_mutex_);
  if (Overlaps(allocations_, pointer, bytes)) {
    return Status::InvalidArgument("RegisterHost of device memory");
  }
  if (Overlaps(registered_, pointer, bytes)) {
    return Status::AlreadyExists("RegisterHost: range overlaps a registered range");
  }
  registered_[reinterpret_cast<uintptr_t>(pointer)] = bytes;
  return Status::Ok();
}

Status EmulatedDevice::UnregisterHost(void* pointer) {
  std::lock_guard<std::shared_mutex> lock(memory_mutex_);
  if (registered_.erase(reinterpret_cast<uintptr_t>(pointer)) == 0) {
    return Status::InvalidArgument("UnregisterHost of a pointer that was not registered");
  }
  return Status::Ok();
}

bool EmulatedDevice::IsDeviceRange(const void* pointer, size_t bytes) const {
  std::shared_lock<std::shared_mutex> lock(memory_mutex_);
  return FindContaining(allocations_, pointer, bytes) != allocations_.end();
}

bool EmulatedDevice::IsHostRegistered(const void* pointer, size_t bytes) const {
  std::shared_lock<std::shared_mutex> lock(memory_mutex_);
  return FindContaining(registered_, pointer, bytes) != registered_.end();
}

// REQUIRES: memory_mutex_ held (shared is enough).
Status EmulatedDevice::CheckDeviceRange(const void* pointer, size_t bytes, const char* what) const {
  if (FindContaining(allocations_, pointer, bytes) == allocations_.end()) {
    return Status::InvalidArgument(std::string(what) +
                                   " is not inside a live device allocation (foreign pointer, "
                                   "overrun or use after free)");
  }
  return Status::Ok();
}

// REQUIRES: memory_mutex_ held (shared is enough).
Status EmulatedDevice::CheckHostRange(const void* pointer, size_t bytes, const char* what) {
  if (pointer == nullptr) return Status::InvalidArgument(std::string(what) + " is null");
  if (Overlaps(allocations_, pointer, bytes)) {
    return Status::InvalidArgument(std::string(what) + " is device memory, not host memory");
  }
  if (FindContaining(registered_, pointer, bytes) != registered_.end()) {
    pinned_copies_.fetch_add(1, std::memory_order_relaxed);
  } else {
    pageable_copies_.fetch_add(1, std::memory_order_relaxed);
  }
  return Status::Ok();
}

}  // namespace tiercache
