#include "prefetch/prefetcher.h"

#include <algorithm>

#include "prefetch/lookahead.h"

namespace tiercache {

namespace {
constexpr double kConfidenceWeight = 0.05;  // EWMA weight of the newest outcome
constexpr double kTimingWeight = 0.1;
}  // namespace

Prefetcher::Prefetcher(PrefetcherOptions options)
    : options_(options), link_bytes_per_s_(options.initial_link_bytes_per_s) {
  detectors_ = {&cycle_, &stride_, &markov_, &reuse_};
  confidence_.assign(detectors_.size(), 0.0);
}

double Prefetcher::Confidence(std::string_view detector) const {
  for (size_t i = 0; i < detectors_.size(); ++i) {
    if (detectors_[i]->name() == detector) return confidence_[i];
  }
  return -1;
}

void Prefetcher::OnAccess(BlockId id, uint64_t bytes, uint64_t now_ns) {
  ++stats_.accesses;
  if (has_top1_) {
    ++stats_.predictions;
    stats_.correct_predictions += top1_ == id;
  }
  AccountPrefetch(id, now_ns);
  if (ticks_ > 0 && now_ns >= last_access_ns_) {
    const double interval = static_cast<double>(now_ns - last_access_ns_);
    compute_ns_ = ticks_ == 1 ? interval : (1 - kTimingWeight) * compute_ns_ + kTimingWeight * interval;
  }
  last_access_ns_ = now_ns;
  block_bytes_ = ticks_ == 0 ? static_cast<double>(bytes)
                             : (1 - kTimingWeight) * block_bytes_ + kTimingWeight * static_cast<double>(bytes);
  for (size_t i = 0; options_.learn && i < detectors_.size(); ++i) {
    scratch_.clear();
    detectors_[i]->PredictNext(1, &scratch_);
    const double right = !scratch_.empty() && scratch_[0] == id ? 1.0 : 0.0;
    confidence_[i] = (1 - kConfidenceWeight) * confidence_[i] + kConfidenceWeight * right;
    detectors_[i]->Observe(id, bytes, ticks_);
  }
  ConsumeHints(id);
  AdvanceSchedule(id);
  ++ticks_;
  ExpirePrefetches();
  std::vector<BlockId> next = PredictNext(1);
  has_top1_ = !next.empty();
  if (has_top1_) top1_ = next[0];
}

void Prefetcher::Hint(const std::vector<BlockId>& next) { hints_.assign(next.begin(), next.end()); }

void Prefetcher::ConsumeHints(BlockId id) {
  auto it = std::find(hints_.begin(), hints_.end(), id);
  if (it == hints_.end()) {
    hints_.clear();  // contradicted: back to learning
  } else {
    hints_.erase(hints_.begin(), it + 1);
  }
}

void Prefetcher::SetSchedule(std::vector<BlockId> order) {
  schedule_ = std::move(order);
  schedule_positions_.clear();
  for (size_t i = 0; i < schedule_.size(); ++i) schedule_positions_[schedule_[i]].push_back(i);
  schedule_cursor_ = 0;
  schedule_synced_ = false;
}

void Prefetcher::AdvanceSchedule(BlockId id) {
  auto it = schedule_positions_.find(id);
  if (it == schedule_positions_.end()) return;  // not part of the schedule
  const size_t n = schedule_.size();
  if (!schedule_synced_) {
    schedule_cursor_ = it->second.front();
    schedule_synced_ = true;
    return;
  }
  size_t best = it->second.front(), best_ahead = n;
  for (size_t p : it->second) {
    const size_t ahead = (p + n - schedule_cursor_ - 1) % n;
    if (ahead < best_ahead) {
      best_ahead = ahead;
      best = p;
    }
  }
  schedule_cursor_ = best;
}

uint64_t Prefetcher::ScheduleDistance(BlockId id) const {
  if (!schedule_synced_) return kNeverUsedAgain;
  auto it = schedule_positions_.find(id);
  if (it == schedule_positions_.end()) return kNeverUsedAgain;
  const size_t n = schedule_.size();
  uint64_t best = kNeverUsedAgain;
  for (size_t p : it->second) best = std::min<uint64_t>(best, (p + n - schedule_cursor_ - 1) % n + 1);
  return best;
}

std::vector<BlockId> Prefetcher::PredictNext(size_t max_blocks) {
  std::vector<BlockId> out;
  auto add = [&](BlockId id) {
    if (out.size() < max_blocks && std::find(out.begin(), out.end(), id) == out.end()) out.push_back(id);
  };
  for (BlockId id : hints_) add(id);
  if (schedule_synced_) {
    for (size_t j = 1; j <= schedule_.size() && out.size() < max_blocks; ++j) {
      add(schedule_[(schedule_cursor_ + j) % schedule_.size()]);
    }
  }
  std::vector<size_t> order(detectors_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return confidence_[a] > confidence_[b]; });
  for (size_t i : order) {
    if (!options_.learn || out.size() >= max_blocks || confidence_[i] < options_.min_confidence) break;
    scratch_.clear();
    detectors_[i]->PredictNext(max_blocks, &scratch_);
    for (BlockId id : scratch_) add(id);
  }
  return out;
}

