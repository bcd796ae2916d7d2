// FaultInjector: faults injected on purpose at tiercache's seams, so tests can
// prove that every failure of a tier or the device ends in an error or a
// transparent retry, never in lost or corrupted data.
//
// A test builds one FaultInjector, adds rules, and attaches it to the seams it
// wants to disturb:
//   - a Tier (Tier::SetFaultInjector): reads, writes and allocations;
//   - a device (FaultInjectingDevice wraps any Device): device allocations
//     and host pinning;
//   - an NVMe I/O engine (IoEngineOptions::faults): io_uring set-up.
// Before its real work, each seam asks Next(site, target) and acts out the
// fault it is handed (the table in docs/reliability.md says how). A rule
// matches a site and a target (a tier's name; empty matches any), lets
// `skip` matching calls pass, then fires on `count` of them (-1: all), each
// with `probability` (drawn from a generator seeded by the constructor, so a
// run is repeatable).
//
// Cost when unused: a seam without an injector pays one relaxed atomic load.
//
// Thread safety: every method may be called concurrently from any thread.
#ifndef TIERCACHE_COMMON_FAULT_INJECTOR_H_
#define TIERCACHE_COMMON_FAULT_INJECTOR_H_

#include <array>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace tiercache {

enum class FaultSite : int {
  kTierRead,            // Tier::Read / ReadAsync
  kTierWrite,           // Tier::Write / WriteAsync
  kTierAllocate,        // Tier::Allocate
  kDeviceAllocate,      // Device::AllocateMemory / MapMemory
  kDeviceRegisterHost,  // Device::RegisterHost (pinning)
  kIoUringSetup,        // the io_uring engine's creation
};
constexpr int kFaultSiteCount = 6;
const char* FaultSiteName(FaultSite site);

enum class FaultAction : int {
  kNone,
  kIoError,      // the call fails with kIoError, nothing moved
  kShortRead,    // half the bytes are read, the rest zeroed, success reported
  kCorruptRead,  // the bytes are read, one is flipped, success reported
  kCorruptPage,  // a byte of the medium itself is flipped (a bad PMEM page), then read
  kTornWrite,    // the first half is written, then kIoError (the device died mid-write)
  kOutOfSpace,   // the call fails with kOutOfSpace (a full disk)
  kOutOfMemory,  // the call fails with kOutOfMemory (a device allocation refused)
  kRefuse,       // the call fails with kPermissionDenied (pinning or io_uring refused)
  kDelay,        // the call sleeps `delay` first, then runs normally (a slow tier)
};
const char* FaultActionName(FaultAction action);

struct FaultRule {
  FaultSite site = FaultSite::kTierRead;
  FaultAction action = FaultAction::kIoError;
  std::string target;    // a tier's name; empty matches every target
  uint64_t skip = 0;     // matching calls let through before the rule fires
  int64_t count = 1;     // calls it then fires on; -1 for every one
  double probability = 1.0;  // chance that an eligible call faults
  std::chrono::microseconds delay{0};  // for kDelay
};

struct InjectedFault {
  FaultAction action = FaultAction::kNone;
  std::chrono::microseconds delay{0};
  explicit operator bool() const { return action != FaultAction::kNone; }
};

class FaultInjector {
 public:
  explicit FaultInjector(uint64_t seed = 1) : random_(seed) {}
  FaultInjector(const FaultInjector&) = delete;
  FaultInjector& operator=(const FaultInjector&) = delete;

  void Add(FaultRule rule);
  void Clear();  // drops every rule; the counters stay

  // The fault this call of `site` on `target` must act out, or kNone. The
  // first matching rule that fires wins.
  InjectedFault Next(FaultSite site, std::string_view target);

  uint64_t injected(FaultSite site) const;  // faults handed out at `site`
  uint64_t injected_total() const;

 private:
  struct Entry {
    FaultRule rule;
    uint64_t seen = 0;
    int64_t fired = 0;
  };
  mutable std::mutex mutex_;
  std::vector<Entry> rules_;                        // GUARDED_BY(mutex_)
  std::mt19937_64 random_;                          // GUARDED_BY(mutex_)
  std::array<uint64_t, kFaultSiteCount> fired_{};   // GUARDED_BY(mutex_)
};

}  // namespace tiercache

#endif  // TIERCACHE_COMMON_FAULT_INJECTOR_H_
