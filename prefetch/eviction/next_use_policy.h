// NextUsePolicy: Belady's rule with predictions. Evicts the resident block
// whose predicted next use is farthest in the future.
//
// Predictions arrive through OnPrediction(id, next_use) as absolute logical
// times (accesses counted from the start) and the clock through OnTick(now).
// An access consumes the block's prediction: until a new one arrives the
// block counts as unknown. Unknown blocks (never predicted, or predicted
// kNeverUsedAgain) rank as farthest; among them the least recently used goes
// first, so with no predictions at all this is LRU. A prediction that has
// passed without the block being used is overdue: the policy re-asks the
// source set by SetNextUseSource() (whose answer may depend on how long the
// block has been idle), or treats it as unknown when there is no source.
// Predictions for blocks that are not resident are ignored: send them after
// OnInsert. With exact predictions (an oracle) this is Belady's MIN.
//
// Thread safety: none; the owning cache serialises calls.
#ifndef TIERCACHE_PREFETCH_EVICTION_NEXT_USE_POLICY_H_
#define TIERCACHE_PREFETCH_EVICTION_NEXT_USE_POLICY_H_

#include <set>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "prefetch/eviction/eviction_policy.h"

namespace tiercache {

class NextUsePolicy final : public EvictionPolicy {
 public:
  std::string_view name() const override { return "next-use"; }
  // Re-inserting a resident id counts as an access.
  void OnInsert(BlockId id, uint64_t bytes) override;
  // REQUIRES: `id` is resident.
  void OnAccess(BlockId id) override;
  void OnErase(BlockId id) override;
  std::optional<BlockId> ChooseVictim(const std::function<bool(BlockId)>& can_evict) override;
  void OnPrediction(BlockId id, uint64_t next_use) override;
  void OnTick(uint64_t now) override { now_ = now; }
  void SetNextUseSource(std::function<uint64_t(BlockId)> source) override {
    source_ = std::move(source);
  }

  // The prediction the policy holds for a resident `id` (kNeverUsedAgain
  // when unknown), or nullopt when `id` is not resident.
  std::optional<uint64_t> PredictedNextUse(BlockId id) const override;
  size_t size() const { return entries_.size(); }
  // Resident ids, least recently accessed (or inserted) first.
  std::vector<BlockId> ResidentsByRecency() const;
  uint64_t now() const { return now_; }

 private:
  // Ordered so that the last element is the victim: the farthest next use,
  // and among equals the oldest access (largest inverted sequence).
  using Key = std::tuple<uint64_t, uint64_t, BlockId>;  // next_use, ~seq, id
  struct Entry {
    uint64_t next_use;
    uint64_t seq;
  };

  void Reorder(BlockId id, Entry& entry, uint64_t next_use, uint64_t seq);
  void RefreshOverdue();

  uint64_t now_ = 0;
  uint64_t seq_ = 0;
  std::set<Key> order_;
  std::unordered_map<BlockId, Entry> entries_;
  std::function<uint64_t(BlockId)> source_;
};

}  // namespace tiercache

#endif  // TIERCACHE_PREFETCH_EVICTION_NEXT_USE_POLICY_H_
