#include "prefetch/cycle_detector.h"

#include <algorithm>

namespace tiercache {

CycleDetector::CycleDetector() : history_(2 * kMaxPeriod), first_seen_(2 * kMaxPeriod) {}

void CycleDetector::Forget(uint64_t now) {
  // The slot about to be overwritten held the id seen history_.size()
  // accesses ago. If that was its newest occurrence, nothing the detector
  // can still look at mentions it: forget it.
  const uint64_t size = history_.size();
  if (observed_ <= size || now < size) return;
  auto it = seen_.find(At(now - size));
  if (it != seen_.end() && it->second.at[0] == now - size) seen_.erase(it);
}

bool CycleDetector::Verify(uint64_t candidate, uint64_t now) const {
  // One whole period of repeats is evidence enough for a period of at least
  // kMinWindow (a layer stack is adopted after its second pass); shorter
  // periods, which chance repeats more easily, need kVerifyWindow.
  const uint64_t window = candidate >= kMinWindow ? std::min(kVerifyWindow, candidate) : kVerifyWindow;
  if (candidate == 0 || candidate > kMaxPeriod || now + 1 < candidate + window) return false;
  uint64_t matches = 0, compared = 0;
  for (uint64_t j = 0; j < window; ++j) {
    if (first_seen_[(now - j) % history_.size()]) continue;
    ++compared;
    matches += At(now - j) == At(now - j - candidate);
  }
  return compared >= window / 2 && static_cast<double>(matches) >= kMinMatchShare * static_cast<double>(compared);
}

void CycleDetector::Observe(BlockId id, uint64_t bytes, uint64_t now) {
  now_ = now;
  ++observed_;
  Forget(now);
  history_[now % history_.size()] = id;
  auto [it, fresh] = seen_.try_emplace(id, Seen{{now, kNeverUsedAgain, kNeverUsedAgain}});
  first_seen_[now % history_.size()] = fresh;
  uint64_t* at = it->second.at;
  if (!fresh) {
    at[2] = at[1];
    at[1] = at[0];
    at[0] = now;
  }
  if (period_ != 0 && now >= period_) {
    // New ids cannot repeat anything; they neither confirm nor refute.
    if (!fresh) match_rate_ = 0.9 * match_rate_ + 0.1 * (At(now - period_) == id ? 1.0 : 0.0);
    if (match_rate_ >= kMinMatchShare) return;
    period_ = 0;
  }
  for (int back = 1; back <= 2; ++back) {
    if (at[back] == kNeverUsedAgain) return;
    if (Verify(now - at[back], now)) {
      period_ = now - at[back];
      match_rate_ = 1.0;
      return;
    }
  }
}

void CycleDetector::PredictNext(size_t n, std::vector<BlockId>* out) const {
  if (period_ == 0 || observed_ == 0) return;
  for (uint64_t j = 1; j <= n; ++j) out->push_back(At(now_ + 1 + (j - 1) % period_ - period_));
}

void CycleDetector::LastPeriod(std::vector<BlockId>* out) const {
  if (period_ == 0 || observed_ < period_) return;
  for (uint64_t j = period_; j >= 1; --j) out->push_back(At(now_ + 1 - j));
}

uint64_t CycleDetector::PredictDistance(BlockId id, uint64_t now) const {
  if (period_ == 0) return kNeverUsedAgain;
  auto it = seen_.find(id);
  if (it == seen_.end()) return kNeverUsedAgain;
  // The next use repeats the earliest occurrence within the last period.
  const uint64_t window_start = now_ + 1 > period_ ? now_ + 1 - period_ : 0;
  uint64_t earliest = kNeverUsedAgain;
  for (uint64_t t : it->second.at) {
    if (t != kNeverUsedAgain && t >= window_start && t < earliest) earliest = t;
  }
  if (earliest == kNeverUsedAgain) return kNeverUsedAgain;
  const uint64_t next = earliest + period_;
  return next > now ? next - now : kNeverUsedAgain;
}

}  // namespace tiercache
