#include "prefetch/eviction/s3fifo_policy.h"

#include <algorithm>

#include "common/check.h"

namespace tiercache {

S3FifoPolicy::S3FifoPolicy(uint64_t capacity_bytes)
    : capacity_(capacity_bytes),
      small_target_(std::max<uint64_t>(1, static_cast<uint64_t>(
                                              static_cast<double>(capacity_bytes) * kSmallFraction))) {
  TC_CHECK(capacity_bytes > 0, "S3FifoPolicy needs a capacity");
}

bool S3FifoPolicy::InGhost(BlockId id) const {
  auto it = entries_.find(id);
  return it != entries_.end() && it->second.queue == kGhost;
}

void S3FifoPolicy::PushFront(BlockId id, QueueId queue, uint64_t bytes, int frequency) {
  queues_[queue].push_front(id);
  bytes_[queue] += bytes;
  entries_[id] = Entry{queue, queues_[queue].begin(), bytes, frequency};
}

void S3FifoPolicy::Move(EntryMap::iterator it, QueueId queue) {
  Entry& e = it->second;
  bytes_[e.queue] -= e.bytes;
  queues_[queue].splice(queues_[queue].begin(), queues_[e.queue], e.pos);
  e.queue = queue;
  e.pos = queues_[queue].begin();
  bytes_[queue] += e.bytes;
}

void S3FifoPolicy::OnInsert(BlockId id, uint64_t bytes) {
  auto it = entries_.find(id);
  if (it != entries_.end()) {
    if (it->second.queue != kGhost) {
      it->second.frequency = std::min(it->second.frequency + 1, kMaxFrequency);
      return;
    }
    // Seen recently enough to be remembered: it earned a place in M.
    bytes_[kGhost] -= it->second.bytes;
    queues_[kGhost].erase(it->second.pos);
    entries_.erase(it);
    PushFront(id, kMain, bytes, 0);
    return;
  }
  PushFront(id, kSmall, bytes, 0);
}

void S3FifoPolicy::OnAccess(BlockId id) {
  auto it = entries_.find(id);
  TC_CHECK(it != entries_.end() && it->second.queue != kGhost,
           "S3FifoPolicy::OnAccess of a block that is not resident");
  it->second.frequency = std::min(it->second.frequency + 1, kMaxFrequency);
}

void S3FifoPolicy::OnErase(BlockId id) {
  auto it = entries_.find(id);
  if (it == entries_.end() || it->second.queue == kGhost) return;
  const bool to_ghost = last_victim_ == id && it->second.queue == kSmall;
  last_victim_.reset();
  if (to_ghost) {
    Move(it, kGhost);
    const uint64_t ghost_limit = capacity_ - std::min(capacity_, small_target_);
    while (bytes_[kGhost] > ghost_limit && !queues_[kGhost].empty()) {
      auto old = entries_.find(queues_[kGhost].back());
      bytes_[kGhost] -= old->second.bytes;
      queues_[kGhost].pop_back();
      entries_.erase(old);
    }
    return;
  }
  bytes_[it->second.queue] -= it->second.bytes;
  queues_[it->second.queue].erase(it->second.pos);
  entries_.erase(it);
}

std::optional<BlockId> S3FifoPolicy::ChooseVictim(const std::function<bool(BlockId)>& can_evict) {
  last_victim_.reset();
  // Each step either finds the victim, promotes a block out of S (at most
  // |S| times), lowers a counter (at most 3 per block) or rotates a pinned
  // block; the bound only guards against queues full of pinned blocks.
  size_t budget = 5 * (queues_[kSmall].size() + queues_[kMain].size()) + 5;
  while (budget-- > 0 && (!queues_[kSmall].empty() || !queues_[kMain].empty())) {
    const bool from_small = !queues_[kSmall].empty() &&
                            (bytes_[kSmall] >= small_target_ || queues_[kMain].empty());
    const QueueId q = from_small ? kSmall : kMain;
    auto it = entries_.find(queues_[q].back());
    Entry& e = it->second;
    if (!can_evict(it->first)) {
      Move(it, q);  // rotate past the pinned block
    } else if (from_small && e.frequency > 0) {
      e.frequency = 0;
      Move(it, kMain);
    } else if (!from_small && e.frequency > 0) {
      --e.frequency;
      Move(it, kMain);
    } else {
      last_victim_ = it->first;
      return last_victim_;
    }
  }
  last_victim_ = FallbackScan(can_evict);
  return last_victim_;
}

std::optional<BlockId> S3FifoPolicy::FallbackScan(
    const std::function<bool(BlockId)>& can_evict) const {
  for (QueueId q : {kSmall, kMain}) {
    for (auto it = queues_[q].rbegin(); it != queues_[q].rend(); ++it) {
      if (can_evict(*it)) return *it;
    }
  }
  return std::nullopt;
}

}  // namespace tiercache
