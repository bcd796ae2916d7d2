// runtime_bench: the cache runtime's data path.
//
// BM_AcquireReleaseResident  acquire + release of a GPU-resident block on
//                            one thread (target: <= 100 ns).
// BM_WeightStreaming         a layer stack (TIERCACHE_BENCH_BLOCKS blocks of
//                            TIERCACHE_BENCH_BLOCK_BYTES, default 16 x 350 MiB
//                            on a GPU, 16 x 8 MiB emulated) in pinned DRAM,
//                            streamed through acquire -> touch -> release with
//                            room for 3 blocks on the GPU, against a plain
//                            pinned double-buffer streamer and the pinned copy
//                            peak, all measured in the same run. Target:
//                            tiercache >= 97% of the peak.
// BM_HalfResident            the same stack with a GPU cache holding half the
//                            blocks (next-use eviction fed by hints): step
//                            time against (bytes not resident / peak).
//                            Target: ratio <= 1.05.
//
// "Touch" is a device-to-device copy of the whole block into a scratch
// buffer: it reads every byte on the GPU, in stream order, like a layer's
// kernel would, without needing a CUDA compiler to build the benchmark.
//
// On the GPU machine: build with CUDA and run
//   build/bench/runtime_bench --benchmark_counters_tabular=true
// (tools/pack_device.sh + tools/device_check.sh run it with the others).
//
// Knobs (environment): TIERCACHE_BENCH_BLOCKS, TIERCACHE_BENCH_BLOCK_BYTES,
// TIERCACHE_BENCH_STEPS, TIERCACHE_BENCH_LOOKAHEAD (blocks prefetched ahead
// of the acquire, default 1), TIERCACHE_BENCH_CACHE_BLOCKS (GPU room for
// the streaming case, default 3) and TIERCACHE_BENCH_VERBOSE=1, which prints
// one line per step to stderr: the host's enqueue time against the step
// time (a host-bound loop shows them equal), the allocator's growth and
// cross-stream reuse, and the GPU tier's misses and stall; =2 adds the
// allocator's segment map (SnapshotJson) after each step.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "common/units.h"
#include "runtime/runtime.h"

