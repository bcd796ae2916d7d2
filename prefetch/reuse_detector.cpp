#include "prefetch/reuse_detector.h"

#include <algorithm>

namespace tiercache {

void ReuseDetector::Observe(BlockId id, uint64_t bytes, uint64_t now) {
  now_ = now;
  auto [it, fresh] = blocks_.try_emplace(id);
  Block& b = it->second;
  if (!fresh) {
    b.gaps[b.next] = now - b.last;
    b.next = (b.next + 1) % kGapHistory;
    if (b.count < kGapHistory) ++b.count;
  }
  b.last = now;
  if (b.expected != kNeverUsedAgain) by_expected_.erase({b.expected, id});
  if (b.count == 0) return;
  uint64_t sum = 0;
  for (uint32_t i = 0; i < b.count; ++i) sum += b.gaps[i];
  b.expected = now + (sum + b.count / 2) / b.count;
  by_expected_.insert({b.expected, id});
}

void ReuseDetector::PredictNext(size_t n, std::vector<BlockId>* out) const {
  for (auto it = by_expected_.lower_bound({now_ + 1, 0}); it != by_expected_.end() && n > 0; ++it, --n) {
    out->push_back(it->second);
  }
}

uint64_t ReuseDetector::PredictDistance(BlockId id, uint64_t now) const {
  auto it = blocks_.find(id);
  if (it == blocks_.end() || it->second.count == 0) return kNeverUsedAgain;
  const Block& b = it->second;
  const uint64_t age = now - b.last;
  uint64_t sum_all = 0;
  uint64_t ahead[kGapHistory];
  size_t n = 0;
  for (uint32_t i = 0; i < b.count; ++i) {
    sum_all += b.gaps[i];
    if (b.gaps[i] > age) ahead[n++] = b.gaps[i] - age;
  }
  if (n == 0) return age + sum_all / b.count;
  // Harmonic mean of the remaining waits: a block that usually returns soon
  // is not pushed far away by one long absence (the arithmetic mean is).
  double inverse = 0;
  for (size_t i = 0; i < n; ++i) inverse += 1.0 / static_cast<double>(ahead[i]);
  return std::max<uint64_t>(1, static_cast<uint64_t>(static_cast<double>(n) / inverse + 0.5));
}

}  // namespace tiercache
