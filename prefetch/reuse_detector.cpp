#include "prefetch/reuse_detector.h"

#include <algorithm>
#include <cmath>

namespace tiercache {

namespace {
constexpr double kPooledHistory = 4096;  // gaps remembered by the pooled estimates
constexpr double kVoteHalfLife = 4096;   // round votes are halved after this many
constexpr double kMaxDistance = 1e15;    // keeps predictions clear of kNeverUsedAgain
}  // namespace

void ReuseDetector::VoteRound(uint64_t gap) {
  if (gap == 0 || gap > kMaxRound) return;
  double& v = gap_votes_[gap];
  v += 1;
  if (v > gap_votes_[round_] || round_ == gap) round_ = gap;
  if (++votes_ < kVoteHalfLife) return;
  // Halve and prune: old votes fade, the map holds only recent gaps.
  votes_ = 0;
  double best = 0;
  for (auto it = gap_votes_.begin(); it != gap_votes_.end();) {
    it->second /= 2;
    if (it->second < 0.5) {
      it = gap_votes_.erase(it);
      continue;
    }
    if (it->second > best) {
      best = it->second;
      round_ = it->first;
    }
    ++it;
  }
}

uint64_t ReuseDetector::Rounds(uint64_t gap) const {
  return std::max<uint64_t>(1, (gap + round_ / 2) / round_);
}

void ReuseDetector::Observe(BlockId id, uint64_t bytes, uint64_t now) {
  now_ = now;
  auto [it, fresh] = blocks_.try_emplace(id);
  Block& b = it->second;
  if (!fresh) {
    const uint64_t gap = now - b.last;
    VoteRound(gap);
    const uint64_t rounds = Rounds(gap);
    const double keep = 1 - 1 / kHistory, keep_pooled = 1 - 1 / kPooledHistory;
    b.kept *= keep;
    b.missed *= keep;
    b.idle *= keep;
    pooled_.kept *= keep_pooled;
    pooled_.missed *= keep_pooled;
    pooled_.idle *= keep_pooled;
    if (rounds == 1) {
      b.kept += 1;
      pooled_.kept += 1;
    } else {
      b.missed += 1;
      b.idle += static_cast<double>(rounds - 1);
      pooled_.missed += 1;
      pooled_.idle += static_cast<double>(rounds - 1);
    }
    by_due_.erase({b.due, id});
  }
  b.last = now;
  b.due = now + round_;
  by_due_.insert({b.due, id});
  if (fresh && blocks_.size() > kMaxBlocks) {
    // Over the cap: forget the block whose round came longest ago (in
    // practice one seen once, long ago: a fresh activation).
    const BlockId oldest = by_due_.begin()->second;
    by_due_.erase(by_due_.begin());
    blocks_.erase(oldest);
  }
}

double ReuseDetector::Stickiness(BlockId id) const {
  const double pooled = (pooled_.kept + 0.5) / (pooled_.kept + pooled_.missed + 1);
  auto it = blocks_.find(id);
  if (it == blocks_.end()) return pooled;
  const Block& b = it->second;
  return (b.kept + pooled) / (b.kept + b.missed + 1);
}

double ReuseDetector::Rate(BlockId id, uint64_t idle_rounds) const {
  // One pseudo-return over the pooled mean wait: the prior.
  const double pooled_wait = (pooled_.idle + 1) / (pooled_.missed + 1);
  auto it = blocks_.find(id);
  const double returns = it == blocks_.end() ? 0 : it->second.missed;
  const double waited = it == blocks_.end() ? 0 : it->second.idle;
  return (returns + 1) / (waited + static_cast<double>(idle_rounds) + pooled_wait);
}

void ReuseDetector::PredictNext(size_t n, std::vector<BlockId>* out) const {
  const uint64_t tolerance = round_ / 8;
  const uint64_t from = now_ + 1 > tolerance ? now_ + 1 - tolerance : 0;
  for (auto it = by_due_.lower_bound({from, 0}); it != by_due_.end() && n > 0; ++it) {
    if (Stickiness(it->second) < kMinStickiness) continue;
    out->push_back(it->second);
    --n;
  }
}

void ReuseDetector::NextRound(uint64_t age, uint64_t* round_index, uint64_t* wait) const {
  const uint64_t round = round_, tolerance = round_ / 8;
  // The next round not yet past (a use may come up to `tolerance` late:
  // the slot of an expert within its layer shifts with the other choices).
  const uint64_t k = age <= round + tolerance ? 1 : (age - tolerance + round - 1) / round;
  *round_index = k;
  *wait = k * round > age ? k * round - age : 1;
}

void ReuseDetector::Candidates(uint64_t horizon, double min_probability, size_t n,
                               const std::function<bool(BlockId)>& wanted,
                               std::vector<std::pair<uint64_t, BlockId>>* out) const {
  // Not before a round's worth of returns has been seen, nor for a stream
  // whose blocks nearly all come back the very next round: that order is
  // fixed, and PredictNext names it.
  const double observed = pooled_.kept + pooled_.missed;
  if (round_ <= 1 || n == 0 || observed < static_cast<double>(round_) ||
      pooled_.kept / observed > kMaxPooledStickiness) {
    return;
  }
  struct Pick {
    double p;
    uint64_t wait;
    BlockId id;
  };
  std::vector<Pick> picks;
  // Only blocks used in the last kCandidateRounds rounds (by_due_ orders
  // them by their last use), not every block remembered: this runs after
  // every acquire, and a long-idle block's rate has decayed anyway.
  const uint64_t span = kCandidateRounds * round_;
  const uint64_t oldest_due = now_ > span ? now_ - span : 0;
  for (auto it = by_due_.lower_bound({oldest_due, 0}); it != by_due_.end(); ++it) {
    const BlockId id = it->second;
    const Block& b = blocks_.at(id);
    uint64_t k = 0, wait = 0;
    NextRound(now_ > b.last ? now_ - b.last : 0, &k, &wait);
    if (wait > horizon) continue;
    const double p = k == 1 ? Stickiness(id) : Rate(id, k - 2);
    if (p < min_probability || !wanted(id)) continue;
    picks.push_back({p, wait, id});
  }
  const size_t keep = std::min(n, picks.size());
  std::partial_sort(picks.begin(), picks.begin() + static_cast<std::ptrdiff_t>(keep), picks.end(),
                    [](const Pick& a, const Pick& b) { return a.p != b.p ? a.p > b.p : a.wait < b.wait; });
  for (size_t i = 0; i < keep; ++i) out->push_back({picks[i].wait, picks[i].id});
}

uint64_t ReuseDetector::PredictDistance(BlockId id, uint64_t now) const {
  auto it = blocks_.find(id);
  if (it == blocks_.end()) return kNeverUsedAgain;
  const uint64_t age = now > it->second.last ? now - it->second.last : 0;
  const uint64_t round = round_;
  uint64_t k = 0, wait = 0;
  NextRound(age, &k, &wait);
  const double rate = Rate(id, k >= 2 ? k - 2 : 0);
  const double p = k == 1 ? Stickiness(id) : rate;
  // Both branches are accesses of residence per expected hit. A block in
  // its first round is judged over that decisive round (if it misses, it
  // turns cold and is asked again once this prediction is overdue); a cold
  // block's chance is the same every round, so holding it until it returns
  // costs its expected wait.
  const double distance = k == 1 ? static_cast<double>(wait) / p
                                 : static_cast<double>(wait) + static_cast<double>(round) * (1 - p) / rate;
  return static_cast<uint64_t>(std::clamp(distance, 1.0, kMaxDistance));
}

}  // namespace tiercache
