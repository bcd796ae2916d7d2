// Workload: the sequence of block requests a run replays or simulates.
//
// A workload comes from a generator spec ("dense:layers=16,blocks=4,
// block=4MiB,steps=8", "moe:...") or a trace file. Requests are grouped in
// steps (one decode step: a pass over the layers) so the report can give time
// per step. Block ids are dense, 0..unique_blocks-1, so tiers and the
// simulator can index arrays by id.
//
// Thread safety: a value; the functions are pure apart from file I/O.
#ifndef TIERCACHE_TOOLS_BENCH_WORKLOAD_H_
#define TIERCACHE_TOOLS_BENCH_WORKLOAD_H_

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace tiercache::bench {

struct Workload {
  std::string description;           // the spec or the trace path
  std::vector<uint64_t> block_bytes;  // indexed by block id
  std::vector<uint64_t> requests;     // block ids in request order
  std::vector<uint64_t> step_starts;  // index of each step's first request

  uint64_t WorkingSetBytes() const;
  uint64_t UniformBlockBytes() const;  // 0 when block sizes differ
  uint64_t StepOf(uint64_t request) const;
};

// Generator specs; kInvalidArgument naming the bad key or value.
//   dense:layers=16,blocks=4,block=4MiB,steps=8
//     each step reads layers × blocks blocks in layer order.
//   moe:layers=8,experts=16,topk=2,zipf=1.1,corr=0.7,tokens=64,block=2MiB
//     per token and layer, an attention block then top-k experts drawn from
//     a Zipf popularity; with probability corr an expert repeats the
//     previous token's choice at that layer.
Result<Workload> GenerateWorkload(const std::string& spec, uint64_t seed);

// Trace files: "binary" (tiercache's own), "csv" (timestamp,obj_id,obj_size),
// "oracle-general" (libCacheSim), or "auto" (from the contents). Object ids
// are renumbered densely in order of first appearance.
Result<Workload> LoadTrace(const std::string& path, const std::string& format);
Status SaveTrace(const Workload& workload, const std::string& path, const std::string& format);

}  // namespace tiercache::bench

#endif  // TIERCACHE_TOOLS_BENCH_WORKLOAD_H_
