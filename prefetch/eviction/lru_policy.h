// LruPolicy: evicts the least recently used resident block.
//
// A doubly linked list in recency order plus a hash map from block id to
// list position; every call is O(1) except ChooseVictim, which walks from the
// cold end past pinned blocks.
//
// Thread safety: none; the owning cache serialises calls.
#ifndef TIERCACHE_PREFETCH_EVICTION_LRU_POLICY_H_
#define TIERCACHE_PREFETCH_EVICTION_LRU_POLICY_H_

#include <list>
#include <unordered_map>

#include "prefetch/eviction/eviction_policy.h"

namespace tiercache {

class LruPolicy final : public EvictionPolicy {
 public:
  std::string_view name() const override { return "lru"; }
  // Inserting a resident id counts as an access.
  void OnInsert(BlockId id, uint64_t bytes) override;
  // REQUIRES: `id` is resident.
  void OnAccess(BlockId id) override;
  // Erasing an id that is not resident does nothing.
  void OnErase(BlockId id) override;
  std::optional<BlockId> ChooseVictim(const std::function<bool(BlockId)>& can_evict) override;

  size_t size() const { return where_.size(); }

 private:
  std::list<BlockId> order_;  // front: most recently used
  std::unordered_map<BlockId, std::list<BlockId>::iterator> where_;
};

}  // namespace tiercache

#endif  // TIERCACHE_PREFETCH_EVICTION_LRU_POLICY_H_
