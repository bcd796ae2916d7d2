// ArcPolicy: Adaptive Replacement Cache (Megiddo & Modha, FAST 2003),
// byte-adaptive.
//
// Resident blocks live in T1 (seen once recently) or T2 (seen at least
// twice); evicted ones leave their id in the ghost lists B1 / B2. A miss that
// finds its id in B1 grows the target size `p` of T1, one found in B2 shrinks
// it, and ChooseVictim takes T1's LRU block while T1 is over `p`, else T2's.
// Every size here is in bytes, not objects: `p`, the ghost bounds
// (|T1|+|B1| <= c, |T1|+|T2|+|B1|+|B2| <= 2c) and the adaptation step, which
// is max(1, |B2|/|B1|) times the size of the block that hit the ghost (and
// symmetrically), so a cache of mixed block sizes adapts to where its bytes
// are, as the GPU budget does.
//
// The cache, not the policy, decides when to evict, so REPLACE does not know
// the incoming block; the B2 tie rule of the paper is dropped.
//
// Thread safety: none; the owning cache serialises calls.
#ifndef TIERCACHE_PREFETCH_EVICTION_ARC_POLICY_H_
#define TIERCACHE_PREFETCH_EVICTION_ARC_POLICY_H_

#include <list>
#include <unordered_map>

#include "prefetch/eviction/eviction_policy.h"

namespace tiercache {

class ArcPolicy final : public EvictionPolicy {
 public:
  // REQUIRES: capacity_bytes > 0.
  explicit ArcPolicy(uint64_t capacity_bytes);

  std::string_view name() const override { return "arc"; }
  void OnInsert(BlockId id, uint64_t bytes) override;
  // REQUIRES: `id` is resident.
  void OnAccess(BlockId id) override;
  // A block erased right after ChooseVictim named it leaves a ghost; any
  // other erase (the engine freed it) forgets it. Unknown ids are ignored.
  void OnErase(BlockId id) override;
  std::optional<BlockId> ChooseVictim(const std::function<bool(BlockId)>& can_evict) override;

  uint64_t target_t1_bytes() const { return p_; }
  uint64_t ghost_bytes() const { return bytes_[kB1] + bytes_[kB2]; }

 private:
  enum ListId { kT1 = 0, kT2 = 1, kB1 = 2, kB2 = 3 };
  struct Entry {
    ListId list;
    std::list<BlockId>::iterator pos;
    uint64_t bytes;
  };

  void PushFront(BlockId id, ListId list, uint64_t bytes);
  void Unlink(std::unordered_map<BlockId, Entry>::iterator it);
  std::optional<BlockId> LruEvictable(ListId list, const std::function<bool(BlockId)>& can_evict);
  void DropGhost(ListId list);
  void TrimGhosts();

  uint64_t capacity_;
  uint64_t p_ = 0;
  std::list<BlockId> lists_[4];  // front: most recent
  uint64_t bytes_[4] = {0, 0, 0, 0};
  std::unordered_map<BlockId, Entry> entries_;
  std::optional<BlockId> last_victim_;
};

}  // namespace tiercache

#endif  // TIERCACHE_PREFETCH_EVICTION_ARC_POLICY_H_
