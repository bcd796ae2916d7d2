// Workload: the sequence of block requests a run replays or simulates.
//
// A workload wraps a Trace (prefetch/trace.h) from a generator spec or a
// trace file, plus what a replay needs: the reads as dense block ids
// (0..blocks-1, so tiers index arrays by id) grouped in steps (one decode
// step: a pass over the layers) so the report can give time per step.
//
// Thread safety: a value; the functions are pure apart from file I/O.
#ifndef TIERCACHE_TOOLS_BENCH_WORKLOAD_H_
#define TIERCACHE_TOOLS_BENCH_WORKLOAD_H_

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "prefetch/trace.h"

namespace tiercache::bench {

struct Workload {
  std::string description;            // the spec or the trace path
  Trace trace;                        // as generated or read: what simulate runs
  std::vector<uint64_t> block_bytes;  // indexed by dense block id
  std::vector<uint64_t> requests;     // the trace's reads, as dense block ids
  std::vector<uint64_t> step_starts;  // index into requests of each step's first

  uint64_t WorkingSetBytes() const;
  uint64_t UniformBlockBytes() const;  // 0 when block sizes differ
};

// A workload from the generators of prefetch/trace_generators.h
// ("dense:layers=16,blocks=4,bytes=4MiB,steps=8", "moe:...", "training:...");
// kInvalidArgument naming the bad parameter.
Result<Workload> GenerateWorkload(const std::string& spec);

// A trace file in any format of prefetch/trace_io.h; `format` "auto"
// detects it. A missing file is kNotFound, a garbled one kCorruption or
// kInvalidArgument naming the record.
Result<Workload> LoadTrace(const std::string& path, const std::string& format);
Status SaveTrace(const Workload& workload, const std::string& path, const std::string& format);

// Reads become requests over dense ids (in order of first appearance), and a
// change of the records' phase mark starts a new step (one step when the
// trace has no marks).
Workload MakeWorkload(std::string description, Trace trace);

}  // namespace tiercache::bench

#endif  // TIERCACHE_TOOLS_BENCH_WORKLOAD_H_
