// DeviceAllocator: a pooled, stream-ordered allocator of device memory.
//
// Contract
// - Memory comes from the Device in segments (2 MiB ones for requests up to
//   `small_request_limit`, larger ones for the rest) and is handed out as
//   blocks: small requests round up to a size class, large ones are placed
//   best-fit with splitting, and free neighbours coalesce.
// - Stream order: Allocate(bytes, s) returns memory that s may use at once.
//   Free(p, s) says "p is free once the work enqueued on s so far is done":
//   the block is reusable on s immediately and on another stream only after
//   an event recorded on s after the free has completed (checked with
//   EventQuery; the host never blocks on it, except as the last step before
//   out-of-memory).
// - Budget: reserved bytes (all segments) never exceed `budget()`. When a
//   request does not fit, the allocator trims its cached segments, then
//   calls the pressure callback (the GPU cache tier frees unpinned blocks)
//   asking for the bytes it lacks, retries, and only then returns
//   kOutOfMemory.
// - Errors: 0 bytes -> kInvalidArgument; more than the budget or the device
//   -> kOutOfMemory / kInvalidArgument with the sizes in the message; Free of
//   a pointer this pool did not hand out, of one already freed, or on a
//   stream the device has destroyed -> kInvalidArgument, and the pool is left
//   as it was (the block stays allocated to the caller in the last case).
// - Pointers handed out are 256-byte aligned (as cudaMalloc's 256).
// - The allocator must outlive every block it handed out; destroying it
//   returns all segments to the device (after synchronising the device's
//   streams that have pending frees).
//
// Thread safety: every method may be called from any thread. Allocate/Free
// of small blocks on a stream already seen take only that stream's lock and
// one of the pointer-map shards' locks (no global lock); large blocks, new
// segments and cross-stream reuse take the pool lock. The pressure callback
// is called with no allocator lock held, so it may call Free().
#ifndef TIERCACHE_ALLOC_DEVICE_ALLOCATOR_H_
#define TIERCACHE_ALLOC_DEVICE_ALLOCATOR_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "alloc/allocation_trace.h"
#include "alloc/device.h"
#include "common/status.h"

namespace tiercache {

struct DeviceAllocatorOptions {
  // Hard cap on reserved bytes; 0 means the device's total memory.
  uint64_t budget_bytes = 0;
  // Cached-but-unused bytes the pool keeps; fully free segments beyond it
  // are returned to the device as frees settle. UINT64_MAX keeps everything
  // until Trim() or pressure (like cudaMallocAsync's release threshold).
  uint64_t release_threshold_bytes = UINT64_MAX;
  // Requests up to this size use size classes and 2 MiB small segments.
  uint64_t small_request_limit = 1ull << 20;
  uint64_t small_segment_bytes = 2ull << 20;
  // Large requests up to half a large segment share segments of this size
  // (or an eighth of what is reserved, if more: big pools use big segments,
  // across whose extent free space coalesces); larger ones get a segment of
  // their own, rounded up to `large_rounding`.
  uint64_t large_segment_bytes = 64ull << 20;
  uint64_t large_rounding = 2ull << 20;
  // Each stream's fast-path cache of freed blocks holds at most this much
  // (and at most two large blocks, the newest always); beyond it blocks go
  // back to the shared pool.
  uint64_t stream_cache_bytes = 64ull << 20;
  // Large blocks share one growable range of virtual addresses, mapped in
  // the device's granules (cuMem), when the device offers it: the pool then
  // grows by what a request lacks beyond its free tail rather than by whole
  // segments, and holes on both sides of a growth step coalesce. False, or
  // a device without it, uses separate large segments.
  bool virtual_memory = true;
  // Before growing, a request may take a block another stream freed whose
  // fence has not completed yet: the asking stream is made to wait for that
  // fence on the device (as cudaMallocAsync's internal dependencies do), so
  // memory handed from stream to stream in a pipeline is reused instead of
  // the pool growing while the host runs ahead. False grows instead.
  bool reuse_behind_fences = true;
  // Records every Allocate/Free into a trace (see TakeTrace()).
  bool record_trace = false;
};

struct StreamCacheStats {
  Stream stream = nullptr;
  uint64_t cached_bytes = 0;  // freed on this stream, reusable on it at once
  uint64_t cached_blocks = 0;
};

// A snapshot; fields are read together under the pool lock.
struct DeviceAllocatorStats {
  uint64_t budget_bytes = 0;
  uint64_t reserved_bytes = 0;        // all segments
  uint64_t allocated_bytes = 0;       // blocks handed out (rounded sizes)
  uint64_t requested_bytes = 0;       // what callers asked for, live
  uint64_t peak_reserved_bytes = 0;
  uint64_t peak_allocated_bytes = 0;
  uint64_t peak_requested_bytes = 0;
  uint64_t segments = 0;
  double fragmentation = 0.0;  // 1 - allocated / reserved (0 when nothing is reserved)
  uint64_t allocations = 0;
  uint64_t frees = 0;
  uint64_t cross_stream_reuses = 0;   // blocks reused on another stream after their event
  uint64_t dependent_reuses = 0;      // of those, taken before the event, behind a device-side wait
  uint64_t retries = 0;               // allocations that needed trim/sync/pressure and retried
  uint64_t pressure_calls = 0;
  uint64_t pressure_freed_bytes = 0;  // as reported by the callback
  uint64_t oom_events = 0;
  uint64_t segments_allocated = 0;    // from the device, ever
  uint64_t segments_released = 0;     // back to the device, ever
  uint64_t invalid_frees = 0;         // rejected double/foreign/dead-stream frees
  std::vector<StreamCacheStats> per_stream;
};

class DeviceAllocator {
 public:
  // Asked to free `bytes_needed` bytes of this allocator's memory (by calling
  // Free); returns how many it freed (0 when it cannot help).
  using PressureCallback = std::function<uint64_t(uint64_t bytes_needed)>;

