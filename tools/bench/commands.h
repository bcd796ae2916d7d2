// Commands: what each subcommand of tiercache-bench does, from parsed
// Options to a Report (or a written trace file).
//
// Errors are Status values: kInvalidArgument / kNotFound / kCorruption mean
// bad input (main exits with 2), anything else a failure while running (1).
//
// Thread safety: one command runs at a time on the calling thread (the tiers
// and the runtime use their own threads underneath).
#ifndef TIERCACHE_TOOLS_BENCH_COMMANDS_H_
#define TIERCACHE_TOOLS_BENCH_COMMANDS_H_

#include <string>
#include <vector>

#include "common/status.h"
#include "tools/bench/options.h"
#include "tools/bench/report.h"
#include "tools/bench/workload.h"

namespace tiercache::bench {

// The workload the options name: --trace, else --workload, else the
// command's default.
Result<Workload> LoadWorkload(const Options& options);

// run, replay or simulate; prints nothing.
Result<Report> RunReportCommand(const Options& options);

// trace record / trace convert; returns a one-line summary.
Result<std::string> RunTraceCommand(const Options& options);

// True when `status` describes bad input (exit code 2).
bool IsBadInput(const Status& status);

// Runs the whole program (what main() calls); returns the exit code.
int BenchMain(int argc, const char* const* argv);

}  // namespace tiercache::bench

#endif  // TIERCACHE_TOOLS_BENCH_COMMANDS_H_
