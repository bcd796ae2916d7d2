// Replay: a workload through real tiers, moving real bytes.
//
// The run and replay commands home every block of the workload on the host
// tiers (DRAM, then PMEM, then NVMe, by capacity) and request them in order
// with a simulated compute time per use, through one of two engines:
// - runtime (default): the cache runtime (runtime/runtime.h) with its
//   transfer engine, DRAM demotion and the learning prefetcher; each
//   request is acquire, wait for the stream (the stall), compute, release.
// - direct: the tiers and the device driven synchronously by the tool, one
//   read-then-copy per miss; a baseline that shows what overlap buys.
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

// The engines; ReplayCommand adds the workload fields, Belady and the curves.
Result<Report> DirectReplay(const Options& options, const Workload& workload);
Result<Report> RuntimeReplay(const Options& options, const Workload& workload);

}  // namespace tiercache::bench

#endif  // TIERCACHE_TOOLS_BENCH_REPLAY_H_
