// AdaptivePolicy: next-use eviction that never does worse than the classic
// policies it could have been. This is what the runtime's "next-use" policy
// is.
//
// Belady's rule with learned predictions (NextUsePolicy) is close to MIN
// where the access pattern can be learned (cyclic layer scans, reverse
// passes) and can be worse than LRU where it cannot (independent popularity
// picks, scans mixed with random reads). So the policy runs, besides the
// real cache's bookkeeping, one *shadow cache* per candidate (next-use, LRU,
// ARC, S3-FIFO): ids and sizes only, of the same capacity, fed every demand
// request (OnRequest). Each shadow counts the hits it would have had, with
// exponential decay over about kWindow requests; victims of the real cache
// are chosen by the candidate whose shadow leads, switching only when
// another leads by more than kSwitchMargin of the window's requests. The
// real cache's residents are tracked by the next-use candidate always (its
// predictions guard prefetches) and by the leading candidate when that is
// another one; a switch rebuilds the new leader's bookkeeping from the
// residents in recency order (its own history, ghosts and frequencies,
// starts afresh). Switches are rare (a few per hundred thousand requests on
// the traces in docs/perf.md), and the hot path pays for two policies, not
// four.
//
// Predictions (OnPrediction, OnTick, SetNextUseSource) go to the next-use
// candidates; PredictedNextUse always answers from the real cache's next-use
// ranking, whichever candidate leads, so the cache's rule that a prefetch
// never evicts a block needed sooner keeps working.
//
// The shadow of a candidate and the real cache differ in what prefetches
// brought in: shadows see demand requests only, so they rank policies by
// the hits each earns on its own, which is what "never more than a margin
// below the best classic policy" is about.
//
// Thread safety: none; the owning cache serialises calls.
#ifndef TIERCACHE_PREFETCH_EVICTION_ADAPTIVE_POLICY_H_
#define TIERCACHE_PREFETCH_EVICTION_ADAPTIVE_POLICY_H_

#include <array>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "prefetch/eviction/eviction_policy.h"
#include "prefetch/eviction/next_use_policy.h"

namespace tiercache {

class AdaptivePolicy final : public EvictionPolicy {
 public:
  static constexpr size_t kCandidates = 4;  // next-use, lru, arc, s3fifo
  static constexpr double kWindow = 16384;  // requests; the decay's horizon
  // A candidate takes over when its shadow's decayed hits exceed the
  // leader's by kSwitchMargin of the window's requests plus kSwitchHits:
  // over four standard deviations of the noise between two policies whose
  // outcomes differ on one request in twenty.
  static constexpr double kSwitchMargin = 0.005;
  static constexpr double kSwitchHits = 48;

  // REQUIRES: capacity_bytes > 0 (the shadows' size).
  explicit AdaptivePolicy(uint64_t capacity_bytes);

  std::string_view name() const override { return "next-use"; }
  void OnInsert(BlockId id, uint64_t bytes) override;
  void OnAccess(BlockId id) override;
  void OnErase(BlockId id) override;
  std::optional<BlockId> ChooseVictim(const std::function<bool(BlockId)>& can_evict) override;
  void OnRequest(BlockId id, uint64_t bytes) override;
  void OnPrediction(BlockId id, uint64_t next_use) override;
  void OnTick(uint64_t now) override;
  void SetNextUseSource(std::function<uint64_t(BlockId)> source) override;
  std::optional<uint64_t> PredictedNextUse(BlockId id) const override;
  std::string_view active() const override;
  std::vector<CandidateScore> Candidates() const override;
  // Times the leading candidate changed.
  uint64_t switches() const { return switches_; }

 private:
  struct Shadow {
    std::unique_ptr<EvictionPolicy> policy;
    std::unordered_map<BlockId, uint64_t> resident;  // id -> bytes
    uint64_t used = 0;
    double score = 0;   // decayed hits
    uint64_t hits = 0;  // since the start
  };

  void ShadowRequest(Shadow& s, BlockId id, uint64_t bytes, bool* hit);
  void ChooseLeader();
  void Follow(size_t leader);

  uint64_t capacity_;
  // The real cache's bookkeeping: next-use always, the leader when it is
  // another candidate (null while next-use leads).
  std::unique_ptr<NextUsePolicy> real_next_use_;
  std::unique_ptr<EvictionPolicy> real_leader_;
  std::unordered_map<BlockId, uint64_t> resident_;  // the real cache's, id -> bytes
  std::array<Shadow, kCandidates> shadows_;
  NextUsePolicy* shadow_next_use_;
  size_t leader_ = 0;
  uint64_t switches_ = 0;
  uint64_t requests_ = 0;
  double decayed_requests_ = 0;
};

}  // namespace tiercache

#endif  // TIERCACHE_PREFETCH_EVICTION_ADAPTIVE_POLICY_H_
