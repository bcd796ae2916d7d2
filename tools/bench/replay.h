// Replay: a workload through real tiers, moving real bytes.
//
// The run and replay commands register every block of the workload with the
// cache runtime, homed on the host tiers (DRAM, then PMEM, then NVMe, by
// capacity), and acquire/release them in request order with a simulated
// compute time per use. Counters come from the runtime's per-tier stats.
//
// Thread safety: runs on the calling thread.
#ifndef TIERCACHE_TOOLS_BENCH_REPLAY_H_
#define TIERCACHE_TOOLS_BENCH_REPLAY_H_

#include "common/status.h"
#include "tools/bench/options.h"
#include "tools/bench/report.h"
#include "tools/bench/workload.h"

namespace tiercache::bench {

Result<Report> ReplayCommand(const Options& options, const Workload& workload);

}  // namespace tiercache::bench

#endif  // TIERCACHE_TOOLS_BENCH_REPLAY_H_
