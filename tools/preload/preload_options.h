// PreloadOptions: the preload library's settings, read once from TIERCACHE_*
// environment variables (docs/preload.md has the table).
//
// Contract: ParsePreloadOptions never fails. A variable it does not know, or
// a value it cannot parse, adds one warning naming the variable and the
// default kept, and parsing goes on: an application must keep running
// whatever its environment says. Variables that name a RuntimeConfig field
// (TIERCACHE_GPU_BUDGET_BYTES, ...) configure the runtime the library hosts;
// TIERCACHE_CONFIG names a JSON file applied before them. Variables read by
// other parts of tiercache (TIERCACHE_DEVICE, TIERCACHE_LOG,
// TIERCACHE_EMULATED_MEMORY, TIERCACHE_BENCH_*) are accepted silently.
//
// Thread safety: pure functions over values (ProcessTiercacheVariables reads
// the environment).
#ifndef TIERCACHE_TOOLS_PRELOAD_PRELOAD_OPTIONS_H_
#define TIERCACHE_TOOLS_PRELOAD_PRELOAD_OPTIONS_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "runtime/config.h"

namespace tiercache::preload {

struct PreloadOptions {
  std::string trace_path;                   // TIERCACHE_TRACE; empty: no trace
  bool report = false;                      // TIERCACHE_REPORT
  bool route_allocations = true;            // TIERCACHE_PRELOAD_ALLOC
  bool stage_copies = true;                 // TIERCACHE_STAGE
  uint64_t stage_min_bytes = 4ull << 20;    // TIERCACHE_STAGE_MIN_BYTES
  uint64_t stage_chunk_bytes = 16ull << 20; // TIERCACHE_STAGE_CHUNK_BYTES
  int64_t stage_buffers = 4;                // TIERCACHE_STAGE_BUFFERS
  int64_t stage_threads = 0;                // TIERCACHE_STAGE_THREADS; 0: the node's cores, at most 16
  double pageable_gbps = 6.5;               // TIERCACHE_PAGEABLE_GBPS: the driver's pageable rate
  bool free_synchronizes = true;            // TIERCACHE_FREE_SYNC
  RuntimeConfig runtime;                    // the hosted runtime (dram_bytes defaults to 0 here)
};

struct ParsedOptions {
  PreloadOptions options;
  std::vector<std::string> warnings;  // one line each, ready to print
};

// `variables` maps every TIERCACHE_* name to its value; TIERCACHE_CONFIG, if
// there, is read with LoadConfigFile.
ParsedOptions ParsePreloadOptions(const std::map<std::string, std::string>& variables);

// The TIERCACHE_* variables of this process.
std::map<std::string, std::string> ProcessTiercacheVariables();

// Name, default and meaning of each preload variable, for docs and --help.
struct VariableDoc {
  const char* name;
  const char* default_value;
  const char* meaning;
};
const std::vector<VariableDoc>& PreloadVariableDocs();

}  // namespace tiercache::preload

#endif  // TIERCACHE_TOOLS_PRELOAD_PRELOAD_OPTIONS_H_
