// Stress: tiercache-bench's `stress` command, a concurrency and soak load on
// the runtime. `threads` threads share `streams` streams and, until
// `seconds` have passed, acquire and release overlapping blocks (DRAM and
// NVMe homes), prefetch, evict, hint and try-acquire them, and save and
// restore activations, against a GPU cache that holds a fraction of the
// blocks, so eviction never stops. Every acquired block and every restored
// activation is copied back to the host and compared byte for byte.
//
// Expected refusals (kOutOfSpace when every block in the cache is pinned,
// kBusy for an eviction of a pinned block or a try-acquire of one not yet
// loaded) are counted apart; anything else is an error. The report also
// carries the process's resident memory after warm-up and at the end, so a
// long run shows whether memory stays flat.
//
// Thread safety: RunStress runs one load at a time on the calling thread
// plus the threads it starts.
#ifndef TIERCACHE_TOOLS_BENCH_STRESS_H_
#define TIERCACHE_TOOLS_BENCH_STRESS_H_

#include <cstdint>
#include <string>

#include "common/status.h"

namespace tiercache::bench {

struct StressOptions {
  double seconds = 10;
  int threads = 8;
  int streams = 4;
  int blocks = 24;               // half homed in DRAM, half on NVMe
  uint64_t block_bytes = 256 << 10;  // each block adds a few odd bytes to this
  std::string dir;               // the NVMe file's directory; empty: $TMPDIR or /tmp
  uint64_t seed = 1;
};

struct StressReport {
  double seconds = 0;
  uint64_t acquires = 0;
  uint64_t bytes_verified = 0;
  uint64_t mismatches = 0;       // blocks or activations that came back altered
  uint64_t errors = 0;           // calls that failed unexpectedly
  uint64_t refusals = 0;         // kOutOfSpace / kBusy, expected under pressure
  uint64_t prefetches = 0;
  uint64_t evictions = 0;
  uint64_t saves = 0;
  uint64_t restores = 0;
  uint64_t pinned_after = 0;     // pins left once every thread finished (must be 0)
  uint64_t rss_start_kib = 0;    // resident memory after warm-up
  uint64_t rss_end_kib = 0;
  uint64_t rss_max_kib = 0;
  std::string first_error;       // the first unexpected failure, for the log
  std::string first_mismatch;    // what the first mismatch was, for the log
  bool ok() const { return mismatches == 0 && errors == 0 && pinned_after == 0; }
};

Result<StressReport> RunStress(const StressOptions& options);
std::string RenderStressReport(const StressReport& report);

}  // namespace tiercache::bench

#endif  // TIERCACHE_TOOLS_BENCH_STRESS_H_
