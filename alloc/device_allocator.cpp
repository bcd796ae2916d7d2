// DeviceAllocator: the per-stream fast path and the slow path's escalation
// (pool -> flush caches -> grow -> trim -> wait for fences -> pressure
// callback -> out-of-memory). The shared pool itself is BlockPool; stats,
// snapshots and traces are in device_allocator_report.cpp.
#include "alloc/device_allocator.h"

#include <algorithm>

#include "alloc/device_allocator_impl.h"
#include "common/units.h"

namespace tiercache {

using alloc_internal::Block;
using alloc_internal::BlockPool;
using alloc_internal::BlockState;
using alloc_internal::PoolCounters;
using alloc_internal::StreamCache;

namespace {

constexpr uint64_t kGranule = 512;
constexpr uint64_t kLargeCacheSlack = 8;  // a cached large block may be 1/8 bigger than asked
constexpr size_t kLargeCacheBlocks = 2;  // large blocks a stream cache keeps

// Size classes: multiples of 512 B up to 4 KiB, then four per power of two.
uint64_t RoundSmall(uint64_t bytes) {
  if (bytes <= 4096) return AlignUp(bytes, kGranule);
  uint64_t power = uint64_t{1} << (63 - __builtin_clzll(bytes - 1));
  return AlignUp(bytes, power / 4);
}

// The class of an exactly rounded size.
size_t ClassOf(uint64_t rounded) {
  if (rounded <= 4096) return rounded / kGranule - 1;
  int log = 63 - __builtin_clzll(rounded - 1);  // rounded in (2^log, 2^(log+1)]
  uint64_t step = (uint64_t{1} << log) / 4;
  return 8 + (log - 12) * 4 + (rounded / step - 5);
}

// The largest class whose size is at most `size` (a block may carry a tail
// too small to split off).
size_t FloorClassOf(uint64_t size) {
  uint64_t rounded = RoundSmall(size);
  size_t cls = ClassOf(rounded);
  return rounded > size ? cls - 1 : cls;
}

void AtomicMax(std::atomic<uint64_t>& target, uint64_t value) {
  uint64_t seen = target.load(std::memory_order_relaxed);
  while (seen < value && !target.compare_exchange_weak(seen, value, std::memory_order_relaxed)) {
  }
}

std::atomic<uint64_t> next_allocator_id{1};

}  // namespace
// ---- per-stream caches ---------------------------------------------------------

Result<StreamCache*> DeviceAllocator::Impl::CacheFor(Stream stream) {
  struct Slot {
    uint64_t owner = 0;
    Stream stream = nullptr;
    StreamCache* cache = nullptr;
  };
  thread_local Slot slots[4];
  thread_local unsigned next_slot = 0;
  StreamCache* cache = nullptr;
  for (Slot& slot : slots) {
    if (slot.owner == id && slot.stream == stream) cache = slot.cache;
  }
  if (cache == nullptr) {
    {
      std::shared_lock<std::shared_mutex> lock(streams_mutex);
      auto it = streams.find(stream);
      if (it != streams.end()) cache = it->second.get();
    }
    if (cache == nullptr) {
      std::lock_guard<std::shared_mutex> lock(streams_mutex);
      auto& entry = streams[stream];
      if (entry == nullptr) entry = std::make_unique<StreamCache>(stream, classes);
      cache = entry.get();
    }
    slots[next_slot++ % 4] = Slot{id, stream, cache};
  }
  uint64_t epoch = device->DestroyedStreamCount();
  if (cache->validated_epoch.load(std::memory_order_acquire) != epoch) Revalidate(cache, epoch);
  if (cache->dead.load(std::memory_order_acquire)) {
    return Status::InvalidArgument("the stream was destroyed");
  }
  return cache;
}

// A stream this device destroyed gives its cached blocks back to the pool
// (its work was drained when it was destroyed, so they settle at once).
void DeviceAllocator::Impl::Revalidate(StreamCache* cache, uint64_t epoch) {
  bool live = device->IsStreamLive(cache->stream);
  if (!live && !cache->dead.exchange(true)) {
    pool->Return(cache->stream, DrainCache(cache, 0));
  } else if (live) {
    cache->dead.store(false);  // the runtime reissued the handle
  }
  cache->validated_epoch.store(epoch, std::memory_order_release);
}

Block* DeviceAllocator::Impl::PopCached(StreamCache* cache, uint64_t rounded, bool small) {
  std::lock_guard<alloc_internal::SpinLock> lock(cache->mutex);
  Block* block = nullptr;
  if (small) {
    std::vector<Block*>& bin = cache->small_bins[ClassOf(rounded)];
    if (bin.empty()) return nullptr;
    block = bin.back();
    bin.pop_back();
  } else {
    auto best = cache->large.end();
    for (auto it = cache->large.begin(); it != cache->large.end(); ++it) {
      uint64_t size = (*it)->size;
      if (size >= rounded && size - rounded <= rounded / kLargeCacheSlack &&
          (best == cache->large.end() || size < (*best)->size)) {
        best = it;
      }
    }
    if (best == cache->large.end()) return nullptr;
    block = *best;
    cache->large.erase(best);
  }
  cache->cached_bytes.fetch_sub(block->size, std::memory_order_relaxed);
  cache->cached_blocks.fetch_sub(1, std::memory_order_relaxed);
  return block;
}

void DeviceAllocator::Impl::PushCached(StreamCache* cache, Block* block) {
  bool over;
  Block* evicted = nullptr;
  {
    std::lock_guard<alloc_internal::SpinLock> lock(cache->mutex);
    if (block->segment->small) {
      cache->small_bins[FloorClassOf(block->size)].push_back(block);
    } else {
      cache->large.push_back(block);
    }
    uint64_t bytes = cache->cached_bytes.fetch_add(block->size, std::memory_order_relaxed) + block->size;
    cache->cached_blocks.fetch_add(1, std::memory_order_relaxed);
    // The newest large block stays whatever its size, so it does not count
    // against the limit (else every later free would overflow the cache).
    uint64_t exempt = cache->large.empty() ? 0 : cache->large.back()->size;
    over = bytes - exempt > options.stream_cache_bytes;
    if (cache->large.size() > kLargeCacheBlocks) {
      // Large blocks of other sizes are better off coalescing in the pool.
      evicted = cache->large.front();
      cache->large.erase(cache->large.begin());
      cache->cached_bytes.fetch_sub(evicted->size, std::memory_order_relaxed);
      cache->cached_blocks.fetch_sub(1, std::memory_order_relaxed);
    }
  }
  if (evicted != nullptr) pool->Return(cache->stream, {evicted});
  if (over) {
    pool->Return(cache->stream, DrainCache(cache, options.stream_cache_bytes / 2));
    MaybeRelease();
  }
}

// Takes blocks out of `cache` until at most `keep_bytes` stay: large ones
// first, oldest first, then small ones from the biggest class down. Unless
// `keep_bytes` is 0 the newest large block always stays, whatever its size,
// so a stream cycling one big buffer keeps its fast path.
std::vector<Block*> DeviceAllocator::Impl::DrainCache(StreamCache* cache, uint64_t keep_bytes) {
  std::vector<Block*> out;
  std::lock_guard<alloc_internal::SpinLock> lock(cache->mutex);
  uint64_t total = cache->cached_bytes.load(std::memory_order_relaxed);
  size_t keep_newest = keep_bytes > 0 ? 1 : 0;
  // `bytes` leaves out the newest large block when it is to stay.
  uint64_t exempt = keep_newest && !cache->large.empty() ? cache->large.back()->size : 0;
  uint64_t bytes = total - exempt;
  auto take = [&](Block* block) {
    out.push_back(block);
    bytes -= block->size;
  };
  while (bytes > keep_bytes && cache->large.size() > keep_newest) {
    take(cache->large.front());
    cache->large.erase(cache->large.begin());
  }
  for (size_t cls = cache->small_bins.size(); cls-- > 0 && bytes > keep_bytes;) {
    std::vector<Block*>& bin = cache->small_bins[cls];
    while (!bin.empty() && bytes > keep_bytes) {
      take(bin.back());
      bin.pop_back();
    }
  }
  cache->cached_bytes.store(bytes + exempt, std::memory_order_relaxed);
  cache->cached_blocks.fetch_sub(out.size(), std::memory_order_relaxed);
  return out;
}

void DeviceAllocator::Impl::FlushCaches() {
  std::vector<StreamCache*> all;
  {
    std::shared_lock<std::shared_mutex> lock(streams_mutex);
    for (auto& [stream, cache] : streams) all.push_back(cache.get());
  }
  for (StreamCache* cache : all) {
    if (cache->cached_blocks.load(std::memory_order_relaxed) == 0) continue;
    pool->Return(cache->stream, DrainCache(cache, 0));
  }
}

void DeviceAllocator::Impl::MaybeRelease() {
  if (options.release_threshold_bytes == UINT64_MAX) return;
  pool->Poll();
  pool->ReleaseFree(options.release_threshold_bytes, allocated.load(std::memory_order_relaxed));
}

// ---- the slow path -------------------------------------------------------------

Result<Block*> DeviceAllocator::Impl::AllocateSlow(uint64_t rounded, bool small, Stream stream,
                                                   StreamCache* own) {
  Status device_status;
  if (Block* block = pool->Take(rounded, small, stream, /*grow=*/false, &device_status)) return block;
  // Before growing, this stream's cached blocks join the pool, where they
  // coalesce and it may use them at once. Other streams keep their caches
  // (flushing them would cost their fast path and, their fences being
  // fresh, rarely help now); they are reclaimed below, under pressure.
  if (own->cached_blocks.load(std::memory_order_relaxed) != 0) {
    pool->Return(stream, DrainCache(own, 0));
  }
  if (options.reuse_behind_fences) {
    // Memory in flight from another stream beats growing: the wait costs
    // the device nothing once that stream's work is done, and a pipeline
    // (frees on the compute stream, allocations on a copy stream) stays
    // within the memory it already has however far the host runs ahead.
    // Other streams' cached blocks join the pool for this, fenced now.
    if (Block* block = pool->TakeBehindFence(rounded, small, stream)) return block;
    FlushCaches();
    if (Block* block = pool->TakeBehindFence(rounded, small, stream)) return block;
  }
  if (Block* block = pool->Take(rounded, small, stream, /*grow=*/true, &device_status)) return block;
  retries.fetch_add(1, std::memory_order_relaxed);
  FlushCaches();
  if (Block* block = pool->Take(rounded, small, stream, true, &device_status)) return block;
  for (int round = 0; round < 4; ++round) {
    uint64_t in_use = allocated.load(std::memory_order_relaxed);
    pool->ReleaseFree(0, in_use);
    if (Block* block = pool->Take(rounded, small, stream, true, &device_status)) return block;
    pool->WaitForFences();  // the host blocks only here, on the way to out-of-memory
    pool->ReleaseFree(0, allocated.load(std::memory_order_relaxed));
    if (Block* block = pool->Take(rounded, small, stream, true, &device_status)) return block;
    PressureCallback callback;
    {
      std::lock_guard<std::mutex> lock(pressure_mutex);
      callback = pressure;
    }
    if (!callback) break;
    pressure_calls.fetch_add(1, std::memory_order_relaxed);
    uint64_t freed = callback(rounded);
    pressure_freed.fetch_add(freed, std::memory_order_relaxed);
    if (freed == 0) break;
    FlushCaches();  // what the callback freed sits in stream caches
    if (Block* block = pool->Take(rounded, small, stream, true, &device_status)) return block;
  }
  oom_events.fetch_add(1, std::memory_order_relaxed);
  PoolCounters counters = pool->counters();
  return Status::OutOfMemory("device allocator cannot place " + FormatBytes(rounded) + ": " +
                             FormatBytes(counters.reserved_bytes) + " reserved of a " +
                             FormatBytes(pool->budget()) + " budget, " +
                             FormatBytes(allocated.load()) + " allocated (" +
                             device_status.ToString() + ")");
}

void DeviceAllocator::Impl::Record(TraceEvent::Op op, uint64_t trace_id, uint64_t bytes,
                                   Stream stream) {
  std::lock_guard<std::mutex> lock(trace_mutex);
  if (!tracing.load(std::memory_order_relaxed)) return;
  auto [it, inserted] = trace_streams.emplace(stream, static_cast<uint32_t>(trace_streams.size()));
  TraceEvent event;
  event.op = op;
  event.id = trace_id;
  event.bytes = op == TraceEvent::Op::kAlloc ? bytes : 0;
  event.stream = it->second;
  event.time_ns = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                            std::chrono::steady_clock::now() - trace_start)
                                            .count());
  trace.push_back(event);
}

