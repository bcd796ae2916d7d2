// StrideDetector: ids advancing by a constant step (block after block of a
// sequential scan, every k-th chunk of a tensor). Confident after
// kConfirmations equal, non-zero steps in a row; predicts id + step * j.
//
// Thread safety: none.
#ifndef TIERCACHE_PREFETCH_STRIDE_DETECTOR_H_
#define TIERCACHE_PREFETCH_STRIDE_DETECTOR_H_

#include "prefetch/pattern_detector.h"

namespace tiercache {

class StrideDetector final : public PatternDetector {
 public:
  static constexpr int kConfirmations = 2;
  static constexpr uint64_t kMaxDistance = 1 << 20;

  std::string_view name() const override { return "stride"; }
  void Observe(BlockId id, uint64_t bytes, uint64_t now) override;
  void PredictNext(size_t n, std::vector<BlockId>* out) const override;
  uint64_t PredictDistance(BlockId id, uint64_t now) const override;

  int64_t stride() const { return confirmed_ >= kConfirmations ? stride_ : 0; }

 private:
  bool started_ = false;
  BlockId last_ = 0;
  uint64_t now_ = 0;
  int64_t stride_ = 0;
  int confirmed_ = 0;
};

}  // namespace tiercache

#endif  // TIERCACHE_PREFETCH_STRIDE_DETECTOR_H_
