// Link probes: the peak bandwidth of each link a replay uses, measured on
// this machine at the start of the run, so the report can say how close the
// replay came to what the hardware does.
//
// A probe moves 64 MiB in four timed rounds after an untimed warm-up (page
// faults, first-touch, queue set-up) and keeps the best round: the peak is
// what the link can do, and a shared machine only ever makes a round slower.
//
// Thread safety: one probe at a time per tier or stream.
#ifndef TIERCACHE_TOOLS_BENCH_LINK_PROBE_H_
#define TIERCACHE_TOOLS_BENCH_LINK_PROBE_H_

#include <cstdint>
#include <functional>

#include "alloc/device.h"
#include "tiers/tier.h"

namespace tiercache::bench {

constexpr uint64_t kProbeBytes = 64ull << 20;

// Best bytes/s of `move_once` (which moves `bytes_each` and returns false on
// failure); 0 when it fails.
double BestRate(const std::function<bool()>& move_once, uint64_t bytes_each);

// Reads of a scratch extent of `bytes` in `tier` into `buffer` (which has at
// least `bytes`), in pieces of `chunk` bytes with up to `in_flight` of them
// outstanding (ReadAsync: the tier's own engine and queue), as the runtime
// reads a slow home (chunks of chunk_bytes into a ring of staging_buffers
// slots). 0 when the tier has no room or the I/O fails. REQUIRES: chunk
// divides bytes; in_flight >= 1.
double ProbeTierRead(Tier* tier, void* buffer, uint64_t bytes, uint64_t chunk = 0,
                     int in_flight = 1);

// Host-to-device copies of `bytes` from `host` (pinned by the caller when
// the device needs it) on `stream`. 0 on any device error.
double ProbeHostToDevice(Device* device, Stream stream, const void* host, uint64_t bytes);

}  // namespace tiercache::bench

#endif  // TIERCACHE_TOOLS_BENCH_LINK_PROBE_H_
