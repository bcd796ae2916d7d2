#include "tiers/memory_tier.h"

#include <cstdlib>
#include <cstring>
#include <new>

#include "common/units.h"

namespace tiercache {

Result<std::unique_ptr<MemoryTier>> MemoryTier::Create(std::string name, uint64_t capacity,
                                                       uint64_t granularity) {
  if (!IsPowerOfTwo(granularity)) {
    return Status::InvalidArgument(name + ": granularity must be a power of two");
  }
  if (capacity == 0) return Status::InvalidArgument(name + ": capacity of 0 bytes");
  const uint64_t rounded = AlignUp(capacity, granularity);
  void* bytes = std::calloc(1, rounded);
  if (bytes == nullptr) {
    return Status::OutOfMemory(name + ": cannot allocate " + FormatBytes(rounded));
  }
  return std::unique_ptr<MemoryTier>(
      new MemoryTier(std::move(name), rounded, granularity, static_cast<unsigned char*>(bytes)));
}

MemoryTier::MemoryTier(std::string name, uint64_t capacity, uint64_t granularity,
                       unsigned char* bytes)
    : Tier(std::move(name), TierKind::kMemory, capacity, granularity), bytes_(bytes) {}

MemoryTier::~MemoryTier() { std::free(bytes_); }

Status MemoryTier::ReadImpl(uint64_t address, void* dst, uint64_t bytes) {
  std::memcpy(dst, bytes_ + address, bytes);
  return Status::Ok();
}

Status MemoryTier::WriteImpl(uint64_t address, const void* src, uint64_t bytes) {
  std::memcpy(bytes_ + address, src, bytes);
  return Status::Ok();
}

void* MemoryTier::HostAddressImpl(uint64_t address) const { return bytes_ + address; }

}  // namespace tiercache
