// Report: what one tiercache-bench run measured, independent of how it is
// shown (terminal table, JSON, SVG).
//
// The tiers are listed fastest first (gpu, dram, pmem, nvme). A request is
// served by exactly one tier: the fastest that holds the block. So for tier i
//   requests_reaching(i) = requests not served by tiers 0..i-1
//   hits(i) + misses(i)  = requests_reaching(i)
//   misses(i)            = requests_reaching(i+1)
// and the two hit ratios differ only in their denominator:
//   global hit ratio = hits / all requests        ("of all")
//   local hit ratio  = hits / requests_reaching   ("of reaching")
//
// Bytes are counted per direction: `bytes_up` left this tier toward the GPU
// (promotions, the traffic that costs stall time), `bytes_down` entered it
// from above (demotions, write-backs, initial placement).
//
// Thread safety: plain values; the modes fill one Report on one thread.
#ifndef TIERCACHE_TOOLS_BENCH_REPORT_H_
#define TIERCACHE_TOOLS_BENCH_REPORT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace tiercache::bench {

// The link a tier's promotions travel over, and its peak bandwidth.
struct LinkPeak {
  std::string name;             // "host->gpu", "nvme->host", ...
  double bytes_per_second = 0;  // 0 when unknown
  std::string source;           // "reference" (published figure) or "measured here"
};

struct TierReport {
  std::string name;  // "gpu", "dram", "pmem", "nvme"
  uint64_t capacity_bytes = 0;
  uint64_t homed_bytes = 0;     // blocks whose home is this tier (host tiers)
  uint64_t requests_reaching = 0;
  uint64_t hits = 0;
  uint64_t transfers_up = 0;    // promotions out of this tier
  uint64_t bytes_up = 0;
  uint64_t transfers_down = 0;  // blocks written into this tier
  uint64_t bytes_down = 0;
  uint64_t evictions = 0;
  uint64_t stall_ns = 0;      // time requests waited on promotions from here
  // The link this row measures (`link`): for host tiers the way up out of
  // the tier (link_bytes == bytes_up), for the GPU the way in from the host
  // (link_bytes == bytes_down). transfer_ns is the time spent moving them.
  uint64_t link_bytes = 0;
  uint64_t transfer_ns = 0;
  LinkPeak link;

  uint64_t misses() const { return requests_reaching - hits; }
  double GlobalHitRatio(uint64_t all_requests) const;
  double LocalHitRatio() const;
  double AchievedBytesPerSecond() const;  // link_bytes / transfer time; 0 if none
  double FractionOfPeak() const;          // achieved / link peak; 0 if unknown
};

// How well the prefetcher guessed (see docs/bench.md for the definitions).
struct PrefetchReport {
  bool enabled = false;
  uint64_t issued = 0;         // prefetches started
  uint64_t useful = 0;         // prefetched blocks requested before eviction
  uint64_t late = 0;           // useful, but still in flight when requested
  uint64_t wasted_bytes = 0;   // bytes of prefetches never used
  uint64_t demand_misses = 0;  // misses the prefetcher did not cover
  uint64_t lookahead = 0;      // the runtime's derived depth at the end of the run

  double Accuracy() const;  // useful / issued
  double Coverage() const;  // useful / (useful + demand misses)
  double Lateness() const;  // late / useful
};

// One policy at one cache size, from the simulator.
struct PolicyPoint {
  uint64_t cache_bytes = 0;
  double fraction_of_working_set = 0;
  uint64_t requests = 0;
  uint64_t hits = 0;
  uint64_t misses = 0;
  uint64_t bytes_missed = 0;
  std::optional<PrefetchReport> prefetch;
  double HitRatio() const;
};

struct PolicyCurve {
  std::string policy;  // "lru", "arc", "s3fifo", "tiercache", "min"
  std::vector<PolicyPoint> points;
};

// Time of one workload step (a decode step: one pass over the layers),
// split by the tier the waiting was on; compute is the rest.
struct StepTime {
  std::vector<uint64_t> stall_ns_by_tier;  // indexed like Report::tiers
  uint64_t total_ns = 0;
};

struct Report {
  std::string mode;        // "run", "replay", "simulate"
  std::string workload;    // the generator spec or trace path
  std::string device;      // "emulated", "NVIDIA H100 ..."; empty when simulated
  std::string policy;      // GPU eviction policy of a replay
  uint64_t requests = 0;
  uint64_t unique_blocks = 0;
  uint64_t working_set_bytes = 0;
  uint64_t block_bytes = 0;  // when every block has the same size, else 0
  uint64_t steps = 0;
  double wall_seconds = 0;
  std::vector<TierReport> tiers;  // fastest first
  PrefetchReport prefetch;
  // Belady's MIN on the same trace at the GPU tier's capacity. MIN fetches
  // on demand; when the run prefetched, its GPU hits include prefetched
  // blocks and may exceed MIN (the curves' tiercache+prefetch is the fair
  // comparison then).
  std::optional<double> belady_hit_ratio;
  std::vector<PolicyCurve> curves;  // simulate mode
  std::vector<StepTime> step_times;
  std::vector<std::string> fallbacks;  // "name: reason (count)"
  std::vector<std::string> notes;      // anything the reader must know

  // GPU hit ratio of all requests; 0 without tiers.
  double GpuHitRatio() const;
  // Mean over steps of each tier's stall, then compute (the remainder).
  std::vector<double> MeanStepMillisecondsByTier() const;
  double MeanStepMilliseconds() const;
};

}  // namespace tiercache::bench

#endif  // TIERCACHE_TOOLS_BENCH_REPORT_H_