namespace tiercache {
namespace {

uint64_t EnvBytes(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr) return fallback;
  Result<uint64_t> parsed = ParseBytes(v);
  return parsed.ok() && *parsed > 0 ? *parsed : fallback;
}

double Seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

// 0 quiet, 1 a line per step, 2 also the allocator's segment map.
int Verbose() {
  const char* v = std::getenv("TIERCACHE_BENCH_VERBOSE");
  return v == nullptr ? 0 : std::atoi(v);
}

struct Stack {
  std::unique_ptr<Runtime> runtime;
  std::vector<BlockId> blocks;
  uint64_t block_bytes = 0;
  Stream compute = nullptr;
  void* scratch = nullptr;
  bool ok = false;
};

// A runtime whose DRAM tier holds the whole stack, pinned.
Stack MakeStack(uint64_t gpu_cache_blocks, const char* policy, benchmark::State& state) {
  Stack s;
  Result<std::shared_ptr<Device>> device = OpenDevice(0);
  if (!device.ok()) {
    state.SkipWithError(device.status().ToString().c_str());
    return s;
  }
  const bool emulated = (*device)->info().kind == DeviceKind::kEmulated;
  s.block_bytes = EnvBytes("TIERCACHE_BENCH_BLOCK_BYTES", emulated ? 8 * kMiB : 350 * kMiB);
  const uint64_t count = EnvBytes("TIERCACHE_BENCH_BLOCKS", 16);
  RuntimeConfig config;
  config.chunk_bytes = std::min<uint64_t>(64 * kMiB, AlignUp(s.block_bytes, kMiB));
  config.staging_buffers = 2;
  // The stack, the baseline's own copy of it and the peak probe's block.
  config.dram_bytes =
      (2 * count + 1) * AlignUp(s.block_bytes, 4096) + 2 * config.chunk_bytes + 64 * kMiB;
  config.gpu_cache_bytes = gpu_cache_blocks * s.block_bytes;
  config.gpu_policy = policy;
  config.prefetch_lookahead = static_cast<int64_t>(EnvBytes("TIERCACHE_BENCH_LOOKAHEAD", 1));
  Result<std::unique_ptr<Runtime>> runtime = Runtime::Create(config, *device);
  if (!runtime.ok()) {
    state.SkipWithError(runtime.status().ToString().c_str());
    return s;
  }
  s.runtime = std::move(runtime).value();
  std::vector<unsigned char> bytes(s.block_bytes);
  for (uint64_t i = 0; i < count; ++i) {
    std::memset(bytes.data(), static_cast<int>(i + 1), bytes.size());
    Result<BlockId> id = s.runtime->cache().RegisterFromBuffer("layer" + std::to_string(i),
                                                               bytes.data(), bytes.size(),
                                                               s.runtime->tier("dram"));
    if (!id.ok()) {
      state.SkipWithError(id.status().ToString().c_str());
      return s;
    }
    s.blocks.push_back(*id);
  }
  s.compute = s.runtime->device().CreateStream().value();
  s.scratch = s.runtime->allocator().Allocate(s.block_bytes, s.compute).value();
  s.ok = true;
  return s;
}

void Touch(Stack& s, const void* block) {
  (void)s.runtime->device().CopyAsync(s.scratch, block, s.block_bytes, CopyKind::kDeviceToDevice,
                                      s.compute);
}

void Teardown(Stack& s) {
  if (!s.ok) return;
  Device& d = s.runtime->device();
  (void)d.StreamSynchronize(s.compute);
  (void)s.runtime->allocator().Free(s.scratch, s.compute);
  (void)s.runtime->cache().Drain();
  (void)d.StreamSynchronize(s.compute);
  (void)d.DestroyStream(s.compute);
  s.runtime.reset();
}

// One line of TIERCACHE_BENCH_VERBOSE output after a step.
void ReportStep(Stack& s, const char* what, int step, double enqueue_s, double step_s) {
  if (Verbose() == 0) return;
  const DeviceAllocatorStats a = s.runtime->allocator().GetStats();
  const TierTraffic gpu = s.runtime->cache().stats().Snapshot(s.runtime->cache().gpu_stats_slot());
  std::fprintf(stderr,
               "%s step %d: enqueue %.2f ms, step %.2f ms | allocator reserved %.0f MiB, "
               "segments allocated %llu released %llu, cross-stream reuses %llu (behind a wait %llu), retries %llu | "
               "gpu hits %llu misses %llu evictions %llu stall %.2f ms\n",
               what, step, enqueue_s * 1e3, step_s * 1e3,
               static_cast<double>(a.reserved_bytes) / kMiB,
               static_cast<unsigned long long>(a.segments_allocated),
               static_cast<unsigned long long>(a.segments_released),
               static_cast<unsigned long long>(a.cross_stream_reuses),
               static_cast<unsigned long long>(a.dependent_reuses),
               static_cast<unsigned long long>(a.retries),
               static_cast<unsigned long long>(gpu.hits),
               static_cast<unsigned long long>(gpu.misses),
               static_cast<unsigned long long>(gpu.evictions), gpu.stall_ns / 1e6);
  for (const StreamCacheStats& c : a.per_stream) {
    std::fprintf(stderr, "  stream %p caches %.0f MiB in %llu blocks\n", c.stream,
                 static_cast<double>(c.cached_bytes) / kMiB,
                 static_cast<unsigned long long>(c.cached_blocks));
  }
  if (Verbose() >= 2) std::fprintf(stderr, "%s\n", s.runtime->allocator().SnapshotJson().c_str());
}

// One pass over the stack through the cache: acquire, touch, release, with
// the next blocks prefetched (and, for next-use, their reuse hinted).
Status CacheStep(Stack& s, bool hint_reuse, const char* what = "cache", int step = -1) {
  BlockCache& cache = s.runtime->cache();
  const size_t n = s.blocks.size();
  const size_t ahead = static_cast<size_t>(std::max<int64_t>(1, s.runtime->config().prefetch_lookahead));
  const auto start = std::chrono::steady_clock::now();
  for (size_t i = 0; i < n; ++i) {
    std::vector<BlockId> next;
    for (size_t k = 1; k <= ahead && k < n; ++k) next.push_back(s.blocks[(i + k) % n]);
    TC_RETURN_IF_ERROR(cache.Prefetch(next));
    TC_ASSIGN_OR_RETURN(void* ptr, cache.Acquire(s.blocks[i], s.compute));
    if (hint_reuse) TC_RETURN_IF_ERROR(cache.HintNextUse(s.blocks[i], n));
    Touch(s, ptr);
    TC_RETURN_IF_ERROR(cache.Release(s.blocks[i], s.compute));
  }
  const auto enqueued = std::chrono::steady_clock::now();
  Status synced = s.runtime->device().StreamSynchronize(s.compute);
  ReportStep(s, what, step, Seconds(enqueued - start),
             Seconds(std::chrono::steady_clock::now() - start));
  return synced;
}

// The pinned host->device copy peak: one block's worth of pinned DRAM copied
// in chunk-sized pieces on one stream, the best of five.
double MeasurePeak(Stack& s) {
  Device& d = s.runtime->device();
  Tier* dram = s.runtime->tier("dram");
  Result<Extent> home = dram->Allocate(s.block_bytes);
  Result<Stream> made = d.CreateStream();
  if (!home.ok() || !made.ok()) {
    std::fprintf(stderr, "runtime_bench: peak probe: %s\n",
                 (home.ok() ? made.status() : home.status()).ToString().c_str());
    if (home.ok()) (void)dram->Free(*home);
    return 0;
  }
  const Extent extent = *home;
  const void* host = dram->HostAddress(extent);
  Stream stream = *made;
  Result<void*> device_block = s.runtime->allocator().Allocate(s.block_bytes, stream);
  if (!device_block.ok()) {
    std::fprintf(stderr, "runtime_bench: peak probe: %s\n",
                 device_block.status().ToString().c_str());
    (void)d.DestroyStream(stream);
    (void)dram->Free(extent);
    return 0;
  }
  void* dst = *device_block;
  const uint64_t chunk = s.runtime->config().chunk_bytes;
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    const auto start = std::chrono::steady_clock::now();
    for (uint64_t off = 0; off < s.block_bytes; off += chunk) {
      (void)d.CopyAsync(static_cast<char*>(dst) + off, static_cast<const char*>(host) + off,
                        std::min(chunk, s.block_bytes - off), CopyKind::kHostToDevice, stream);
    }
    (void)d.StreamSynchronize(stream);
    best = std::max(best, s.block_bytes / Seconds(std::chrono::steady_clock::now() - start));
  }
  (void)s.runtime->allocator().Free(dst, stream);
  (void)d.StreamSynchronize(stream);
  (void)d.DestroyStream(stream);
  (void)dram->Free(extent);
  return best;
}

