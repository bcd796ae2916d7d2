// BlockCache: the cycle plan (see block_cache.h). A cyclic scan over more
// blocks than the GPU cache holds is served best by keeping a fixed part of
// the cycle and streaming the rest through a small ring, the ring's oldest
// block making room for the next. Belady's rule moves as few bytes, but
// the block it evicts is the one used last, whose work the engine has just
// enqueued: each copy then waits for that work, and with the host a step
// ahead of its stream the kept set rotates (docs/runtime.md, "The cycle
// plan"; docs/perf.md has the measurements).
#include <algorithm>

#include "runtime/block_cache.h"
#include "runtime/block_cache_internal.h"

namespace tiercache {
namespace {

// How often, in acquires, a cache without a plan asks the predictor again.
constexpr uint64_t kRecheckAcquires = 8;

}  // namespace

void BlockCache::ClearCyclePlanLocked() {
  for (BlockId id : plan_kept_) {
    if (id < blocks_.size()) blocks_[id]->plan_kept = false;
  }
  plan_kept_.clear();
  plan_ring_slots_ = 0;
  plan_period_ = 0;
  plan_slot_bytes_ = 0;
}

void BlockCache::UpdateCyclePlanLocked() {
  const uint64_t every = plan_period_ != 0 ? plan_period_ : kRecheckAcquires;
  if (plan_checked_ && clock_ < plan_clock_ + every) return;
  plan_checked_ = true;
  plan_clock_ = clock_;
  std::vector<BlockId> order;
  if (config_.cycle_plan && predictor_ != nullptr && gpu_policy_->active() == "next-use") {
    order = predictor_->RepeatingOrder();
  }
  // Each block once a period (a forward-then-reverse cycle is left to
  // Belady), every one registered.
  std::vector<BlockId> sorted = order;
  std::sort(sorted.begin(), sorted.end());
  bool usable = order.size() >= 2 && std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end();
  uint64_t total = 0, largest = 0;
  for (size_t j = 0; usable && j < order.size(); ++j) {
    const Block* b = order[j] < blocks_.size() ? blocks_[order[j]].get() : nullptr;
    usable = b != nullptr && b->alive;
    if (usable) {
      total += b->bytes;
      largest = std::max(largest, b->bytes);
    }
  }
  const uint64_t capacity = gpu_capacity();
  // The cycle fits: nothing to plan.
  usable = usable && capacity != 0 && total > capacity;
  if (!usable) {
    ClearCyclePlanLocked();
    return;
  }
  // A ring slot holds the largest block, or more when the engine holds
  // several at once (a layer acquired as a group).
  const uint64_t slot_bytes = std::max(largest, held_peak_bytes_);
  held_peak_bytes_ = held_bytes_;
  // The same cycle still: the plan stands (re-planning would move the kept
  // part and cost its blocks a load each).
  if (plan_period_ == order.size() && slot_bytes <= plan_slot_bytes_ &&
      std::all_of(plan_kept_.begin(), plan_kept_.end(),
                  [&](BlockId id) { return std::binary_search(sorted.begin(), sorted.end(), id); })) {
    return;
  }
  ClearCyclePlanLocked();
  // One ring slot moves exactly MIN's bytes. With less than half the cycle
  // kept, the streamed run is long and a second slot lets each copy overlap
  // the work on the block before it, for one block more a cycle.
  const uint64_t slots = 2 * capacity >= total ? 1 : 2;
  if (capacity < slots * slot_bytes) return;
  const uint64_t room = capacity - slots * slot_bytes;
  // What the cache holds already is kept, those needed soonest first
  // (used longest ago, in a cycle; Belady's rule keeps the same), so that
  // adopting the plan costs no load; any room left takes the cycle's other
  // blocks from its smallest id on. Kept blocks need not be one run: a
  // copy into the ring overlaps the work on the kept blocks before it.
  std::vector<Block*> present, absent;
  const size_t n = order.size();
  const size_t first = static_cast<size_t>(std::min_element(order.begin(), order.end()) - order.begin());
  for (size_t j = 0; j < n; ++j) {
    Block* b = blocks_[order[(first + j) % n]].get();
    (b->gpu == Block::Gpu::kAbsent ? absent : present).push_back(b);
  }
  std::stable_sort(present.begin(), present.end(),
                   [](const Block* a, const Block* b) { return a->last_access < b->last_access; });
  present.insert(present.end(), absent.begin(), absent.end());
  uint64_t kept_bytes = 0;
  for (Block* b : present) {
    if (kept_bytes + b->bytes > room) continue;
    kept_bytes += b->bytes;
    b->plan_kept = true;
    plan_kept_.push_back(b->id);
  }
  if (plan_kept_.empty()) return;
  plan_ring_slots_ = slots;
  plan_period_ = n;
  plan_slot_bytes_ = slot_bytes;
}

const BlockCache::Block* BlockCache::PlannedVictimLocked(
    const std::function<bool(BlockId)>& evictable) const {
  const Block* pick = nullptr;
  for (const auto& b : blocks_) {
    if (!b->alive || b->gpu != Block::Gpu::kResident || b->plan_kept || b->prefetched) continue;
    if (!evictable(b->id)) continue;
    if (pick == nullptr || b->last_access < pick->last_access) pick = b.get();
  }
  return pick;
}

}  // namespace tiercache
