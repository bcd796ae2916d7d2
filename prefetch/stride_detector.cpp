#include "prefetch/stride_detector.h"

namespace tiercache {

void StrideDetector::Observe(BlockId id, uint64_t bytes, uint64_t now) {
  // Differences are taken modulo 2^64 and read as signed: both directions work.
  const auto step = static_cast<int64_t>(id - last_);
  if (started_ && step != 0 && step == stride_) {
    if (confirmed_ < kConfirmations) ++confirmed_;
  } else {
    stride_ = started_ ? step : 0;
    confirmed_ = 0;
  }
  started_ = true;
  last_ = id;
  now_ = now;
}

void StrideDetector::PredictNext(size_t n, std::vector<BlockId>* out) const {
  if (stride() == 0) return;
  BlockId id = last_;
  for (size_t j = 0; j < n; ++j) {
    id += static_cast<uint64_t>(stride_);
    out->push_back(id);
  }
}

uint64_t StrideDetector::PredictDistance(BlockId id, uint64_t now) const {
  if (stride() == 0 || now != now_) return kNeverUsedAgain;
  const uint64_t delta = id - last_;
  const uint64_t step = static_cast<uint64_t>(stride_);
  // Forward along the stride: delta == step * k for a small k >= 1.
  const uint64_t magnitude = stride_ > 0 ? step : 0 - step;
  const uint64_t signed_delta = stride_ > 0 ? delta : 0 - delta;
  if (signed_delta == 0 || signed_delta % magnitude != 0) return kNeverUsedAgain;
  const uint64_t k = signed_delta / magnitude;
  return k <= kMaxDistance ? k : kNeverUsedAgain;
}

}  // namespace tiercache
