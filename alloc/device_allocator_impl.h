// DeviceAllocator's internals, shared by device_allocator.cpp (the fast and
// slow paths) and device_allocator_report.cpp (stats, snapshot, traces).
// Not part of the public API.
//
// Thread safety: as documented on each member; StreamCache fields are
// guarded by its spin lock except the atomics.
#ifndef TIERCACHE_ALLOC_DEVICE_ALLOCATOR_IMPL_H_
#define TIERCACHE_ALLOC_DEVICE_ALLOCATOR_IMPL_H_

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>
#include <vector>

#include "alloc/block_pool.h"
#include "alloc/device_allocator.h"

namespace tiercache {

namespace alloc_internal {
// Blocks freed on one stream, reusable on it at once. Guarded by `mutex`;
// the counters are atomics so stats read them without it.
struct alignas(64) StreamCache {
  StreamCache(Stream s, size_t classes) : stream(s), small_bins(classes) {}
  const Stream stream;
  alloc_internal::SpinLock mutex;
  std::vector<std::vector<Block*>> small_bins;
  std::vector<Block*> large;  // newest last
  std::atomic<uint64_t> cached_bytes{0};
  std::atomic<uint64_t> cached_blocks{0};
  std::atomic<uint64_t> allocations{0};  // per stream, so threads on different
  std::atomic<uint64_t> frees{0};        // streams do not share a counter line
  std::atomic<uint64_t> validated_epoch{UINT64_MAX};
  std::atomic<bool> dead{false};
};
}  // namespace alloc_internal

struct DeviceAllocator::Impl {
  std::shared_ptr<Device> device;
  DeviceAllocatorOptions options;
  uint64_t id = 0;  // unique per allocator, never reused: thread-local slots key on it
  size_t classes = 0;

  alloc_internal::PointerMap map;
  std::unique_ptr<alloc_internal::BlockPool> pool;
  std::atomic<uint64_t> budget{0};  // mirrors the pool's, read without its lock
  uint64_t device_bytes = 0;        // the device's total memory

  std::atomic<uint64_t> allocated{0}, requested{0}, peak_allocated{0}, peak_requested{0};
  std::atomic<uint64_t> retries{0}, pressure_calls{0};
  std::atomic<uint64_t> pressure_freed{0}, oom_events{0}, invalid_frees{0};

  mutable std::shared_mutex streams_mutex;
  std::unordered_map<Stream, std::unique_ptr<alloc_internal::StreamCache>> streams;

  std::mutex pressure_mutex;
  PressureCallback pressure;

  std::atomic<bool> tracing{false};
  std::mutex trace_mutex;
  std::vector<TraceEvent> trace;
  std::unordered_map<Stream, uint32_t> trace_streams;
  std::chrono::steady_clock::time_point trace_start;
  std::atomic<uint64_t> next_trace_id{1};

  ~Impl() {
    FlushCaches();
    pool.reset();  // waits for fences, returns every segment
  }

  using Block = alloc_internal::Block;
  using StreamCache = alloc_internal::StreamCache;
  Result<StreamCache*> CacheFor(Stream stream);
  void Revalidate(StreamCache* cache, uint64_t epoch);
  Block* PopCached(StreamCache* cache, uint64_t rounded, bool small);
  void PushCached(StreamCache* cache, Block* block);
  std::vector<Block*> DrainCache(StreamCache* cache, uint64_t keep_bytes);
  void FlushCaches();
  Result<Block*> AllocateSlow(uint64_t rounded, bool small, Stream stream, StreamCache* own);
  void MaybeRelease();
  void Record(TraceEvent::Op op, uint64_t trace_id, uint64_t bytes, Stream stream);
};

}  // namespace tiercache

#endif  // TIERCACHE_ALLOC_DEVICE_ALLOCATOR_IMPL_H_
