// S3FifoPolicy: S3-FIFO (Yang et al., SOSP 2023).
//
// New blocks enter a small FIFO S sized at 10% of the capacity; blocks whose
// id is remembered by the ghost FIFO G go straight to the main FIFO M. Each
// resident block carries a 2-bit access counter (saturating at 3). When room
// is needed and S holds at least its 10% share (or M is empty), S's oldest
// block moves to M if it was accessed since insertion, else it is the victim
// and its id enters G. Otherwise M's oldest block is reinserted with its
// counter decremented while the counter is non-zero, else it is the victim.
// G remembers ids (and bytes) up to M's share of the capacity. Sizes are in
// bytes. Pinned blocks are rotated past, never evicted.
//
// Thread safety: none; the owning cache serialises calls.
#ifndef TIERCACHE_PREFETCH_EVICTION_S3FIFO_POLICY_H_
#define TIERCACHE_PREFETCH_EVICTION_S3FIFO_POLICY_H_

#include <list>
#include <unordered_map>

#include "prefetch/eviction/eviction_policy.h"

namespace tiercache {

class S3FifoPolicy final : public EvictionPolicy {
 public:
  static constexpr double kSmallFraction = 0.10;
  static constexpr int kMaxFrequency = 3;

  // REQUIRES: capacity_bytes > 0.
  explicit S3FifoPolicy(uint64_t capacity_bytes);

  std::string_view name() const override { return "s3fifo"; }
  // Re-inserting a resident id counts as an access.
  void OnInsert(BlockId id, uint64_t bytes) override;
  // REQUIRES: `id` is resident.
  void OnAccess(BlockId id) override;
  // A block erased right after ChooseVictim named it from S leaves a ghost.
  void OnErase(BlockId id) override;
  std::optional<BlockId> ChooseVictim(const std::function<bool(BlockId)>& can_evict) override;

  uint64_t small_bytes() const { return bytes_[kSmall]; }
  uint64_t main_bytes() const { return bytes_[kMain]; }
  bool InGhost(BlockId id) const;

 private:
  enum QueueId { kSmall = 0, kMain = 1, kGhost = 2 };
  struct Entry {
    QueueId queue;
    std::list<BlockId>::iterator pos;
    uint64_t bytes;
    int frequency;
  };
  using EntryMap = std::unordered_map<BlockId, Entry>;

  void PushFront(BlockId id, QueueId queue, uint64_t bytes, int frequency);
  void Move(EntryMap::iterator it, QueueId queue);
  std::optional<BlockId> FallbackScan(const std::function<bool(BlockId)>& can_evict) const;

  uint64_t capacity_;
  uint64_t small_target_;
  std::list<BlockId> queues_[3];  // front: newest
  uint64_t bytes_[3] = {0, 0, 0};
  EntryMap entries_;
  std::optional<BlockId> last_victim_;
};

}  // namespace tiercache

#endif  // TIERCACHE_PREFETCH_EVICTION_S3FIFO_POLICY_H_
