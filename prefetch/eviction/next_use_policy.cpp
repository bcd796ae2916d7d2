#include "prefetch/eviction/next_use_policy.h"

#include <algorithm>

#include "common/check.h"

namespace tiercache {

void NextUsePolicy::Reorder(BlockId id, Entry& entry, uint64_t next_use, uint64_t seq) {
  // Moves the node rather than freeing and allocating one: this runs on
  // every acquire.
  auto node = order_.extract(Key{entry.next_use, ~entry.seq, id});
  entry.next_use = next_use;
  entry.seq = seq;
  if (node.empty()) {
    order_.insert(Key{next_use, ~seq, id});
    return;
  }
  node.value() = Key{next_use, ~seq, id};
  order_.insert(std::move(node));
}

void NextUsePolicy::OnInsert(BlockId id, uint64_t bytes) {
  auto it = entries_.find(id);
  if (it != entries_.end()) {
    Reorder(id, it->second, kNeverUsedAgain, ++seq_);
    return;
  }
  const uint64_t seq = ++seq_;
  entries_.emplace(id, Entry{kNeverUsedAgain, seq});
  order_.insert(Key{kNeverUsedAgain, ~seq, id});
}

void NextUsePolicy::OnAccess(BlockId id) {
  auto it = entries_.find(id);
  TC_CHECK(it != entries_.end(), "NextUsePolicy::OnAccess of a block that is not resident");
  Reorder(id, it->second, kNeverUsedAgain, ++seq_);
}

void NextUsePolicy::OnErase(BlockId id) {
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  order_.erase(Key{it->second.next_use, ~it->second.seq, id});
  entries_.erase(it);
}

void NextUsePolicy::OnPrediction(BlockId id, uint64_t next_use) {
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  Reorder(id, it->second, next_use, it->second.seq);
}

std::vector<BlockId> NextUsePolicy::ResidentsByRecency() const {
  std::vector<std::pair<uint64_t, BlockId>> by_seq;
  by_seq.reserve(entries_.size());
  for (const auto& [id, entry] : entries_) by_seq.emplace_back(entry.seq, id);
  std::sort(by_seq.begin(), by_seq.end());
  std::vector<BlockId> out;
  out.reserve(by_seq.size());
  for (const auto& [seq, id] : by_seq) out.push_back(id);
  return out;
}

std::optional<uint64_t> NextUsePolicy::PredictedNextUse(BlockId id) const {
  auto it = entries_.find(id);
  if (it == entries_.end()) return std::nullopt;
  return it->second.next_use;
}

void NextUsePolicy::RefreshOverdue() {
  // Each pass moves one overdue block to a time >= now or to unknown, so the
  // loop ends after at most size() steps.
  while (!order_.empty() && std::get<0>(*order_.begin()) < now_) {
    const BlockId id = std::get<2>(*order_.begin());
    Entry& entry = entries_.at(id);
    uint64_t next = source_ ? source_(id) : kNeverUsedAgain;
    if (next < now_) next = kNeverUsedAgain;
    Reorder(id, entry, next, entry.seq);
  }
}

std::optional<BlockId> NextUsePolicy::ChooseVictim(
    const std::function<bool(BlockId)>& can_evict) {
  RefreshOverdue();
  for (auto it = order_.rbegin(); it != order_.rend(); ++it) {
    if (can_evict(std::get<2>(*it))) return std::get<2>(*it);
  }
  return std::nullopt;
}

}  // namespace tiercache