// The baseline an engine would write by hand: two device buffers, copies on
// a side stream, the compute stream waiting on per-buffer events.
double BaselineStep(Stack& s, int steps) {
  Device& d = s.runtime->device();
  Tier* dram = s.runtime->tier("dram");
  const size_t n = s.blocks.size();
  // The same pinned bytes the cache streams from: the blocks' DRAM homes are
  // private to the cache, so copy into extents of our own once.
  std::vector<Extent> homes;
  std::vector<unsigned char> bytes(s.block_bytes);
  for (size_t i = 0; i < n; ++i) {
    Result<Extent> e = dram->Allocate(s.block_bytes);
    if (!e.ok()) break;
    std::memset(bytes.data(), static_cast<int>(i + 1), bytes.size());
    (void)dram->Write(*e, 0, bytes.data(), bytes.size());
    homes.push_back(*e);
  }
  // As the cache's copies: a high-priority stream, chunk-sized pieces.
  Stream copy = d.CreateStreamWithPriority(-1).value();
  const uint64_t chunk = s.runtime->config().chunk_bytes;
  Result<void*> first = s.runtime->allocator().Allocate(s.block_bytes, copy);
  Result<void*> second = s.runtime->allocator().Allocate(s.block_bytes, copy);
  if (!first.ok() || !second.ok()) {
    std::fprintf(stderr, "runtime_bench: baseline buffers: %s\n",
                 (first.ok() ? second.status() : first.status()).ToString().c_str());
    if (first.ok()) (void)s.runtime->allocator().Free(*first, copy);
    if (second.ok()) (void)s.runtime->allocator().Free(*second, copy);
    (void)d.DestroyStream(copy);
    for (const Extent& e : homes) (void)dram->Free(e);
    return 0;
  }
  void* buffers[2] = {*first, *second};
  Event copied[2] = {d.CreateEvent().value(), d.CreateEvent().value()};
  Event freed[2] = {d.CreateEvent().value(), d.CreateEvent().value()};
  double total = 0;
  for (int step = 0; step < steps && !homes.empty(); ++step) {
    const auto start = std::chrono::steady_clock::now();
    for (size_t i = 0; i < n; ++i) {
      const int b = static_cast<int>(i % 2);
      if (i >= 2) (void)d.StreamWaitEvent(copy, freed[b]);
      const auto* host = static_cast<const char*>(dram->HostAddress(homes[i % homes.size()]));
      for (uint64_t off = 0; off < s.block_bytes; off += chunk) {
        (void)d.CopyAsync(static_cast<char*>(buffers[b]) + off, host + off,
                          std::min(chunk, s.block_bytes - off), CopyKind::kHostToDevice, copy);
      }
      (void)d.RecordEvent(copied[b], copy);
      (void)d.StreamWaitEvent(s.compute, copied[b]);
      Touch(s, buffers[b]);
      (void)d.RecordEvent(freed[b], s.compute);
    }
    (void)d.StreamSynchronize(s.compute);
    total += Seconds(std::chrono::steady_clock::now() - start);
  }
  (void)d.StreamSynchronize(copy);
  for (int b = 0; b < 2; ++b) {
    (void)s.runtime->allocator().Free(buffers[b], copy);
    (void)d.DestroyEvent(copied[b]);
    (void)d.DestroyEvent(freed[b]);
  }
  (void)d.StreamSynchronize(copy);
  (void)d.DestroyStream(copy);
  for (const Extent& e : homes) (void)dram->Free(e);
  return homes.empty() ? 0 : total / steps;
}

