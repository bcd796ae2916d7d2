// ReuseDetector: a per-block model of when each block is used again, for
// data-dependent orders (MoE experts chosen per token) where no fixed
// sequence exists but each block has its own rhythm.
//
// The stream is seen as rounds of a period T (a token's pass over the
// layers; T is the most common reuse gap, learned). A block can only come
// back about a whole number of rounds after its last use, at its layer's
// slot. For each block the model keeps, decayed so it follows drift:
//   * stickiness h: how often it came back at the very next round (an
//     expert kept by the following token);
//   * rate r: returns per round once that first round was missed (its
//     long-run popularity apart from the correlated repeats), with the
//     rounds it has been idle so far counted in (a censored estimate, so a
//     long-idle block's rate decays).
// Both are shrunk towards the same quantities pooled over all blocks, so a
// block seen once or twice still gets a sensible estimate ("a block used
// for the first time is about as sticky as blocks are on average").
//
// PredictDistance gives, in accesses, the residence a block costs per
// expected hit, which is what Belady's rule ranks by when uses are
// uncertain. With its next possible round d accesses away (a use may come
// up to T/8 late: an expert's slot within its layer shifts with the other
// choices):
//   * in the first round after a use: d / h. The block is judged over that
//     decisive round; if it misses it turns cold, and the eviction policy
//     asks again once this prediction is overdue;
//   * later (cold): d + T (1 - r) / r, its expected wait. A cold block's
//     chance is the same every round, so the cost per hit of holding it is
//     the wait until it returns. (Judging cold blocks over their next round
//     too, d / r, keeps cold experts of the coming layers over warm ones
//     and loses 0.4 points of hit ratio at 10% of the working set on the MoE
//     trace;
//     judging sticky blocks by their expected wait, d + T (1 - h) / r,
//     drops a block that is 75% likely next token behind a cold one, and
//     loses 11 points there.)
// Blocks never seen have no prediction.
// Memory: at most kMaxBlocks blocks (the longest idle is forgotten first)
// and a vote map of recent gaps, pruned as votes are halved.
// PredictNext lists blocks whose next round is nearest and not yet past,
// among those with stickiness >= kMinStickiness (the others are unlikely
// enough that prefetching them wastes the link).
//
// Thread safety: none.
#ifndef TIERCACHE_PREFETCH_REUSE_DETECTOR_H_
#define TIERCACHE_PREFETCH_REUSE_DETECTOR_H_

#include <functional>
#include <map>
#include <set>
#include <unordered_map>
#include <utility>

#include "prefetch/pattern_detector.h"

namespace tiercache {

class ReuseDetector final : public PatternDetector {
 public:
  // Gaps longer than this do not vote for the round length.
  static constexpr uint64_t kMaxRound = 1 << 16;
  // Per-block memory, in observed gaps (decay 1 - 1/kHistory per gap).
  static constexpr double kHistory = 32;
  static constexpr double kMinStickiness = 0.4;
  // Candidates() names nothing for a stream whose blocks come back the
  // very next round more often than this (a fixed order).
  static constexpr double kMaxPooledStickiness = 0.9;
  // Candidates() looks at blocks used within this many rounds.
  static constexpr uint64_t kCandidateRounds = 16;
  // Blocks remembered at most; beyond it the one idle longest is forgotten
  // (a stream of fresh ids must not grow the model without bound).
  static constexpr size_t kMaxBlocks = 1 << 18;

  std::string_view name() const override { return "reuse"; }
  void Observe(BlockId id, uint64_t bytes, uint64_t now) override;
  void PredictNext(size_t n, std::vector<BlockId>* out) const override;
  uint64_t PredictDistance(BlockId id, uint64_t now) const override;

  // The blocks whose next possible round falls within the next `horizon`
  // accesses, that `wanted` accepts and that are used there with
  // probability at least `min_probability` (stickiness in the first round
  // after a use, the block's rate afterwards): the likeliest first, at
  // most `n`, appended to `out` as (distance, id) with their distance in
  // accesses. What a cache should fetch for the coming layers of a
  // data-dependent order, given what it holds (`wanted`: not resident).
  void Candidates(uint64_t horizon, double min_probability, size_t n,
                  const std::function<bool(BlockId)>& wanted,
                  std::vector<std::pair<uint64_t, BlockId>>* out) const;

  // The learned round length (1 until gaps repeat).
  uint64_t round() const { return round_; }
  size_t tracked_blocks() const { return blocks_.size(); }
  // The model's estimates for `id` (NaN-free; pooled values for a block
  // never seen): probability of use at the next round after a use, and
  // returns per round afterwards.
  double Stickiness(BlockId id) const;
  double Rate(BlockId id, uint64_t idle_rounds) const;

 private:
  struct Block {
    uint64_t last = 0;
    uint64_t due = kNeverUsedAgain;  // last + round at the last use (in by_due_)
    double kept = 0;    // came back at the next round
    double missed = 0;  // did not (each such gap ended in one return)
    double idle = 0;    // rounds waited after the first, over those gaps
  };
  struct Pooled {
    double kept = 0, missed = 0, idle = 0;
  };

  void VoteRound(uint64_t gap);
  // The next round of a block last used `age` accesses ago that is not yet
  // past (a use may come a little late), and the accesses until it.
  void NextRound(uint64_t age, uint64_t* round_index, uint64_t* wait) const;
  uint64_t Rounds(uint64_t gap) const;

  uint64_t now_ = 0;
  uint64_t round_ = 1;
  std::map<uint64_t, double> gap_votes_;
  double votes_ = 0;
  Pooled pooled_;
  std::unordered_map<BlockId, Block> blocks_;
  std::set<std::pair<uint64_t, BlockId>> by_due_;
};

}  // namespace tiercache

#endif  // TIERCACHE_PREFETCH_REUSE_DETECTOR_H_