// ---- public API ---------------------------------------------------------------

DeviceAllocator::DeviceAllocator(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DeviceAllocator::~DeviceAllocator() = default;

Result<std::unique_ptr<DeviceAllocator>> DeviceAllocator::Create(std::shared_ptr<Device> device,
                                                                 DeviceAllocatorOptions options) {
  if (device == nullptr) return Status::InvalidArgument("DeviceAllocator needs a device");
  if (options.budget_bytes == 0) options.budget_bytes = device->info().total_memory;
  if (options.small_request_limit < 4096 || options.small_request_limit > (64ull << 20) ||
      options.small_segment_bytes < options.small_request_limit ||
      options.large_segment_bytes < options.small_request_limit || options.large_rounding == 0 ||
      !IsPowerOfTwo(options.large_rounding) || options.large_rounding % kGranule != 0) {
    return Status::InvalidArgument(
        "DeviceAllocatorOptions: need 4 KiB <= small_request_limit <= 64 MiB, segments at least "
        "that large, large_rounding a power of two multiple of 512");
  }
  options.small_request_limit = RoundSmall(options.small_request_limit);
  auto impl = std::make_unique<Impl>();
  impl->id = next_allocator_id.fetch_add(1);
  impl->device = std::move(device);
  impl->options = options;
  impl->classes = ClassOf(options.small_request_limit) + 1;
  alloc_internal::PoolOptions pool_options;
  pool_options.small_segment_bytes = options.small_segment_bytes;
  pool_options.large_segment_bytes = options.large_segment_bytes;
  pool_options.large_rounding = options.large_rounding;
  pool_options.release_threshold_bytes = options.release_threshold_bytes;
  pool_options.virtual_memory = options.virtual_memory;
  impl->pool = std::make_unique<BlockPool>(*impl->device, impl->map, pool_options, options.budget_bytes);
  impl->budget.store(options.budget_bytes);
  impl->device_bytes = impl->device->info().total_memory;
  if (options.record_trace) {
    impl->trace_start = std::chrono::steady_clock::now();
    impl->tracing.store(true);
  }
  return std::unique_ptr<DeviceAllocator>(new DeviceAllocator(std::move(impl)));
}

Result<void*> DeviceAllocator::Allocate(uint64_t bytes, Stream stream) {
  Impl& impl = *impl_;
  if (bytes == 0) return Status::InvalidArgument("Allocate of 0 bytes");
  uint64_t device_bytes = impl.device_bytes;
  if (bytes > device_bytes) {
    return Status::InvalidArgument("Allocate of " + FormatBytes(bytes) + " exceeds the device's " +
                                   FormatBytes(device_bytes));
  }
  uint64_t budget = impl.budget.load(std::memory_order_relaxed);
  if (bytes > budget) {
    impl.oom_events.fetch_add(1, std::memory_order_relaxed);
    return Status::OutOfMemory("Allocate of " + FormatBytes(bytes) + " exceeds the " +
                               FormatBytes(budget) + " budget");
  }
  TC_ASSIGN_OR_RETURN(StreamCache * cache, impl.CacheFor(stream));
  bool small = bytes <= impl.options.small_request_limit;
  uint64_t rounded = small ? RoundSmall(bytes) : AlignUp(bytes, kGranule);
  Block* block = impl.PopCached(cache, rounded, small);
  if (block == nullptr) {
    TC_ASSIGN_OR_RETURN(block, impl.AllocateSlow(rounded, small, stream, cache));
  }
  block->requested.store(bytes, std::memory_order_relaxed);
  block->stream.store(stream, std::memory_order_relaxed);
  block->state.store(BlockState::kAllocated, std::memory_order_release);
  AtomicMax(impl.peak_allocated, impl.allocated.fetch_add(block->size, std::memory_order_relaxed) +
                                     block->size);
  AtomicMax(impl.peak_requested,
            impl.requested.fetch_add(bytes, std::memory_order_relaxed) + bytes);
  cache->allocations.fetch_add(1, std::memory_order_relaxed);
  if (impl.tracing.load(std::memory_order_relaxed)) {
    uint64_t trace_id = impl.next_trace_id.fetch_add(1, std::memory_order_relaxed);
    block->trace_id.store(trace_id, std::memory_order_relaxed);
    impl.Record(TraceEvent::Op::kAlloc, trace_id, bytes, stream);
  }
  return reinterpret_cast<void*>(block->address);
}

Status DeviceAllocator::Free(void* pointer, Stream stream) {
  Impl& impl = *impl_;
  if (pointer == nullptr) {
    impl.invalid_frees.fetch_add(1, std::memory_order_relaxed);
    return Status::InvalidArgument("Free of a null pointer");
  }
  Result<StreamCache*> cache = impl.CacheFor(stream);
  if (!cache.ok()) {
    impl.invalid_frees.fetch_add(1, std::memory_order_relaxed);
    return Status::InvalidArgument("Free on a destroyed stream; the block stays allocated");
  }
  enum class Outcome { kFreed, kForeign, kNotLive };
  Block* block = nullptr;
  Outcome outcome = impl.map.WithBlock(reinterpret_cast<uintptr_t>(pointer), [&](Block* found) {
    if (found == nullptr) return Outcome::kForeign;
    BlockState expected = BlockState::kAllocated;
    if (!found->state.compare_exchange_strong(expected, BlockState::kCached,
                                              std::memory_order_acq_rel)) {
      return Outcome::kNotLive;
    }
    block = found;
    return Outcome::kFreed;
  });
  if (outcome != Outcome::kFreed) {
    impl.invalid_frees.fetch_add(1, std::memory_order_relaxed);
    return Status::InvalidArgument(outcome == Outcome::kForeign
                                       ? "Free of a pointer this allocator did not hand out"
                                       : "Free of a block that is not allocated (double free)");
  }
  impl.allocated.fetch_sub(block->size, std::memory_order_relaxed);
  impl.requested.fetch_sub(block->requested.load(std::memory_order_relaxed), std::memory_order_relaxed);
  (*cache)->frees.fetch_add(1, std::memory_order_relaxed);
  if (impl.tracing.load(std::memory_order_relaxed)) {
    impl.Record(TraceEvent::Op::kFree, block->trace_id.load(std::memory_order_relaxed), 0, stream);
  }
  block->stream.store(stream, std::memory_order_relaxed);
  // Read after the caller's last use of the block was enqueued: the first
  // fence on `stream` with at least this id covers it (see BlockPool::Return).
  block->freed_at.store(impl.pool->NextFenceId(), std::memory_order_relaxed);
  impl.PushCached(*cache, block);
  return Status::Ok();
}

void DeviceAllocator::SetPressureCallback(PressureCallback callback) {
  std::lock_guard<std::mutex> lock(impl_->pressure_mutex);
  impl_->pressure = std::move(callback);
}

Status DeviceAllocator::SetBudget(uint64_t bytes) {
  if (bytes == 0) return Status::InvalidArgument("a budget of 0 bytes");
  impl_->pool->set_budget(bytes);
  impl_->budget.store(bytes, std::memory_order_relaxed);
  if (impl_->pool->counters().reserved_bytes > bytes) {
    uint64_t in_use = impl_->allocated.load();
    Trim(bytes > in_use ? bytes - in_use : 0);
  }
  return Status::Ok();
}

uint64_t DeviceAllocator::budget() const { return impl_->budget.load(std::memory_order_relaxed); }

uint64_t DeviceAllocator::Trim(uint64_t keep_bytes) {
  impl_->FlushCaches();
  impl_->pool->Poll();
  return impl_->pool->ReleaseFree(keep_bytes, impl_->allocated.load(std::memory_order_relaxed));
}


}  // namespace tiercache