void BM_AcquireReleaseResident(benchmark::State& state) {
  RuntimeConfig config;
  config.dram_bytes = 64 * kMiB;
  config.chunk_bytes = 1 * kMiB;  // a small staging ring: this is about the hot path
  config.staging_buffers = 2;
  auto runtime = Runtime::Create(config);
  if (!runtime.ok()) return state.SkipWithError(runtime.status().ToString().c_str());
  BlockCache& cache = (*runtime)->cache();
  std::vector<unsigned char> bytes(64 * kKiB, 7);
  Result<BlockId> registered =
      cache.RegisterFromBuffer("hot", bytes.data(), bytes.size(), (*runtime)->tier("dram"));
  if (!registered.ok()) return state.SkipWithError(registered.status().ToString().c_str());
  const BlockId id = *registered;
  Stream stream = (*runtime)->device().CreateStream().value();
  (void)cache.Acquire(id, stream);
  (void)cache.Release(id, stream);
  (void)cache.Drain();  // the upload has run: the hot path needs no device call
  for (auto _ : state) {
    Result<void*> ptr = cache.Acquire(id, stream);
    benchmark::DoNotOptimize(ptr);
    Status released = cache.Release(id, stream);
    if (!ptr.ok() || !released.ok()) {
      return state.SkipWithError((ptr.ok() ? released : ptr.status()).ToString().c_str());
    }
  }
  (void)cache.Drain();
  (void)(*runtime)->device().DestroyStream(stream);
}
BENCHMARK(BM_AcquireReleaseResident);

