// DeviceAllocator: statistics, the JSON snapshot, trace recording and the
// replay helper.
#include <algorithm>
#include <string>

#include "alloc/device_allocator.h"
#include "alloc/device_allocator_impl.h"

namespace tiercache {

using alloc_internal::PoolCounters;

DeviceAllocatorStats DeviceAllocator::GetStats() const {
  const Impl& impl = *impl_;
  PoolCounters pool = impl.pool->counters();
  DeviceAllocatorStats stats;
  stats.budget_bytes = impl.pool->budget();
  stats.reserved_bytes = pool.reserved_bytes;
  stats.peak_reserved_bytes = pool.peak_reserved_bytes;
  stats.allocated_bytes = impl.allocated.load();
  stats.requested_bytes = impl.requested.load();
  stats.peak_allocated_bytes = impl.peak_allocated.load();
  stats.peak_requested_bytes = impl.peak_requested.load();
  stats.segments = pool.segments;
  stats.fragmentation = pool.reserved_bytes == 0
                            ? 0.0
                            : 1.0 - static_cast<double>(std::min(stats.allocated_bytes, pool.reserved_bytes)) /
                                        static_cast<double>(pool.reserved_bytes);
  stats.cross_stream_reuses = pool.cross_stream_reuses;
  stats.dependent_reuses = pool.dependent_reuses;
  stats.retries = impl.retries.load();
  stats.pressure_calls = impl.pressure_calls.load();
  stats.pressure_freed_bytes = impl.pressure_freed.load();
  stats.oom_events = impl.oom_events.load();
  stats.segments_allocated = pool.segments_allocated;
  stats.segments_released = pool.segments_released;
  stats.invalid_frees = impl.invalid_frees.load();
  std::shared_lock<std::shared_mutex> lock(impl.streams_mutex);
  for (const auto& [stream, cache] : impl.streams) {
    stats.allocations += cache->allocations.load();
    stats.frees += cache->frees.load();
    stats.per_stream.push_back(
        {stream, cache->cached_bytes.load(), cache->cached_blocks.load()});
  }
  return stats;
}

void DeviceAllocator::StartTrace() {
  std::lock_guard<std::mutex> lock(impl_->trace_mutex);
  impl_->trace.clear();
  impl_->trace_streams.clear();
  impl_->trace_start = std::chrono::steady_clock::now();
  impl_->tracing.store(true);
}

std::vector<TraceEvent> DeviceAllocator::TakeTrace() {
  std::lock_guard<std::mutex> lock(impl_->trace_mutex);
  impl_->tracing.store(false);
  return std::move(impl_->trace);
}

Device& DeviceAllocator::device() const { return *impl_->device; }

DeviceAllocator::Range DeviceAllocator::Classify(const void* pointer, uint64_t bytes) const {
  return impl_->pool->CheckRange(reinterpret_cast<uintptr_t>(pointer), bytes);
}

std::string DeviceAllocator::SnapshotJson() const {
  DeviceAllocatorStats stats = GetStats();
  auto field = [](const char* name, uint64_t value) {
    return std::string("\"") + name + "\":" + std::to_string(value);
  };
  std::string out = "{\"stats\":{";
  out += field("budget_bytes", stats.budget_bytes) + "," + field("reserved_bytes", stats.reserved_bytes) +
         "," + field("allocated_bytes", stats.allocated_bytes) + "," +
         field("requested_bytes", stats.requested_bytes) + "," +
         field("peak_reserved_bytes", stats.peak_reserved_bytes) + "," +
         field("peak_allocated_bytes", stats.peak_allocated_bytes) + "," +
         field("segments", stats.segments) + "," + field("allocations", stats.allocations) + "," +
         field("frees", stats.frees) + "," + field("retries", stats.retries) + "," +
         field("cross_stream_reuses", stats.cross_stream_reuses) + "," +
         field("dependent_reuses", stats.dependent_reuses) + "," +
         field("oom_events", stats.oom_events) + "," + field("invalid_frees", stats.invalid_frees) +
         ",\"fragmentation\":" + std::to_string(stats.fragmentation) + "}";
  out += ",\"segments\":" + impl_->pool->SegmentsJson() + "}";
  return out;
}

Result<ReplayResult> ReplayTrace(DeviceAllocator& allocator, const std::vector<TraceEvent>& trace,
                                 const std::vector<Stream>& streams) {
  for (const TraceEvent& event : trace) {
    if (event.stream >= streams.size()) {
      return Status::InvalidArgument("trace uses stream " + std::to_string(event.stream) + " but only " +
                                     std::to_string(streams.size()) + " streams were given");
    }
  }
  ReplayTarget target;
  target.allocate = [&](uint64_t bytes, uint32_t stream) {
    return allocator.Allocate(bytes, streams[stream]);
  };
  target.free = [&](void* pointer, uint32_t stream) { return allocator.Free(pointer, streams[stream]); };
  target.peak_reserved_bytes = [&] { return allocator.GetStats().peak_reserved_bytes; };
  return ReplayTrace(trace, target);
}

}  // namespace tiercache
