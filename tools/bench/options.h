// Options: the command line of tiercache-bench, merged with a config file
// and TIERCACHE_* environment variables.
//
// Settings that the runtime also has keep the runtime's names (see
// runtime/config.h): the flag --gpu-cache-bytes, the variable
// TIERCACHE_GPU_CACHE_BYTES and the config-file key "gpu_cache_bytes" all set
// the same thing. Later sources win: built-in defaults, then the config file
// (--config or TIERCACHE_CONFIG), then the environment, then the flags.
//
// Every problem (unknown flag, missing value, malformed size, impossible
// combination) comes back as kInvalidArgument with a one-line message that
// names the flag or variable; main() prints it and exits with code 2.
//
// Thread safety: pure functions apart from reading the environment.
#ifndef TIERCACHE_TOOLS_BENCH_OPTIONS_H_
#define TIERCACHE_TOOLS_BENCH_OPTIONS_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"

namespace tiercache::bench {

enum class Command {
  kRun,           // the built-in default workload through the runtime
  kReplay,        // a workload or trace through the real tiers
  kSimulate,      // eviction policies over many cache sizes, no data moved
  kTraceRecord,   // write a synthetic workload as a trace file
  kTraceConvert,  // rewrite a trace in another format
  kStress,        // the concurrency / soak load on the runtime (stress.h)
  kHelp,
};

enum class ProgressMode { kAuto, kAlways, kNever };

struct Options {
  Command command = Command::kRun;
  std::string help_topic;  // the subcommand --help was given for

  // ---- the workload ------------------------------------------------------
  std::string workload;          // generator spec; empty: the command's default
  std::string trace_path;        // a trace file instead of a generator
  std::string trace_format = "auto";

  // ---- the tiers (runtime names) -------------------------------------------
  uint64_t gpu_budget_bytes = 0;  // 0: chosen from the working set
  uint64_t gpu_cache_bytes = 0;   // 0: gpu_budget_bytes
  std::string gpu_policy = "next-use";
  uint64_t dram_bytes = 0;        // 0: chosen from the working set
  uint64_t pmem_bytes = 0;
  uint64_t nvme_bytes = 0;
  std::string dir;                // where the PMEM and NVMe files go
  int64_t prefetch_lookahead = 0;  // a cap; 0: the runtime derives the depth
  uint64_t chunk_bytes = 16ull << 20;
  bool prefetch = true;
  std::string engine = "runtime";  // "runtime" or "direct" (tiers driven synchronously)
  std::string config_path;         // --config or TIERCACHE_CONFIG
  std::map<std::string, std::string> environment;  // the TIERCACHE_* variables seen
  uint64_t compute_ns = 100000;   // simulated compute per block use

  // ---- simulate ------------------------------------------------------------
  std::vector<std::string> policies = {"lru", "arc", "s3fifo", "tiercache", "tiercache+prefetch",
                                       "min"};
  std::vector<double> cache_fractions = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9};

  // ---- stress --------------------------------------------------------------
  double seconds = 10;
  uint64_t threads = 8;

  // ---- output --------------------------------------------------------------
  std::string json_path;     // also decides where the SVGs go
  std::string out_path;      // trace record/convert
  std::string out_format = "tiercache";
  ProgressMode progress = ProgressMode::kAuto;
  bool quiet = false;        // no table on stdout

  // Which settings were given explicitly, by name ("gpu_cache_bytes"): lets
  // modes tell a default from a user's choice.
  std::map<std::string, std::string> explicitly_set;
  bool IsSet(const std::string& name) const { return explicitly_set.count(name) > 0; }
};

// Parses argv (argv[0] is the program) with `environment` consulted for
// TIERCACHE_* names (pass the process environment, or a map in tests).
Result<Options> ParseOptions(int argc, const char* const* argv,
                             const std::map<std::string, std::string>& environment);

// The TIERCACHE_* variables of the current process.
std::map<std::string, std::string> ProcessEnvironment();

// Help text: every option, with an example. `topic` may name a subcommand.
std::string HelpText(const std::string& topic);

// "dense:layers=16,..." default workloads per command.
std::string DefaultWorkload(Command command);

}  // namespace tiercache::bench

#endif  // TIERCACHE_TOOLS_BENCH_OPTIONS_H_