void BM_WeightStreaming(benchmark::State& state) {
  Stack s = MakeStack(EnvBytes("TIERCACHE_BENCH_CACHE_BLOCKS", 3), "lru", state);
  if (!s.ok) return;
  const int steps = static_cast<int>(EnvBytes("TIERCACHE_BENCH_STEPS", 3));
  const double bytes = static_cast<double>(s.block_bytes) * s.blocks.size();
  double peak = 0, baseline = 0, cached = 0;
  for (auto _ : state) {
    peak = MeasurePeak(s);
    baseline = BaselineStep(s, steps);
    (void)CacheStep(s, false, "streaming warm-up");
    const auto start = std::chrono::steady_clock::now();
    for (int step = 0; step < steps; ++step) {
      Status st = CacheStep(s, false, "streaming", step);
      if (!st.ok()) return state.SkipWithError(st.ToString().c_str());
    }
    cached = Seconds(std::chrono::steady_clock::now() - start) / steps;
    state.SetIterationTime(cached);
  }
  if (peak == 0 || baseline == 0) {
    Teardown(s);
    return state.SkipWithError("the peak probe or the baseline could not run (see stderr)");
  }
  state.counters["peak_GBps"] = peak / 1e9;
  state.counters["baseline_GBps"] = bytes / baseline / 1e9;
  state.counters["tiercache_GBps"] = bytes / cached / 1e9;
  state.counters["vs_peak"] = (bytes / cached) / peak;
  state.counters["vs_baseline"] = baseline / cached;
  state.counters["block_MiB"] = static_cast<double>(s.block_bytes) / kMiB;
  if (Verbose()) std::fprintf(stderr, "streaming stats: %s\n", s.runtime->cache().StatsJson().c_str());
  Teardown(s);
}
BENCHMARK(BM_WeightStreaming)->Iterations(1)->UseManualTime()->Unit(benchmark::kMillisecond);

void BM_HalfResident(benchmark::State& state) {
  const uint64_t count = EnvBytes("TIERCACHE_BENCH_BLOCKS", 16);
  Stack s = MakeStack(/*gpu_cache_blocks=*/count / 2, "next-use", state);
  if (!s.ok) return;
  const int steps = static_cast<int>(EnvBytes("TIERCACHE_BENCH_STEPS", 3));
  double peak = 0, step_time = 0, moved_per_step = 0;
  for (auto _ : state) {
    peak = MeasurePeak(s);
    for (int warm = 0; warm < 2; ++warm) (void)CacheStep(s, true, "half-resident warm-up");
    (void)s.runtime->cache().Drain();
    const int gpu = s.runtime->cache().gpu_stats_slot();
    const uint64_t before = s.runtime->cache().stats().Snapshot(gpu).bytes_in;
    const auto start = std::chrono::steady_clock::now();
    for (int step = 0; step < steps; ++step) {
      Status st = CacheStep(s, true, "half-resident", step);
      if (!st.ok()) return state.SkipWithError(st.ToString().c_str());
    }
    step_time = Seconds(std::chrono::steady_clock::now() - start) / steps;
    (void)s.runtime->cache().Drain();
    moved_per_step =
        static_cast<double>(s.runtime->cache().stats().Snapshot(gpu).bytes_in - before) / steps;
    state.SetIterationTime(step_time);
  }
  const double bound = moved_per_step / peak;
  state.counters["step_ms"] = step_time * 1e3;
  state.counters["not_resident_MiB"] = moved_per_step / kMiB;
  state.counters["bound_ms"] = bound * 1e3;
  state.counters["vs_bound"] = bound > 0 ? step_time / bound : 0;
  state.counters["resident_fraction"] =
      1.0 - moved_per_step / (static_cast<double>(s.block_bytes) * s.blocks.size());
  Teardown(s);
}
BENCHMARK(BM_HalfResident)->Iterations(1)->UseManualTime()->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace tiercache

BENCHMARK_MAIN();
