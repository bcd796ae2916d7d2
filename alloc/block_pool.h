// BlockPool: the DeviceAllocator's shared pool (internal to alloc/).
//
// Contract: owns the segments obtained from the Device and every free block
// that is not in a stream's fast-path cache. A free block is either owned by
// the stream it was freed on (reusable by that stream at once, by others
// once the fence recorded on that stream when the block entered the pool
// has completed) or settled (its fence completed: any stream may take it).
// Best fit by (size, address) over the blocks the asking stream may use;
// free neighbours coalesce (settled with settled, a stream's own with its
// own or with settled ones, taking the later fence); a segment that is one
// settled free block may go back to the device. Where the device maps
// virtual memory, large blocks live in one arena (a reserved address range
// mapped from its start) that grows by the granules a request lacks beyond
// its free tail and gives free granules at its end back. The PointerMap is the address -> Block index shared with the
// allocator's lock-free paths; the pool updates it when it splits, merges
// or releases blocks.
//
// Thread safety: every public method takes the pool mutex; none calls back
// into the allocator. Block::state, stream and requested are atomics because
// the allocator's fast path touches blocks without the pool mutex; address,
// size and neighbours change only under it, and only for free blocks.
#ifndef TIERCACHE_ALLOC_BLOCK_POOL_H_
#define TIERCACHE_ALLOC_BLOCK_POOL_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "alloc/device.h"
#include "alloc/device_allocator.h"

namespace tiercache {
namespace alloc_internal {

// Split granularity of the pool; keeps every block 256-byte aligned.
constexpr uint64_t kMinBlock = 512;

enum class BlockState : uint8_t { kAllocated, kCached, kFree };

// Guards the fast path's tiny critical sections (a vector push or pop, a
// hash lookup): an uncontended lock and unlock are one exchange and one
// store, less than half of a pthread mutex pair. Yields while the holder
// is descheduled rather than burning its time slice.
class SpinLock {
 public:
  void lock() {
    for (int spins = 0; flag_.exchange(true, std::memory_order_acquire);) {
      while (flag_.load(std::memory_order_relaxed)) {
        if (++spins > 64) std::this_thread::yield();
      }
    }
  }
  void unlock() { flag_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool> flag_{false};
};

struct Segment;

struct alignas(64) Block {  // a cache line each: threads on different streams never share one
  uintptr_t address = 0;
  uint64_t size = 0;
  Segment* segment = nullptr;
  Block* prev = nullptr;  // address neighbours inside the segment
  Block* next = nullptr;
  std::atomic<BlockState> state{BlockState::kFree};
  std::atomic<Stream> stream{nullptr};   // allocated: handed to; cached/free: freed on
  std::atomic<uint64_t> requested{0};    // bytes the caller asked for, while allocated
  std::atomic<uint64_t> trace_id{0};
  // While cached: BlockPool::NextFenceId() when it was freed. Any fence later
  // recorded on its stream has an id at least this and covers its last use.
  std::atomic<uint64_t> freed_at{0};
  // Free blocks in the pool only:
  bool settled = true;  // fence completed (or never had one): any stream may take it
  uint64_t fence = 0;   // the fence id it waits for while !settled
};

struct Segment {
  uintptr_t base = 0;
  uint64_t size = 0;  // for the arena: the mapped prefix of its address range
  bool small = false;
  bool arena = false;  // the growable virtual-memory range (see BlockPool)
  Block* first = nullptr;
  Block* last = nullptr;
};

// Address -> Block for every block of every segment, in 64 shards so the
// fast path never takes a global lock.
class PointerMap {
 public:
  // Calls fn(Block* or nullptr) with the shard locked and returns its result.
  template <typename Fn>
  auto WithBlock(uintptr_t address, Fn&& fn) {
    Shard& shard = ShardFor(address);
    std::lock_guard<SpinLock> lock(shard.mutex);
    auto it = shard.blocks.find(address);
    return fn(it == shard.blocks.end() ? nullptr : it->second);
  }
  void Insert(Block* block);
  void Erase(uintptr_t address);

 private:
  struct alignas(64) Shard {
    SpinLock mutex;
    std::unordered_map<uintptr_t, Block*> blocks;
  };
  Shard& ShardFor(uintptr_t address) { return shards_[(address >> 9) * 0x9E3779B97F4A7C15ull >> 58]; }
  std::array<Shard, 64> shards_;
};

struct PoolOptions {
  uint64_t small_segment_bytes = 0;
  uint64_t large_segment_bytes = 0;
  uint64_t large_rounding = 0;
  uint64_t release_threshold_bytes = 0;
  bool virtual_memory = true;  // large blocks in one growable range when the device can
};

struct PoolCounters {
  uint64_t reserved_bytes = 0;
  uint64_t peak_reserved_bytes = 0;
  uint64_t segments = 0;
  uint64_t segments_allocated = 0;
  uint64_t segments_released = 0;
  uint64_t cross_stream_reuses = 0;
  uint64_t dependent_reuses = 0;  // taken before their fence completed, behind a device-side wait
  uint64_t pool_free_bytes = 0;   // free blocks in the pool (owned or settled)
  uint64_t pending_fences = 0;
};

class BlockPool {
 public:
  BlockPool(Device& device, PointerMap& map, PoolOptions options, uint64_t budget_bytes);
  ~BlockPool();  // returns every segment to the device

