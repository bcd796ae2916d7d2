// CycleDetector: learns a repeating sequence of block ids of any period up
// to kMaxPeriod: a dense model's layer order, or forward-then-reverse
// (0..L-1, L-1..0), which is simply a cycle of period 2L.
//
// A candidate period comes from the gaps between an id's last occurrences
// (one or two back) and is adopted when the last kVerifyWindow accesses, or
// one whole period when it is shorter (but at least kMinWindow), repeat at
// that period (at least kMinMatchShare of them). The period is kept while
// the recent match rate stays above kMinMatchShare. Accesses to ids never
// seen before (fresh activations interleaved with the weights) cannot repeat
// anything, so they count neither for nor against a period.
//
// Memory is bounded: the history ring holds the last 2 * kMaxPeriod ids
// (what Verify and PredictDistance can look at), and an id is forgotten
// once its newest occurrence leaves the ring, so at most 2 * kMaxPeriod ids
// are tracked however many distinct ids the stream brings (fresh
// activations every step, a model far larger than the cycle). A forgotten
// id that comes back counts as new.
//
// Thread safety: none.
#ifndef TIERCACHE_PREFETCH_CYCLE_DETECTOR_H_
#define TIERCACHE_PREFETCH_CYCLE_DETECTOR_H_

#include <unordered_map>

#include "prefetch/pattern_detector.h"

namespace tiercache {

class CycleDetector final : public PatternDetector {
 public:
  static constexpr uint64_t kMaxPeriod = 1 << 16;
  static constexpr uint64_t kVerifyWindow = 32;
  static constexpr uint64_t kMinWindow = 8;  // periods from here on verify over one period
  static constexpr double kMinMatchShare = 0.75;

  CycleDetector();
  std::string_view name() const override { return "cycle"; }
  void Observe(BlockId id, uint64_t bytes, uint64_t now) override;
  void PredictNext(size_t n, std::vector<BlockId>* out) const override;
  uint64_t PredictDistance(BlockId id, uint64_t now) const override;

  uint64_t period() const { return period_; }
  // How often, recently, an access repeated the one a period before it
  // (1 when a period is adopted; it is dropped below kMinMatchShare).
  double match_rate() const { return period_ == 0 ? 0.0 : match_rate_; }
  // The last period's ids, oldest first (nothing while no period is held).
  void LastPeriod(std::vector<BlockId>* out) const;
  // Distinct ids currently remembered (<= kMaxTrackedIds).
  size_t tracked_ids() const { return seen_.size(); }
  static constexpr uint64_t kMaxTrackedIds = 2 * kMaxPeriod;

 private:
  // The last three occurrences (kNeverUsedAgain until seen that often):
  // an id seen twice per cycle (forward then reverse) needs the third to
  // show the period.
  struct Seen {
    uint64_t at[3];  // at[0] newest
  };
  BlockId At(uint64_t t) const { return history_[t % history_.size()]; }
  bool Verify(uint64_t candidate, uint64_t now) const;
  void Forget(uint64_t now);

  std::vector<BlockId> history_;  // ring of the last 2 * kMaxPeriod ids
  std::vector<bool> first_seen_;  // same ring: was this the id's first access?
  std::unordered_map<BlockId, Seen> seen_;
  uint64_t now_ = 0;
  uint64_t observed_ = 0;
  uint64_t period_ = 0;     // 0: none
  double match_rate_ = 0;   // EWMA of "id == id one period ago"
};

}  // namespace tiercache

#endif  // TIERCACHE_PREFETCH_CYCLE_DETECTOR_H_
