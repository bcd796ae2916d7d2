#include "prefetch/eviction/lru_policy.h"

#include "common/check.h"

namespace tiercache {

void LruPolicy::OnInsert(BlockId id, uint64_t bytes) {
  auto it = where_.find(id);
  if (it != where_.end()) {
    order_.splice(order_.begin(), order_, it->second);
    return;
  }
  order_.push_front(id);
  where_.emplace(id, order_.begin());
}

void LruPolicy::OnAccess(BlockId id) {
  auto it = where_.find(id);
  TC_CHECK(it != where_.end(), "LruPolicy::OnAccess of a block that is not resident");
  order_.splice(order_.begin(), order_, it->second);
}

void LruPolicy::OnErase(BlockId id) {
  auto it = where_.find(id);
  if (it == where_.end()) return;
  order_.erase(it->second);
  where_.erase(it);
}

std::optional<BlockId> LruPolicy::ChooseVictim(const std::function<bool(BlockId)>& can_evict) {
  for (auto it = order_.rbegin(); it != order_.rend(); ++it) {
    if (can_evict(*it)) return *it;
  }
  return std::nullopt;
}

}  // namespace tiercache
