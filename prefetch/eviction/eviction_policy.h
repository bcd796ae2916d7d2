// EvictionPolicy: decides which resident block of a tier leaves when room is
// needed. One instance per tier (GPU cache, DRAM staging, ...).
//
// The cache tells the policy what happened (a block became resident, was hit,
// left); the policy keeps whatever queues, ghosts or predictions it needs and
// answers ChooseVictim(). Pinned blocks are never victims: the cache passes a
// predicate and the policy skips blocks for which it returns false.
// The same implementations run in the live runtime and in the offline
// simulator, so simulated hit ratios describe the product.
//
// Thread safety: none; the owning cache serialises calls.
#ifndef TIERCACHE_PREFETCH_EVICTION_EVICTION_POLICY_H_
#define TIERCACHE_PREFETCH_EVICTION_EVICTION_POLICY_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace tiercache {

using BlockId = uint64_t;
constexpr uint64_t kNeverUsedAgain = UINT64_MAX;

class EvictionPolicy {
 public:
  virtual ~EvictionPolicy() = default;
  virtual std::string_view name() const = 0;

  // `id` became resident with `bytes` bytes (after a miss or a prefetch).
  virtual void OnInsert(BlockId id, uint64_t bytes) = 0;
  // `id` was requested while resident.
  virtual void OnAccess(BlockId id) = 0;
  // `id` left the tier (evicted, or freed by the engine).
  virtual void OnErase(BlockId id) = 0;
  // A resident block for which can_evict(id) is true, or nullopt when none is.
  // Does not remove it: the cache calls OnErase once the block is gone.
  virtual std::optional<BlockId> ChooseVictim(const std::function<bool(BlockId)>& can_evict) = 0;
  // A prediction: `id` is next needed at logical time `next_use` (accesses
  // counted from the start; kNeverUsedAgain when not expected). Policies
  // that do not use predictions ignore it.
  virtual void OnPrediction(BlockId id, uint64_t next_use) {}
  // The logical clock: the number of accesses so far. Called before each
  // OnAccess/OnInsert by caches that feed predictions.
  virtual void OnTick(uint64_t now) {}
  // Optional: where a prediction-driven policy re-asks for a block's next
  // use (an absolute logical time, or kNeverUsedAgain) once the last
  // prediction it was given has passed without the block being used; the
  // estimate of an overdue block depends on how long it has been idle.
  // Without a source an overdue prediction counts as unknown (far).
  virtual void SetNextUseSource(std::function<uint64_t(BlockId)> source) {}
  // The next use the policy ranks a resident `id` by (kNeverUsedAgain when
  // unknown), or nullopt when the policy keeps no predictions or `id` is not
  // resident. The cache uses it to keep a prefetch from evicting a block
  // needed sooner than the one it brings.
  virtual std::optional<uint64_t> PredictedNextUse(BlockId id) const { return std::nullopt; }
  // The engine requested `id` (of `bytes` bytes): once per demand access,
  // hit or miss, before the cache's own OnAccess/OnInsert for it. Policies
  // that evaluate alternatives on the request stream use it.
  virtual void OnRequest(BlockId id, uint64_t bytes) {}
  // The policy that chooses victims now: name() for a single policy, the
  // leading candidate for an adaptive one.
  virtual std::string_view active() const { return name(); }
  // An adaptive policy's candidates: hits their shadow caches had over the
  // requests so far. Empty for a single policy.
  struct CandidateScore {
    std::string name;
    uint64_t hits;
    uint64_t requests;
  };
  virtual std::vector<CandidateScore> Candidates() const { return {}; }
};

// "lru", "arc", "s3fifo", "next-use" (AdaptivePolicy: Belady's rule with
// predictions, falling back to the best classic policy where predictions do
// not pay). kInvalidArgument for any other name.
// `capacity_bytes` sizes the adaptive policies' queues and ghosts.
Result<std::unique_ptr<EvictionPolicy>> MakeEvictionPolicy(std::string_view name,
                                                           uint64_t capacity_bytes);

}  // namespace tiercache

#endif  // TIERCACHE_PREFETCH_EVICTION_EVICTION_POLICY_H_
