#include "prefetch/simulator.h"

#include <algorithm>
#include <memory>
#include <unordered_map>
#include <unordered_set>

#include "prefetch/belady.h"
#include "prefetch/lookahead.h"
#include "prefetch/eviction/next_use_policy.h"

namespace tiercache {

const std::vector<std::string>& SimulatedPolicies() {
  static const std::vector<std::string> kPolicies = {"lru", "arc", "s3fifo", "next-use", "next-use+prefetch",
                                                     "next-use-oracle", "min", "min-size"};
  return kPolicies;
}

namespace {

// One replay. Owns the policy, the predictor and the resident set.
class Replay {
 public:
  Replay(const Trace& trace, const SimOptions& options, std::unique_ptr<EvictionPolicy> policy)
      : trace_(trace), options_(options), policy_(std::move(policy)),
        ticks_(TraceTicks(trace)) {
    result_.policy = options.policy;
    result_.capacity_bytes = options.capacity_bytes;
    learned_ = options.policy == "next-use" || options.policy == "next-use+prefetch";
    prefetch_ = options.policy == "next-use+prefetch";
    if (options.policy == "next-use-oracle") oracle_ = NextUseTicks(trace, ticks_);
    if (learned_) {
      predictor_ = std::make_unique<Prefetcher>(options.prefetcher);
      policy_->SetNextUseSource([this](BlockId id) { return predictor_->PredictNextUseTick(id); });
    }
    if (prefetch_) {
      for (const TraceRecord& r : trace.records) {
        if (r.op != TraceOp::kFree) sizes_.try_emplace(r.id, r.bytes);
      }
      depth_ = options.prefetch_depth != 0 ? options.prefetch_depth : DeriveDepth();
    }
  }

  SimResult Run() {
    for (size_t i = 0; i < trace_.records.size(); ++i) Step(i);
    for (BlockId id : unread_prefetches_) {
      ++result_.prefetch_wasted;
      result_.prefetch_wasted_bytes += resident_.at(id);
    }
    return result_;
  }

 private:
  size_t DeriveDepth() const {
    const auto& records = trace_.records;
    uint64_t bytes = 0;
    for (const auto& [id, size] : sizes_) bytes += size;
    LookaheadInputs in;
    in.link_bytes_per_s = options_.link_bytes_per_s;
    in.block_bytes = sizes_.empty() ? 1 : std::max<uint64_t>(1, bytes / sizes_.size());
    const uint64_t span = records.back().time_ns >= records.front().time_ns
                              ? records.back().time_ns - records.front().time_ns : 0;
    in.compute_ns = records.size() > 1 ? span / (records.size() - 1) : 0;
    in.free_budget_bytes = options_.capacity_bytes;
    in.max_depth = options_.prefetcher.max_depth;
    return std::max<size_t>(1, LookaheadDepth(in));
  }

  void Step(size_t i) {
    const TraceRecord& r = trace_.records[i];
    if (r.op == TraceOp::kFree) {
      if (resident_.count(r.id)) Drop(r.id);
      return;
    }
    const uint64_t tick = ticks_[i];
    policy_->OnTick(tick);
    const bool read = r.op == TraceOp::kRead;
    const bool hit = resident_.count(r.id) > 0;
    if (read) {
      ++result_.reads;
      (hit ? result_.hits : result_.misses) += 1;
      (hit ? result_.hit_bytes : result_.miss_bytes) += r.bytes;
      if (hit && unread_prefetches_.erase(r.id)) ++result_.prefetch_hits;
    } else {
      ++result_.writes;
    }
    policy_->OnRequest(r.id, r.bytes);
    if (hit) {
      policy_->OnAccess(r.id);
    } else if (r.bytes > options_.capacity_bytes) {
      ++result_.bypasses;
    } else {
      MakeRoom(r.bytes, r.id, kNeverUsedAgain);
      Insert(r.id, r.bytes);
    }
    if (predictor_) {
      predictor_->OnAccess(r.id, r.bytes, r.time_ns);
      if (resident_.count(r.id)) policy_->OnPrediction(r.id, predictor_->PredictNextUseTick(r.id));
    }
    if (!oracle_.empty() && resident_.count(r.id)) policy_->OnPrediction(r.id, oracle_[i]);
    if (prefetch_) Prefetch(tick);
  }

  void Insert(BlockId id, uint64_t bytes) {
    policy_->OnInsert(id, bytes);
    resident_[id] = bytes;
    used_ += bytes;
  }

  void Drop(BlockId id) {
    policy_->OnErase(id);
    used_ -= resident_.at(id);
    resident_.erase(id);
  }