  // A free block of at least `rounded` bytes for `stream`, split to size and
  // marked allocated; nullptr when none fits (and, with `grow`, no new
  // segment fits the budget or the device refused one: *device_status says
  // why in that case).
  Block* Take(uint64_t rounded, bool small, Stream stream, bool grow, Status* device_status);
  // Like Take without growing, but may also take another stream's block
  // whose fence has not completed: `stream` is then made to wait for that
  // fence on the device (StreamWaitEvent), so the host never waits and the
  // pool does not grow while memory is merely in flight between streams.
  // nullptr when no block fits (or no wait could be enqueued).
  Block* TakeBehindFence(uint64_t rounded, bool small, Stream stream);
  // The id the next fence will get; stamp a block with it when it is freed
  // (Block::freed_at). Lock-free: the fast path calls it on every free.
  uint64_t NextFenceId() const { return next_fence_.load(std::memory_order_seq_cst); }
  // Blocks freed on `stream` (cached or allocated, not yet in the pool)
  // enter it behind the first fence recorded on `stream` since they were
  // freed: settled at once when that fence has completed, else waiting for
  // it, else behind one fence recorded on `stream` now.
  void Return(Stream stream, const std::vector<Block*>& blocks);
  // Settles the blocks of every completed fence; returns how many fences completed.
  size_t Poll();
  // Waits for every pending fence (the host blocks): the last resort before OOM.
  void WaitForFences();
  // Releases settled, fully free segments while unused reserved bytes exceed
  // `keep_unused_bytes`; returns the bytes released.
  uint64_t ReleaseFree(uint64_t keep_unused_bytes, uint64_t allocated_bytes);

  void set_budget(uint64_t bytes);
  uint64_t budget() const;
  PoolCounters counters() const;
  // DeviceAllocator::Classify: walks the blocks of the segment holding
  // `address`, for argument checks, not for a hot path.
  DeviceAllocator::Range CheckRange(uintptr_t address, uint64_t bytes) const;
  // {"address":..., "bytes":..., "small":..., "blocks":[...]} for each segment.
  std::string SegmentsJson() const;

 private:
  struct BySize {
    bool operator()(const Block* a, const Block* b) const {
      return a->size != b->size ? a->size < b->size : a->address < b->address;
    }
  };
  using FreeSet = std::set<Block*, BySize>;
  struct FreeSets {
    FreeSet small;
    FreeSet large;
    FreeSet& of(bool is_small) { return is_small ? small : large; }
  };
  struct Fence {
    uint64_t id = 0;
    Event event = nullptr;
  };
  struct StreamFences {
    std::deque<Fence> pending;  // in record order: they complete in this order
    uint64_t completed = 0;     // the newest completed fence's id (ids grow in record order)
  };

  Block* BestFit(uint64_t rounded, bool small, Stream stream);
  bool Mergeable(const Block* block, const Block* neighbour) const;
  void Absorb(Block* low, Block* high, const Block* owner);
  Block* Carve(Block* block, uint64_t rounded, Stream stream);
  Block* Grow(uint64_t rounded, bool small, Stream stream, Status* device_status);
  Block* GrowArena(uint64_t rounded, Stream stream, Status* device_status);
  uint64_t ShrinkArena(uint64_t bytes);
  void InsertFree(Block* block);
  void EraseFree(Block* block);
  FreeSet& SetOf(Block* block);
  void Settle(Stream stream, uint64_t fence_id);
  Block* Coalesce(Block* block);
  void ReleaseSegment(Segment* segment);
  Event AcquireEvent();
  size_t PollLocked();
  size_t PollStreamLocked(Stream stream, StreamFences& fences);

  Device& device_;
  PointerMap& map_;
  const PoolOptions options_;

  mutable std::mutex mutex_;
  uint64_t budget_bytes_;
  std::map<uintptr_t, std::unique_ptr<Segment>> segments_;
  FreeSets settled_;
  std::unordered_map<Stream, FreeSets> owned_;
  std::unordered_map<Stream, StreamFences> fences_;
  std::vector<Event> spare_events_;
  // The arena: one reserved address range whose prefix is mapped; large
  // blocks tile that prefix, which grows and shrinks at its end. Absent
  // (arena_base_ 0) when the device has no virtual memory management.
  bool arena_tried_ = false;
  uintptr_t arena_base_ = 0;
  uint64_t arena_capacity_ = 0;
  uint64_t granularity_ = 0;
  Segment* arena_ = nullptr;  // null while nothing is mapped
  std::atomic<uint64_t> next_fence_{1};  // advanced under mutex_, read without it
  PoolCounters counters_;
};

}  // namespace alloc_internal
}  // namespace tiercache

#endif  // TIERCACHE_ALLOC_BLOCK_POOL_H_
