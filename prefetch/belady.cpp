#include "prefetch/belady.h"

#include <set>
#include <unordered_map>
#include <utility>

namespace tiercache {

std::vector<uint64_t> TraceTicks(const Trace& trace) {
  std::vector<uint64_t> ticks(trace.records.size());
  uint64_t tick = 0;
  for (size_t i = 0; i < trace.records.size(); ++i) {
    ticks[i] = tick;
    if (trace.records[i].op != TraceOp::kFree) ++tick;
  }
  return ticks;
}

std::vector<uint64_t> NextUseTicks(const Trace& trace, const std::vector<uint64_t>& ticks) {
  std::vector<uint64_t> next(trace.records.size(), kNeverUsedAgain);
  std::unordered_map<BlockId, uint64_t> upcoming;  // id -> tick of its next use
  for (size_t i = trace.records.size(); i-- > 0;) {
    const TraceRecord& r = trace.records[i];
    if (r.op == TraceOp::kFree) {
      upcoming.erase(r.id);  // whatever comes after a free is new data
      continue;
    }
    auto it = upcoming.find(r.id);
    if (it != upcoming.end()) next[i] = it->second;
    upcoming[r.id] = ticks[i];
  }
  return next;
}

namespace {

class OracleCache {
 public:
  OracleCache(uint64_t capacity, BeladyVariant variant) : capacity_(capacity), variant_(variant) {}

  bool Contains(BlockId id) const { return blocks_.count(id) > 0; }

  void Erase(BlockId id) {
    auto it = blocks_.find(id);
    if (it == blocks_.end()) return;
    order_.erase({it->second.next_use, id});
    used_ -= it->second.bytes;
    blocks_.erase(it);
  }

  // Inserts (or resizes) `id`, evicting until it fits. Returns evictions.
  uint64_t Put(BlockId id, uint64_t bytes, uint64_t next_use, uint64_t now) {
    Erase(id);
    uint64_t evictions = 0;
    while (used_ + bytes > capacity_ && !blocks_.empty()) {
      Erase(Victim(now));
      ++evictions;
    }
    blocks_[id] = {next_use, bytes};
    order_.insert({next_use, id});
    used_ += bytes;
    return evictions;
  }

 private:
  struct Block {
    uint64_t next_use;
    uint64_t bytes;
  };

  BlockId Victim(uint64_t now) const {
    if (variant_ == BeladyVariant::kFarthest) return order_.rbegin()->second;
    // Largest distance x bytes among the farthest few; never-used-again
    // blocks are free to drop, the largest of them first.
    BlockId best = order_.rbegin()->second;
    double best_score = -1;
    size_t seen = 0;
    for (auto it = order_.rbegin(); it != order_.rend() && seen < kSizeAwareCandidates; ++it, ++seen) {
      const Block& b = blocks_.at(it->second);
      const double distance = it->first == kNeverUsedAgain ? 1e30 : static_cast<double>(it->first - now);
      const double score = distance * static_cast<double>(b.bytes);
      if (score > best_score) {
        best_score = score;
        best = it->second;
      }
    }
    return best;
  }

  uint64_t capacity_;
  BeladyVariant variant_;
  uint64_t used_ = 0;
  std::set<std::pair<uint64_t, BlockId>> order_;
  std::unordered_map<BlockId, Block> blocks_;
};

}  // namespace

Result<SimResult> RunBelady(const Trace& trace, uint64_t capacity_bytes, BeladyVariant variant) {
  if (capacity_bytes == 0) return Status::InvalidArgument("Belady: capacity must be above 0 bytes");
  if (trace.records.empty()) return Status::InvalidArgument("Belady: the trace has no records");
  const std::vector<uint64_t> ticks = TraceTicks(trace);
  const std::vector<uint64_t> next = NextUseTicks(trace, ticks);
  SimResult result;
  result.policy = variant == BeladyVariant::kFarthest ? "min" : "min-size";
  result.capacity_bytes = capacity_bytes;
  OracleCache cache(capacity_bytes, variant);
  for (size_t i = 0; i < trace.records.size(); ++i) {
    const TraceRecord& r = trace.records[i];
    if (r.op == TraceOp::kFree) {
      cache.Erase(r.id);
      continue;
    }
    const bool read = r.op == TraceOp::kRead;
    const bool hit = read && cache.Contains(r.id);
    if (read) {
      ++result.reads;
      (hit ? result.hits : result.misses) += 1;
      (hit ? result.hit_bytes : result.miss_bytes) += r.bytes;
    } else {
      ++result.writes;
    }
    if (r.bytes > capacity_bytes) {
      cache.Erase(r.id);
      ++result.bypasses;
      continue;
    }
    result.evictions += cache.Put(r.id, r.bytes, next[i], ticks[i]);
  }
  return result;
}

}  // namespace tiercache
