#include "prefetch/eviction/arc_policy.h"

#include <algorithm>

#include "common/check.h"

namespace tiercache {

ArcPolicy::ArcPolicy(uint64_t capacity_bytes) : capacity_(capacity_bytes) {
  TC_CHECK(capacity_bytes > 0, "ArcPolicy needs a capacity");
}

void ArcPolicy::PushFront(BlockId id, ListId list, uint64_t bytes) {
  lists_[list].push_front(id);
  bytes_[list] += bytes;
  entries_[id] = Entry{list, lists_[list].begin(), bytes};
}

void ArcPolicy::Unlink(std::unordered_map<BlockId, Entry>::iterator it) {
  Entry& e = it->second;
  lists_[e.list].erase(e.pos);
  bytes_[e.list] -= e.bytes;
}

void ArcPolicy::OnInsert(BlockId id, uint64_t bytes) {
  auto it = entries_.find(id);
  if (it != entries_.end()) {
    const ListId list = it->second.list;
    Unlink(it);
    entries_.erase(it);
    if (list == kB1) {
      // A recency ghost hit: T1 was too small.
      const double step = std::max(1.0, static_cast<double>(bytes_[kB2]) /
                                            static_cast<double>(std::max<uint64_t>(bytes_[kB1] + bytes, 1)));
      p_ = std::min<uint64_t>(capacity_, p_ + static_cast<uint64_t>(step * static_cast<double>(bytes)));
    } else if (list == kB2) {
      // A frequency ghost hit: T2 was too small.
      const double step = std::max(1.0, static_cast<double>(bytes_[kB1]) /
                                            static_cast<double>(std::max<uint64_t>(bytes_[kB2] + bytes, 1)));
      const uint64_t delta = static_cast<uint64_t>(step * static_cast<double>(bytes));
      p_ = p_ > delta ? p_ - delta : 0;
    }
    // Ghost hits and re-inserts of resident ids both land in T2.
    PushFront(id, kT2, bytes);
  } else {
    PushFront(id, kT1, bytes);
  }
  TrimGhosts();
}

void ArcPolicy::OnAccess(BlockId id) {
  auto it = entries_.find(id);
  TC_CHECK(it != entries_.end() && (it->second.list == kT1 || it->second.list == kT2),
           "ArcPolicy::OnAccess of a block that is not resident");
  const uint64_t bytes = it->second.bytes;
  Unlink(it);
  PushFront(id, kT2, bytes);
}

void ArcPolicy::OnErase(BlockId id) {
  auto it = entries_.find(id);
  if (it == entries_.end() || it->second.list == kB1 || it->second.list == kB2) return;
  const ListId list = it->second.list;
  const uint64_t bytes = it->second.bytes;
  Unlink(it);
  entries_.erase(it);
  if (last_victim_ == id) {
    PushFront(id, list == kT1 ? kB1 : kB2, bytes);
    TrimGhosts();
  }
  last_victim_.reset();
}

std::optional<BlockId> ArcPolicy::LruEvictable(ListId list,
                                               const std::function<bool(BlockId)>& can_evict) {
  for (auto it = lists_[list].rbegin(); it != lists_[list].rend(); ++it) {
    if (can_evict(*it)) return *it;
  }
  return std::nullopt;
}

std::optional<BlockId> ArcPolicy::ChooseVictim(const std::function<bool(BlockId)>& can_evict) {
  const bool t1_first = bytes_[kT1] > 0 && (bytes_[kT1] > p_ || lists_[kT2].empty());
  std::optional<BlockId> victim = LruEvictable(t1_first ? kT1 : kT2, can_evict);
  if (!victim) victim = LruEvictable(t1_first ? kT2 : kT1, can_evict);
  last_victim_ = victim;
  return victim;
}

void ArcPolicy::DropGhost(ListId list) {
  const BlockId id = lists_[list].back();
  auto it = entries_.find(id);
  Unlink(it);
  entries_.erase(it);
}

void ArcPolicy::TrimGhosts() {
  while (!lists_[kB1].empty() && bytes_[kT1] + bytes_[kB1] > capacity_) DropGhost(kB1);
  auto total = [&] { return bytes_[kT1] + bytes_[kT2] + bytes_[kB1] + bytes_[kB2]; };
  while (!lists_[kB2].empty() && total() > 2 * capacity_) DropGhost(kB2);
  while (!lists_[kB1].empty() && total() > 2 * capacity_) DropGhost(kB1);
}

}  // namespace tiercache