  // Evicts until `bytes` fit. With `only_after` finite, stops (returning
  // false) rather than evict a block predicted to be needed by then.
  bool MakeRoom(uint64_t bytes, BlockId keep, uint64_t only_after) {
    while (used_ + bytes > options_.capacity_bytes) {
      // As the runtime does: the policy picks among the blocks a prefetch
      // may evict (predicted to be needed after `only_after`), whichever
      // candidate leads its choice.
      auto victim = policy_->ChooseVictim([this, keep, only_after](BlockId id) {
        return id != keep &&
               (only_after == kNeverUsedAgain || policy_->PredictedNextUse(id).value_or(0) > only_after);
      });
      if (!victim) return false;
      if (unread_prefetches_.erase(*victim)) {
        ++result_.prefetch_wasted;
        result_.prefetch_wasted_bytes += resident_.at(*victim);
      }
      Drop(*victim);
      ++result_.evictions;
    }
    return true;
  }

  void Prefetch(uint64_t tick) {
    std::vector<BlockId> next = predictor_->PredictNext(depth_);
    // As the runtime does: then the likeliest blocks not resident that the
    // coming accesses may use (a data-dependent order's cold experts).
    predictor_->AppendCandidates(depth_, depth_, [this](BlockId id) {
      return resident_.count(id) == 0 && sizes_.count(id) != 0;
    }, &next);
    for (size_t j = 0; j < next.size(); ++j) {
      const BlockId id = next[j];
      auto size = sizes_.find(id);
      if (resident_.count(id) || size == sizes_.end() || size->second > options_.capacity_bytes) continue;
      const uint64_t when = std::min(predictor_->PredictNextUseTick(id), tick + j + 1);
      // Nearest first: once one does not fit ahead of what it would evict,
      // later ones will not either.
      if (!MakeRoom(size->second, id, when)) return;
      Insert(id, size->second);
      policy_->OnPrediction(id, when);
      unread_prefetches_.insert(id);
      ++result_.prefetches;
      result_.prefetch_bytes += size->second;
    }
  }

  const Trace& trace_;
  const SimOptions& options_;
  std::unique_ptr<EvictionPolicy> policy_;
  std::vector<uint64_t> ticks_;
  std::vector<uint64_t> oracle_;
  std::unique_ptr<Prefetcher> predictor_;
  bool learned_ = false;
  bool prefetch_ = false;
  size_t depth_ = 0;
  std::unordered_map<BlockId, uint64_t> sizes_;
  std::unordered_map<BlockId, uint64_t> resident_;
  std::unordered_set<BlockId> unread_prefetches_;
  uint64_t used_ = 0;
  SimResult result_;
};

}  // namespace

Result<SimResult> Simulate(const Trace& trace, const SimOptions& options) {
  const auto& known = SimulatedPolicies();
  if (std::find(known.begin(), known.end(), options.policy) == known.end()) {
    return Status::InvalidArgument("unknown simulated policy '" + options.policy +
                                   "' (expected lru, arc, s3fifo, next-use, next-use+prefetch, "
                                   "next-use-oracle, min or min-size)");
  }
  if (options.capacity_bytes == 0) return Status::InvalidArgument("simulate: capacity must be above 0");
  if (trace.records.empty()) return Status::InvalidArgument("simulate: the trace has no records");
  Trace unit;
  const Trace* input = &trace;
  if (options.unit_sizes) {
    unit = trace;
    for (TraceRecord& r : unit.records) r.bytes = r.op == TraceOp::kFree ? 0 : 1;
    input = &unit;
  }
  if (options.policy == "min") return RunBelady(*input, options.capacity_bytes, BeladyVariant::kFarthest);
  if (options.policy == "min-size") return RunBelady(*input, options.capacity_bytes, BeladyVariant::kSizeAware);
  std::unique_ptr<EvictionPolicy> policy;
  if (options.policy == "next-use-oracle") {
    policy = std::make_unique<NextUsePolicy>();  // exact predictions: no fallback needed
  } else if (options.policy.rfind("next-use", 0) == 0) {
    TC_ASSIGN_OR_RETURN(policy, MakeEvictionPolicy("next-use", options.capacity_bytes));
  } else {
    TC_ASSIGN_OR_RETURN(policy, MakeEvictionPolicy(options.policy, options.capacity_bytes));
  }
  return Replay(*input, options, std::move(policy)).Run();
}

Result<std::vector<SimResult>> SimulateSweep(const Trace& trace, const std::vector<std::string>& policies,
                                             const std::vector<double>& fractions, const SimOptions& base) {
  const uint64_t whole = base.unit_sizes ? DistinctBlocks(trace) : WorkingSetBytes(trace);
  std::vector<SimResult> results;
  for (double fraction : fractions) {
    if (!(fraction > 0)) return Status::InvalidArgument("simulate: cache fractions must be above 0");
    SimOptions options = base;
    options.capacity_bytes = std::max<uint64_t>(1, static_cast<uint64_t>(fraction * static_cast<double>(whole)));
    for (const std::string& policy : policies) {
      options.policy = policy;
      TC_ASSIGN_OR_RETURN(SimResult result, Simulate(trace, options));
      results.push_back(std::move(result));
    }
  }
  return results;
}

}  // namespace tiercache
