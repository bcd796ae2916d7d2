#include "prefetch/eviction/adaptive_policy.h"

#include "prefetch/eviction/arc_policy.h"
#include "prefetch/eviction/lru_policy.h"
#include "prefetch/eviction/s3fifo_policy.h"

namespace tiercache {
namespace {

std::unique_ptr<EvictionPolicy> MakeCandidate(size_t i, uint64_t capacity) {
  switch (i) {
    case 0: return std::make_unique<NextUsePolicy>();
    case 1: return std::make_unique<LruPolicy>();
    case 2: return std::make_unique<ArcPolicy>(capacity);
    default: return std::make_unique<S3FifoPolicy>(capacity);
  }
}

}  // namespace

AdaptivePolicy::AdaptivePolicy(uint64_t capacity_bytes)
    : capacity_(capacity_bytes), real_next_use_(std::make_unique<NextUsePolicy>()) {
  for (size_t i = 0; i < kCandidates; ++i) shadows_[i].policy = MakeCandidate(i, capacity_bytes);
  shadow_next_use_ = static_cast<NextUsePolicy*>(shadows_[0].policy.get());
}

void AdaptivePolicy::OnInsert(BlockId id, uint64_t bytes) {
  real_next_use_->OnInsert(id, bytes);
  if (real_leader_ != nullptr) real_leader_->OnInsert(id, bytes);
  resident_[id] = bytes;
}

void AdaptivePolicy::OnAccess(BlockId id) {
  real_next_use_->OnAccess(id);
  if (real_leader_ != nullptr) real_leader_->OnAccess(id);
}

void AdaptivePolicy::OnErase(BlockId id) {
  real_next_use_->OnErase(id);
  if (real_leader_ != nullptr) real_leader_->OnErase(id);
  resident_.erase(id);
}

std::optional<BlockId> AdaptivePolicy::ChooseVictim(const std::function<bool(BlockId)>& can_evict) {
  return real_leader_ != nullptr ? real_leader_->ChooseVictim(can_evict)
                                 : real_next_use_->ChooseVictim(can_evict);
}

void AdaptivePolicy::Follow(size_t leader) {
  leader_ = leader;
  ++switches_;
  if (leader == 0) {
    real_leader_.reset();
    return;
  }
  // The new leader starts from the real cache's residents, oldest access
  // first, so its recency order matches what the cache has seen.
  real_leader_ = MakeCandidate(leader, capacity_);
  for (BlockId id : real_next_use_->ResidentsByRecency()) {
    auto it = resident_.find(id);
    if (it != resident_.end()) real_leader_->OnInsert(id, it->second);
  }
}

void AdaptivePolicy::OnPrediction(BlockId id, uint64_t next_use) {
  real_next_use_->OnPrediction(id, next_use);
  shadow_next_use_->OnPrediction(id, next_use);  // ignored unless resident there
}

void AdaptivePolicy::OnTick(uint64_t now) {
  real_next_use_->OnTick(now);
  shadow_next_use_->OnTick(now);
}

void AdaptivePolicy::SetNextUseSource(std::function<uint64_t(BlockId)> source) {
  real_next_use_->SetNextUseSource(source);
  shadow_next_use_->SetNextUseSource(std::move(source));
}

std::optional<uint64_t> AdaptivePolicy::PredictedNextUse(BlockId id) const {
  return real_next_use_->PredictedNextUse(id);
}

std::string_view AdaptivePolicy::active() const { return shadows_[leader_].policy->name(); }

std::vector<EvictionPolicy::CandidateScore> AdaptivePolicy::Candidates() const {
  std::vector<CandidateScore> out;
  for (size_t i = 0; i < kCandidates; ++i) {
    out.push_back({std::string(shadows_[i].policy->name()), shadows_[i].hits, requests_});
  }
  return out;
}

void AdaptivePolicy::OnRequest(BlockId id, uint64_t bytes) {
  ++requests_;
  constexpr double kDecay = 1.0 - 1.0 / kWindow;
  decayed_requests_ = decayed_requests_ * kDecay + 1;
  for (Shadow& s : shadows_) {
    bool hit = false;
    ShadowRequest(s, id, bytes, &hit);
    s.score = s.score * kDecay + (hit ? 1.0 : 0.0);
    s.hits += hit;
  }
  ChooseLeader();
}

void AdaptivePolicy::ShadowRequest(Shadow& s, BlockId id, uint64_t bytes, bool* hit) {
  auto it = s.resident.find(id);
  if (it != s.resident.end()) {
    *hit = true;
    s.policy->OnAccess(id);
    return;
  }
  if (bytes > capacity_) return;  // bypassed, as the cache would
  while (s.used + bytes > capacity_) {
    std::optional<BlockId> victim = s.policy->ChooseVictim([](BlockId) { return true; });
    if (!victim) break;
    auto v = s.resident.find(*victim);
    s.policy->OnErase(*victim);
    if (v == s.resident.end()) break;  // a policy out of step: give up rather than loop
    s.used -= v->second;
    s.resident.erase(v);
  }
  s.policy->OnInsert(id, bytes);
  s.resident.emplace(id, bytes);
  s.used += bytes;
}

void AdaptivePolicy::ChooseLeader() {
  size_t best = leader_;
  for (size_t i = 0; i < kCandidates; ++i) {
    if (shadows_[i].score > shadows_[best].score) best = i;
  }
  if (best != leader_ &&
      shadows_[best].score > shadows_[leader_].score + kSwitchMargin * decayed_requests_ + kSwitchHits) {
    Follow(best);
  }
}

}  // namespace tiercache
