// Simulate mode: every requested eviction policy over many cache sizes on
// one workload, through the policy simulator in prefetch/ (the same policy
// code the runtime runs), with Belady's MIN as the bound. No data moves, so
// a trace of millions of requests takes seconds.
//
// Thread safety: runs on the calling thread.
#ifndef TIERCACHE_TOOLS_BENCH_SIMULATE_H_
#define TIERCACHE_TOOLS_BENCH_SIMULATE_H_

#include <string>
#include <vector>

#include "common/status.h"
#include "tools/bench/options.h"
#include "tools/bench/report.h"
#include "tools/bench/workload.h"

namespace tiercache::bench {

class ProgressBar;

// One curve per policy, one point per cache size (fractions of the working
// set). Policies: lru, arc, s3fifo, next-use, min, tiercache (next-use fed by
// the learning prefetcher, demand only: comparable with MIN) and
// tiercache+prefetch (also fetching ahead; prefetched reads count as hits).
// `progress` may be null.
Result<std::vector<PolicyCurve>> SimulatePolicies(const Workload& workload,
                                                  const std::vector<std::string>& policies,
                                                  const std::vector<double>& fractions,
                                                  ProgressBar* progress);

// Belady's MIN hit ratio at one capacity.
Result<double> BeladyHitRatio(const Workload& workload, uint64_t cache_bytes);

// The simulate command: curves for options.policies × options.cache_fractions.
Result<Report> SimulateCommand(const Options& options, const Workload& workload);

}  // namespace tiercache::bench

#endif  // TIERCACHE_TOOLS_BENCH_SIMULATE_H_
