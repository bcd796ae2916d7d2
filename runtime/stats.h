// RuntimeStats: what the cache runtime did, per tier, for engines and for
// tiercache-bench to read.
//
// Each tier the runtime uses (the GPU cache, DRAM, PMEM, NVMe, or a test
// tier) gets a slot. For a tier T:
// - hits / misses: requests for a block at T that found it there, or had to
//   go further down (for the GPU: acquires; for a host cache tier: fetches);
// - bytes_in / bytes_out: bytes the runtime moved into / out of T;
// - evictions: blocks that left T to make room;
// - stall_ns: time streams waited on transfers out of (or, for the GPU,
//   into) T, measured from the acquire that found the transfer unfinished
//   to the transfer's completion;
// - busy_ns: wall time during which at least one transfer touching T was in
//   flight; bytes / busy_ns is the achieved bandwidth;
// - errors: failed transfers (I/O errors, checksum mismatches).
//
// Thread safety: all methods may be called concurrently. Counters are
// relaxed atomics; a snapshot is not an atomic cut across counters.
#ifndef TIERCACHE_RUNTIME_STATS_H_
#define TIERCACHE_RUNTIME_STATS_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "runtime/json.h"

namespace tiercache {

struct TierTraffic {
  std::string name;
  uint64_t hits = 0;
  uint64_t misses = 0;
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  uint64_t evictions = 0;
  uint64_t stall_ns = 0;
  uint64_t busy_ns = 0;
  uint64_t transfers = 0;
  uint64_t errors = 0;
  // Encoded (compressed) uploads read from this tier: how many, the encoded
  // bytes read, the bytes they delivered decoded, and the sum of their
  // times from start to last decode (not in AppendJson's output).
  uint64_t encoded_uploads = 0;
  uint64_t encoded_bytes = 0;
  uint64_t decoded_bytes = 0;
  uint64_t encoded_ns = 0;
  // (bytes_in + bytes_out) / busy time, in GB/s (1e9 bytes); 0 when idle.
  double bandwidth_gbps() const;
};

class RuntimeStats {
 public:
  static constexpr int kMaxTiers = 8;

  // Adds a slot and returns its index. REQUIRES: fewer than kMaxTiers slots.
  int AddTier(std::string name);
  int tier_count() const { return count_.load(std::memory_order_acquire); }

  void Hit(int tier) { Add(tier, &Slot::hits, 1); }
  void Miss(int tier) { Add(tier, &Slot::misses, 1); }
  void BytesIn(int tier, uint64_t bytes) { Add(tier, &Slot::bytes_in, bytes); }
  void BytesOut(int tier, uint64_t bytes) { Add(tier, &Slot::bytes_out, bytes); }
  void Eviction(int tier) { Add(tier, &Slot::evictions, 1); }
  void Stall(int tier, uint64_t ns) { Add(tier, &Slot::stall_ns, ns); }
  void Error(int tier) { Add(tier, &Slot::errors, 1); }
  // One encoded upload from `tier` completed.
  void EncodedUpload(int tier, uint64_t encoded_bytes, uint64_t decoded_bytes, uint64_t ns) {
    Add(tier, &Slot::encoded_uploads, 1);
    Add(tier, &Slot::encoded_bytes, encoded_bytes);
    Add(tier, &Slot::decoded_bytes, decoded_bytes);
    Add(tier, &Slot::encoded_ns, ns);
  }

  // Busy-time accounting: every TransferBegin is matched by one TransferEnd.
  void TransferBegin(int tier, uint64_t now_ns);
  void TransferEnd(int tier, uint64_t now_ns);

  // (bytes_in + bytes_out) per second of busy time, in bytes/s; 0 before
  // any transfer ended. Two relaxed loads: cheap enough for the data path.
  double Bandwidth(int tier) const;
  TierTraffic Snapshot(int tier) const;
  std::vector<TierTraffic> SnapshotAll() const;
  // Appends {"name":..,"hits":..,...,"bandwidth_gbps":..} for every slot as
  // an array value (the caller has written the key).
  void AppendJson(JsonWriter* writer) const;

 private:
  struct Slot {
    std::string name;
    std::atomic<uint64_t> hits{0}, misses{0}, bytes_in{0}, bytes_out{0}, evictions{0};
    std::atomic<uint64_t> stall_ns{0}, busy_ns{0}, transfers{0}, errors{0};
    std::atomic<uint64_t> encoded_uploads{0}, encoded_bytes{0}, decoded_bytes{0}, encoded_ns{0};
    std::mutex busy_mutex;
    uint64_t in_flight = 0;     // GUARDED_BY(busy_mutex)
    uint64_t busy_since = 0;    // GUARDED_BY(busy_mutex)
  };
  void Add(int tier, std::atomic<uint64_t> Slot::*field, uint64_t value) {
    if (tier >= 0 && tier < tier_count()) {
      (slots_[tier].*field).fetch_add(value, std::memory_order_relaxed);
    }
  }

  std::array<Slot, kMaxTiers> slots_;
  std::atomic<int> count_{0};
  std::mutex add_mutex_;
};

// Monotonic clock in nanoseconds (steady_clock).
uint64_t MonotonicNanoseconds();

}  // namespace tiercache

#endif  // TIERCACHE_RUNTIME_STATS_H_