uint64_t Prefetcher::PredictDistance(BlockId id) {
  auto hint = std::find(hints_.begin(), hints_.end(), id);
  if (hint != hints_.end()) return static_cast<uint64_t>(hint - hints_.begin()) + 1;
  if (uint64_t d = ScheduleDistance(id); d != kNeverUsedAgain) return d;
  if (!options_.learn) return kNeverUsedAgain;
  const uint64_t now = ticks_ == 0 ? 0 : ticks_ - 1;
  if (Confidence("cycle") >= options_.cycle_distance_confidence) {
    if (uint64_t d = cycle_.PredictDistance(id, now); d != kNeverUsedAgain) return d;
  }
  if (Confidence("stride") >= options_.cycle_distance_confidence) {
    if (uint64_t d = stride_.PredictDistance(id, now); d != kNeverUsedAgain) return d;
  }
  return reuse_.PredictDistance(id, now);
}

std::vector<BlockId> Prefetcher::RepeatingOrder() {
  if (!schedule_.empty()) return schedule_;
  std::vector<BlockId> order;
  if (options_.learn && cycle_.match_rate() >= options_.cycle_distance_confidence) cycle_.LastPeriod(&order);
  return order;
}

void Prefetcher::AppendCandidates(uint64_t horizon, size_t max_blocks,
                                  const std::function<bool(BlockId)>& wanted, std::vector<BlockId>* list) {
  if (!options_.learn || max_blocks == 0 || !schedule_.empty() ||
      cycle_.match_rate() >= options_.cycle_distance_confidence) {
    return;
  }
  std::vector<std::pair<uint64_t, BlockId>> picks;
  auto fresh = [&](BlockId id) {
    return std::find(list->begin(), list->end(), id) == list->end() && wanted(id);
  };
  reuse_.Candidates(horizon, options_.candidate_min_probability, max_blocks, fresh, &picks);
  for (const auto& [wait, id] : picks) list->push_back(id);
}

uint64_t Prefetcher::PredictNextUseTick(BlockId id) {
  const uint64_t d = PredictDistance(id);
  if (d == kNeverUsedAgain) return kNeverUsedAgain;
  return (ticks_ == 0 ? 0 : ticks_ - 1) + d;
}

void Prefetcher::OnPrefetchIssued(BlockId id, uint64_t bytes, uint64_t now_ns) {
  ++stats_.issued;
  stats_.issued_bytes += bytes;
  outstanding_[id] = Outstanding{now_ns, 0, bytes, ticks_};
  issue_order_.emplace_back(ticks_, id);
}

void Prefetcher::OnPrefetchArrived(BlockId id, uint64_t now_ns) {
  auto it = outstanding_.find(id);
  if (it == outstanding_.end() || it->second.arrived_ns != 0) return;
  it->second.arrived_ns = std::max<uint64_t>(now_ns, 1);
  if (now_ns > it->second.issued_ns && it->second.bytes > 0) {
    const double rate = static_cast<double>(it->second.bytes) * 1e9 / static_cast<double>(now_ns - it->second.issued_ns);
    link_bytes_per_s_ = (1 - kTimingWeight) * link_bytes_per_s_ + kTimingWeight * rate;
  }
}

void Prefetcher::AccountPrefetch(BlockId id, uint64_t now_ns) {
  auto it = outstanding_.find(id);
  if (it == outstanding_.end()) return;
  ++stats_.useful;
  if (it->second.arrived_ns == 0 || it->second.arrived_ns > now_ns) ++stats_.late;
  outstanding_.erase(it);
}

void Prefetcher::ExpirePrefetches() {
  while (!issue_order_.empty() && issue_order_.front().first + options_.waste_horizon < ticks_) {
    const auto [tick, id] = issue_order_.front();
    issue_order_.pop_front();
    auto it = outstanding_.find(id);
    if (it == outstanding_.end() || it->second.tick != tick) continue;  // read, or re-issued later
    ++stats_.wasted;
    stats_.wasted_bytes += it->second.bytes;
    outstanding_.erase(it);
  }
}

size_t Prefetcher::Lookahead(uint64_t free_budget_bytes, double link_bytes_per_s) {
  LookaheadInputs in;
  in.link_bytes_per_s = link_bytes_per_s > 0 ? link_bytes_per_s : link_bytes_per_s_;
  in.block_bytes = static_cast<uint64_t>(block_bytes_ + 0.5);
  in.compute_ns = static_cast<uint64_t>(compute_ns_ + 0.5);
  in.free_budget_bytes = free_budget_bytes;
  in.max_depth = options_.max_depth;
  return LookaheadDepth(in);
}

}  // namespace tiercache