  // kInvalidArgument for a null device or inconsistent options.
  static Result<std::unique_ptr<DeviceAllocator>> Create(std::shared_ptr<Device> device,
                                                         DeviceAllocatorOptions options = {});
  ~DeviceAllocator();
  DeviceAllocator(const DeviceAllocator&) = delete;
  DeviceAllocator& operator=(const DeviceAllocator&) = delete;

  // A block of at least `bytes` usable on `stream` in stream order.
  Result<void*> Allocate(uint64_t bytes, Stream stream);
  // Returns `pointer` to the pool in `stream`'s order (see the contract).
  Status Free(void* pointer, Stream stream);

  // Whether [pointer, pointer + bytes) is memory this allocator handed out
  // and that is still allocated, for checking a caller's arguments before
  // work is enqueued on them. kForeign: not the pool's memory at all (the
  // device decides); kNotLive: the pool's, but freed, cached, past the end
  // of the bytes asked for or straddling two blocks. Walks one segment's
  // blocks under the pool lock: not for a hot path.
  enum class Range { kForeign, kLive, kLiveStart, kNotLive };
  Range Classify(const void* pointer, uint64_t bytes) const;

  // Replaces the callback (empty: none). Not called concurrently with itself
  // for one allocation, but two allocating threads may both call it.
  void SetPressureCallback(PressureCallback callback);

  // Lowering the budget below what is reserved trims cached segments; if
  // that is not enough the budget still changes and new segments are
  // refused until enough is freed. kInvalidArgument for 0.
  Status SetBudget(uint64_t bytes);
  uint64_t budget() const;

  // Returns fully free segments to the device until at most `keep_bytes` of
  // unused memory stays reserved. Frees whose event has not completed are
  // left alone. Returns the bytes released.
  uint64_t Trim(uint64_t keep_bytes = 0);

  DeviceAllocatorStats GetStats() const;
  // JSON: {"stats":{...},"segments":[{"address","bytes","small",
  //   "blocks":[{"address","bytes","requested","state","stream"}]}]}
  // with addresses as hex strings and state one of "allocated",
  // "cached" (free, owned by a stream) or "free".
  std::string SnapshotJson() const;

  // The trace recorded since creation or the last call (record_trace, or
  // StartTrace()), which stops recording until StartTrace() again.
  void StartTrace();
  std::vector<TraceEvent> TakeTrace();

  Device& device() const;

  struct Impl;

 private:
  explicit DeviceAllocator(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Replays `trace` against `allocator`, streams[i] standing for the trace's
// stream index i (kInvalidArgument if an index has no stream or the trace is
// malformed). Allocation failures are counted, not fatal. The peak reserved
// figure is the allocator's own peak, so replay into a fresh allocator.
Result<ReplayResult> ReplayTrace(DeviceAllocator& allocator, const std::vector<TraceEvent>& trace,
                                 const std::vector<Stream>& streams);

}  // namespace tiercache

#endif  // TIERCACHE_ALLOC_DEVICE_ALLOCATOR_H_
