// Prefetcher: the runtime's AccessPredictor. Learns the engine's access
// pattern from its acquires and predicts which blocks come next (to
// prefetch) and when each block is next needed (to feed next-use eviction).
//
// Sources of prediction, strongest first:
//   1. hints: Hint(next) gives the next accesses explicitly; they hold until
//      consumed, and an access that is not among them drops them;
//   2. a recorded schedule: SetSchedule(order) gives the whole repeating
//      order (e.g. a previous step's trace); ids outside it are ignored;
//   3. learned detectors (PatternDetector): cycle (incl. forward-then-
//      reverse), stride, first-order Markov, per-block reuse gaps. Each is
//      trusted by its recent top-1 accuracy: PredictNext draws from the
//      most accurate first, PredictDistance asks the cycle detector (when
//      it is nearly always right), then stride, then reuse gaps.
// Accounting (stats()): top-1 prediction accuracy, and for prefetches the
// runtime reports, accuracy (read before kWasteHorizon accesses passed),
// lateness (read before its copy arrived), wasted bytes. Lookahead() sizes
// the depth from measured link bandwidth (issued->arrived), block sizes and
// the time between acquires (see lookahead.h).
//
// Thread safety: none; the runtime serialises calls on one Prefetcher.
#ifndef TIERCACHE_PREFETCH_PREFETCHER_H_
#define TIERCACHE_PREFETCH_PREFETCHER_H_

#include <deque>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "prefetch/cycle_detector.h"
#include "prefetch/markov_detector.h"
#include "prefetch/reuse_detector.h"
#include "prefetch/stride_detector.h"
#include "prefetch/access_predictor.h"

namespace tiercache {

struct PrefetcherOptions {
  // False: hints and a recorded schedule only; the detectors are not fed
  // or asked (the runtime's prefetch = "hints").
  bool learn = true;
  size_t max_depth = 64;
  double initial_link_bytes_per_s = 25e9;  // until a transfer is measured
  double min_confidence = 0.3;             // below it a detector is not asked for PredictNext
  double cycle_distance_confidence = 0.9;  // the cycle detector's distances are used above it
  uint64_t waste_horizon = 4096;           // accesses after which an unread prefetch is wasted
  // A speculative candidate (AppendCandidates) must be used at its next
  // possible round at least this often (above the 0.25 a top-2 choice of 8
  // experts has on average: fewer wasted copies than that would cost).
  double candidate_min_probability = 0.35;
};

struct PrefetchStats {
  uint64_t accesses = 0;
  uint64_t predictions = 0;          // accesses for which a next block was predicted
  uint64_t correct_predictions = 0;  // ... and it was this one
  uint64_t issued = 0;
  uint64_t issued_bytes = 0;
  uint64_t useful = 0;  // prefetched blocks read before the horizon
  uint64_t late = 0;    // ... of which the copy had not arrived yet
  uint64_t wasted = 0;
  uint64_t wasted_bytes = 0;

  double top1_accuracy() const { return Ratio(correct_predictions, predictions); }
  double accuracy() const { return Ratio(useful, issued); }
  double coverage() const { return Ratio(useful, accesses); }  // acquires anticipated by a prefetch
  double lateness() const { return Ratio(late, useful); }
  static double Ratio(uint64_t a, uint64_t b) { return b == 0 ? 0.0 : static_cast<double>(a) / static_cast<double>(b); }
};

class Prefetcher final : public AccessPredictor {
 public:
  explicit Prefetcher(PrefetcherOptions options = {});

  void OnAccess(BlockId id, uint64_t bytes, uint64_t now_ns) override;
  void Hint(const std::vector<BlockId>& next) override;
  std::vector<BlockId> PredictNext(size_t max_blocks) override;
  uint64_t PredictDistance(BlockId id) override;
  void OnPrefetchIssued(BlockId id, uint64_t bytes, uint64_t now_ns) override;
  void OnPrefetchArrived(BlockId id, uint64_t now_ns) override;
  size_t Lookahead(uint64_t free_budget_bytes, double link_bytes_per_s) override;
  // The recorded schedule; else, when learning and the cycle detector holds
  // a period that its recent accesses repeated at least
  // cycle_distance_confidence of the time, its last period.
  std::vector<BlockId> RepeatingOrder() override;
  // The reuse model's blocks due within `horizon` accesses whose chance of
  // use there is at least candidate_min_probability (ReuseDetector::
  // Candidates); nothing while learning is off or a repeating order is
  // known (PredictNext then names every block to come).
  void AppendCandidates(uint64_t horizon, size_t max_blocks, const std::function<bool(BlockId)>& wanted,
                        std::vector<BlockId>* list) override;

  // A whole repeating order; empty clears it.
  void SetSchedule(std::vector<BlockId> order);
  // The logical time of the block's predicted next use: the index of the
  // access (0-based, counting OnAccess calls) or kNeverUsedAgain. This is
  // what NextUsePolicy::OnPrediction takes when the cache's clock counts
  // the same accesses.
  uint64_t PredictNextUseTick(BlockId id);

  const PrefetchStats& stats() const { return stats_; }
  // The detector's recent top-1 accuracy, by name ("cycle", "stride",
  // "markov", "reuse"); -1 for an unknown name.
  double Confidence(std::string_view detector) const;
  double link_bytes_per_s() const { return link_bytes_per_s_; }
  uint64_t compute_ns() const { return static_cast<uint64_t>(compute_ns_); }
  // Accesses observed so far.
  uint64_t ticks() const { return ticks_; }

 private:
  struct Outstanding {
    uint64_t issued_ns;
    uint64_t arrived_ns;  // 0: not yet
    uint64_t bytes;
    uint64_t tick;
  };

  void ConsumeHints(BlockId id);
  void AdvanceSchedule(BlockId id);
  void AccountPrefetch(BlockId id, uint64_t now_ns);
  void ExpirePrefetches();
  uint64_t ScheduleDistance(BlockId id) const;

  PrefetcherOptions options_;
  CycleDetector cycle_;
  StrideDetector stride_;
  MarkovDetector markov_;
  ReuseDetector reuse_;
  std::vector<PatternDetector*> detectors_;
  std::vector<double> confidence_;
  std::vector<BlockId> scratch_;

  uint64_t ticks_ = 0;
  std::deque<BlockId> hints_;
  std::vector<BlockId> schedule_;
  std::unordered_map<BlockId, std::vector<size_t>> schedule_positions_;
  size_t schedule_cursor_ = 0;  // position of the last matched access
  bool schedule_synced_ = false;

  bool has_top1_ = false;
  BlockId top1_ = 0;
  PrefetchStats stats_;

  uint64_t last_access_ns_ = 0;
  double compute_ns_ = 0;
  double block_bytes_ = 0;
  double link_bytes_per_s_;
  std::unordered_map<BlockId, Outstanding> outstanding_;
  std::deque<std::pair<uint64_t, BlockId>> issue_order_;  // (tick, id), for expiry
};

}  // namespace tiercache

#endif  // TIERCACHE_PREFETCH_PREFETCHER_H_
