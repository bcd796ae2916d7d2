// MarkovDetector: a first-order Markov model over block transitions, for
// data-dependent orders such as MoE routing (which experts follow which,
// layer after layer). Counts transitions a -> b, keeping the kMaxSuccessors
// most frequent successors per block (the least frequent is replaced, and
// counts are halved when one saturates, so the model follows drift).
//
// PredictNext expands the chain from the current block breadth-first,
// keeping the kBeam most probable blocks per step, and lists blocks by the
// step at which they are most likely, dropping paths below kMinProbability,
// for at most as many steps as it knows blocks (so asking for more blocks
// than a cycle holds returns each once).
// It has no distance opinion beyond the immediate successors (distance 1 for
// the most likely one).
//
// Thread safety: none.
#ifndef TIERCACHE_PREFETCH_MARKOV_DETECTOR_H_
#define TIERCACHE_PREFETCH_MARKOV_DETECTOR_H_

#include <unordered_map>

#include "prefetch/pattern_detector.h"

namespace tiercache {

class MarkovDetector final : public PatternDetector {
 public:
  static constexpr size_t kMaxSuccessors = 8;
  static constexpr size_t kBeam = 4;
  static constexpr double kMinProbability = 0.05;

  std::string_view name() const override { return "markov"; }
  void Observe(BlockId id, uint64_t bytes, uint64_t now) override;
  void PredictNext(size_t n, std::vector<BlockId>* out) const override;
  uint64_t PredictDistance(BlockId id, uint64_t now) const override;

  // P(next == b | current == a) as learned, 0 when unseen.
  double TransitionProbability(BlockId a, BlockId b) const;

 private:
  struct Successor {
    BlockId id;
    uint32_t count;
  };
  struct Node {
    std::vector<Successor> successors;  // sorted by count, descending
    uint64_t total = 0;
  };

  bool started_ = false;
  BlockId last_ = 0;
  uint64_t now_ = 0;
  std::unordered_map<BlockId, Node> nodes_;
};

}  // namespace tiercache

#endif  // TIERCACHE_PREFETCH_MARKOV_DETECTOR_H_
