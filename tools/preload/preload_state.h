// PreloadState: the one object behind every interposed call — the options,
// the hosted runtime (its DeviceAllocator is the pool that serves
// allocations), the pageable stager, the record of which pointers the pool
// handed out, the counters, the trace and the exit report.
//
// Contract
// - Get() builds the state on first use: options parsed (warnings printed),
//   trace opened. Nothing there calls CUDA.
// - Pool() opens the runtime once, on the first call that needs it, on the
//   CUDA device TIERCACHE_DEVICE_ORDINAL (never the emulated device: its
//   pointers would mean nothing to the application). Without a GPU, or when
//   opening fails, or with TIERCACHE_PRELOAD_ALLOC=0, it returns nullptr
//   and a reason, and every call passes through to CUDA from then on.
// - Adopt/Release keep the set of pointers the pool handed out: a pointer
//   not in it (memory from before the library, from another allocator, or
//   garbage) is never given to the pool.
// - LibraryScope marks the calling thread as inside the library: an
//   interposed function entered while one is alive (the pool calling
//   cudaMalloc for a segment, the CUDA runtime resolving symbols during the
//   library's own initialisation) goes straight to the real function.
//
// Thread safety: every method may be called from any thread.
#ifndef TIERCACHE_TOOLS_PRELOAD_PRELOAD_STATE_H_
#define TIERCACHE_TOOLS_PRELOAD_PRELOAD_STATE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "alloc/device.h"
#include "alloc/device_allocator.h"
#include "tools/preload/pageable_stager.h"
#include "tools/preload/preload_options.h"
#include "tools/preload/preload_trace.h"

struct tiercache_runtime;

namespace tiercache {
class Runtime;
class Topology;
}

namespace tiercache::preload {

enum class Api {
  kCudaMalloc, kCudaFree, kCudaMallocAsync, kCudaFreeAsync, kCudaMallocFromPoolAsync,
  kCuMemAlloc, kCuMemFree, kCuMemAllocAsync, kCuMemFreeAsync, kTorchAlloc, kTorchFree,
  kCudaMemcpy, kCudaMemcpyAsync, kCount
};
const char* ApiName(Api api);

bool InsideLibrary();
class LibraryScope {
 public:
  LibraryScope();
  ~LibraryScope();
  LibraryScope(const LibraryScope&) = delete;
  LibraryScope& operator=(const LibraryScope&) = delete;
};

class PreloadState {
 public:
  static PreloadState& Get();

  const PreloadOptions& options() const { return options_; }
  int device_ordinal() const { return static_cast<int>(options_.runtime.device_ordinal); }

  // The pool, or nullptr with `*why` saying why calls pass through.
  DeviceAllocator* Pool(const char** why);
  // The hosted runtime as a C API handle (borrowed: tiercache_close refuses
  // it), or nullptr with the reason, as Pool().
  tiercache_runtime* RuntimeHandle(const char** why);
  // The stager (created on first use), or nullptr with the reason.
  PageableStager* Stager(const char** why);
  // A stream of the library's own for synchronous allocations (cudaMalloc,
  // cuMemAlloc); valid once Pool() returned non-null.
  Stream sync_stream() const { return sync_stream_; }
  // The stream to give the pool a block freed on `stream` on: `stream`
  // itself, but for the per-thread default stream. Its handle
  // (cudaStreamPerThread, CU_STREAM_PER_THREAD) names another stream in
  // every thread, while the pool hands a block freed on a stream back to
  // that stream at once, by handle, so a block freed there goes back on
  // sync_stream() instead, once that stream has been made to wait (on the
  // device) for the work the calling thread queued on its per-thread stream
  // before the free. Other streams then take it behind sync_stream()'s
  // fence. Valid once Pool() returned non-null.
  Stream FreeStream(Stream stream);
  // The driver's primary context of the served device (a CUcontext), read
  // once when the pool opened; nullptr when unknown.
  void* primary_context() const { return primary_context_; }
  // The calling thread's current driver context (cuCtxGetCurrent), or
  // nullptr when it has none or the driver cannot be asked. Opening the pool
  // leaves a thread's current context as it found it (when it had one).
  void* CurrentContext() const;

  void Adopt(void* pointer, uint64_t bytes, Api api);
  // True (and forgets it) when the pool handed `pointer` out.
  bool Release(void* pointer, Api api);
  bool Owns(void* pointer) const;

  void PassedThrough(Api api, uint64_t bytes, int code, const char* why);
  void CountInvalidFree() { invalid_frees_.fetch_add(1, std::memory_order_relaxed); }
  void CopyPassedThrough(Api api, uint64_t bytes) {
    copies_passed_.fetch_add(1, std::memory_order_relaxed);
    copy_bytes_passed_.fetch_add(bytes, std::memory_order_relaxed);
  }
  PreloadTrace* trace() const { return trace_.get(); }
  void SetStaticRuntime(bool linked_static) { static_runtime_ = linked_static; }

  std::string StatsJson();
  std::string Report();
  // True once any interposed allocation or copy call was seen (the exit
  // report stays quiet in processes that made none, such as the helper
  // programs an engine starts, which inherit LD_PRELOAD).
  bool SawCalls() const;

 private:
  std::string PassThroughReason() const;  // "" when the pool is open
  PreloadState();
  void OpenPool();  // once

  struct Counters {
    std::atomic<uint64_t> served{0}, served_bytes{0}, passed{0}, passed_bytes{0};
  };
  struct Shard {
    mutable std::mutex mutex;
    std::unordered_map<void*, uint64_t> bytes;  // pointer -> bytes asked for
  };
  static constexpr int kShards = 16;
  Shard& ShardOf(void* pointer) const;

  PreloadOptions options_;
  std::vector<std::string> warnings_;
  std::unique_ptr<PreloadTrace> trace_;
  std::atomic<uint64_t> next_id_{1};
  Counters counters_[static_cast<int>(Api::kCount)];
  mutable Shard shards_[kShards];
  std::atomic<uint64_t> invalid_frees_{0}, copies_passed_{0}, copy_bytes_passed_{0};
  bool static_runtime_ = false;

  std::once_flag pool_once_;
  std::atomic<bool> pool_ready_{false};
  std::atomic<bool> pool_tried_{false};  // OpenPool finished (pool_reason_ is final)
  std::string pool_reason_ = "not opened yet";
  std::shared_ptr<Device> device_;
  Runtime* runtime_ = nullptr;          // owned by handle_
  tiercache_runtime* handle_ = nullptr;  // never destroyed: CUDA may be gone at exit
  Stream sync_stream_ = nullptr;
  void* primary_context_ = nullptr;
  std::shared_ptr<const Topology> topology_;
  int numa_node_ = -1;
  std::vector<int> numa_cpus_;

  std::once_flag stager_once_;
  std::atomic<bool> stager_ready_{false};
  std::string stager_reason_ = "not opened yet";
  std::unique_ptr<PageableStager> stager_;
};

}  // namespace tiercache::preload

#endif  // TIERCACHE_TOOLS_PRELOAD_PRELOAD_STATE_H_
