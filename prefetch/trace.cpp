#include "prefetch/trace.h"

#include <unordered_map>

namespace tiercache {

namespace {
std::unordered_map<BlockId, uint64_t> SizesById(const Trace& trace) {
  std::unordered_map<BlockId, uint64_t> sizes;
  for (const TraceRecord& r : trace.records) {
    if (r.op != TraceOp::kFree) sizes[r.id] = r.bytes;
  }
  return sizes;
}
}  // namespace

uint64_t WorkingSetBytes(const Trace& trace) {
  uint64_t total = 0;
  for (const auto& [id, bytes] : SizesById(trace)) total += bytes;
  return total;
}

uint64_t DistinctBlocks(const Trace& trace) { return SizesById(trace).size(); }

}  // namespace tiercache
