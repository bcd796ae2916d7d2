// MemoryTier: a tier over plain heap memory. For tests and for the emulated
// set-ups where no NUMA binding or file is wanted; the DRAM tier is the
// product's host-memory tier.
//
// Thread safety: as Tier.
#ifndef TIERCACHE_TIERS_MEMORY_TIER_H_
#define TIERCACHE_TIERS_MEMORY_TIER_H_

#include <memory>
#include <string>

#include "tiers/tier.h"

namespace tiercache {

class MemoryTier : public Tier {
 public:
  // `capacity` is rounded up to `granularity` (a power of two).
  static Result<std::unique_ptr<MemoryTier>> Create(std::string name, uint64_t capacity,
                                                    uint64_t granularity = 64);
  ~MemoryTier() override;

 protected:
  Status ReadImpl(uint64_t address, void* dst, uint64_t bytes) override;
  Status WriteImpl(uint64_t address, const void* src, uint64_t bytes) override;
  void* HostAddressImpl(uint64_t address) const override;

 private:
  MemoryTier(std::string name, uint64_t capacity, uint64_t granularity, unsigned char* bytes);
  unsigned char* bytes_;
};

}  // namespace tiercache

#endif  // TIERCACHE_TIERS_MEMORY_TIER_H_
