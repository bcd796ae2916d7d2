// Device allocator benchmarks.
//
// 1. Alloc+free pairs of one size on one stream, 512 B ... 512 MiB: the
//    tiercache pool on whichever device OpenDevice picks, and, when built
//    with CUDA and a GPU is present, cudaMalloc/cudaFree and
//    cudaMallocAsync/cudaFreeAsync on the default memory pool with its
//    release threshold at UINT64_MAX (pool retained), in the same run.
// 2. The same pairs from two threads on two streams (the pool's fast path
//    takes no global lock).
// 3. A replayed LLM-inference-like trace (MakeInferenceTrace: prefill, then
//    decode with growing KV buffers and a drifting batch): peak
//    fragmentation 1 - peak_requested / peak_reserved of the first replay
//    into a fresh pool (and into a trimmed cudaMallocAsync pool, its
//    reserved high-water mark from cudaMemPoolGetAttribute), then the time
//    per operation of warm replays.
//
// The run ends with a summary: the median over sizes of each allocator's
// median pair time, and the fragmentation figures.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "alloc/allocation_trace.h"
#include "alloc/device.h"
#include "alloc/device_allocator.h"
#if defined(TIERCACHE_HAVE_CUDA)
#include <cuda_runtime_api.h>
#endif

namespace tiercache {
namespace {

constexpr int64_t kMinPair = 512;
constexpr int64_t kMaxPair = 512ll << 20;

struct PoolFixture {
  std::shared_ptr<Device> device;
  std::unique_ptr<DeviceAllocator> allocator;
  Stream streams[2] = {nullptr, nullptr};
};

PoolFixture& Pool() {
  static PoolFixture* fixture = [] {
    auto* f = new PoolFixture();
    f->device = OpenDevice(0).value();
    f->allocator = DeviceAllocator::Create(f->device).value();
    for (Stream& stream : f->streams) stream = f->device->CreateStream().value();
    return f;
  }();
  return *fixture;
}

// Figures for the closing summary, by benchmark family.
std::mutex summary_mutex;
std::map<std::string, std::string> summary_lines;

void PoolPair(benchmark::State& state) {
  PoolFixture& pool = Pool();
  uint64_t bytes = static_cast<uint64_t>(state.range(0));
  Stream stream = pool.streams[state.thread_index() % 2];
  for (auto _ : state) {
    Result<void*> p = pool.allocator->Allocate(bytes, stream);
    if (!p.ok()) {
      state.SkipWithError(p.status().ToString().c_str());
      break;
    }
    benchmark::DoNotOptimize(*p);
    (void)pool.allocator->Free(*p, stream);
  }
  state.SetLabel(pool.device->info().name);
}

void ReplayPool(benchmark::State& state) {
  PoolFixture& pool = Pool();
  InferenceTraceOptions shape;
  std::vector<TraceEvent> trace = MakeInferenceTrace(shape);
  std::vector<Stream> streams = {pool.streams[0], pool.streams[1]};
  auto fresh = DeviceAllocator::Create(pool.device).value();
  ReplayResult first = ReplayTrace(*fresh, trace, streams).value();
  for (auto _ : state) {
    ReplayResult warm = ReplayTrace(*fresh, trace, streams).value();
    state.SetIterationTime(warm.seconds);
  }
  state.counters["ops"] = static_cast<double>(trace.size());
  state.counters["peak_requested_MiB"] = first.peak_requested_bytes / 1048576.0;
  state.counters["peak_reserved_MiB"] = first.peak_reserved_bytes / 1048576.0;
  state.counters["frag_at_peak"] = first.fragmentation_at_peak;
  state.SetLabel(pool.device->info().name);
  std::lock_guard<std::mutex> lock(summary_mutex);
  char line[256];
  std::snprintf(line, sizeof(line), "trace replay, tiercache pool: peak reserved %.1f MiB for %.1f MiB requested, fragmentation at peak %.4f",
                first.peak_reserved_bytes / 1048576.0, first.peak_requested_bytes / 1048576.0,
                first.fragmentation_at_peak);
  summary_lines["replay pool"] = line;
}

#if defined(TIERCACHE_HAVE_CUDA)
bool HaveGpu() {
  int count = 0;
  return cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
}

cudaMemPool_t RetainedDefaultPool() {
  cudaMemPool_t mempool = nullptr;
  cudaDeviceGetDefaultMemPool(&mempool, 0);
  uint64_t threshold = UINT64_MAX;
  cudaMemPoolSetAttribute(mempool, cudaMemPoolAttrReleaseThreshold, &threshold);
  return mempool;
}

cudaStream_t CudaStream(int index) {
  static cudaStream_t streams[2] = {nullptr, nullptr};
  if (streams[index] == nullptr) cudaStreamCreateWithFlags(&streams[index], cudaStreamNonBlocking);
  return streams[index];
}

void CudaMallocPair(benchmark::State& state) {
  size_t bytes = static_cast<size_t>(state.range(0));
  cudaSetDevice(0);
  for (auto _ : state) {
    void* p = nullptr;
    if (cudaMalloc(&p, bytes) != cudaSuccess) {
      state.SkipWithError("cudaMalloc failed");
      break;
    }
    cudaFree(p);
  }
}

void CudaMallocAsyncPair(benchmark::State& state) {
  size_t bytes = static_cast<size_t>(state.range(0));
  cudaSetDevice(0);
  RetainedDefaultPool();
  cudaStream_t stream = CudaStream(state.thread_index() % 2);
  for (auto _ : state) {
    void* p = nullptr;
    if (cudaMallocAsync(&p, bytes, stream) != cudaSuccess) {
      state.SkipWithError("cudaMallocAsync failed");
      break;
    }
    cudaFreeAsync(p, stream);
  }
  cudaStreamSynchronize(stream);
}

void ReplayCudaMallocAsync(benchmark::State& state) {
  cudaSetDevice(0);
  cudaMemPool_t mempool = RetainedDefaultPool();
  cudaDeviceSynchronize();
  cudaMemPoolTrimTo(mempool, 0);
  uint64_t zero = 0;
  cudaMemPoolSetAttribute(mempool, cudaMemPoolAttrReservedMemHigh, &zero);
  cudaMemPoolSetAttribute(mempool, cudaMemPoolAttrUsedMemHigh, &zero);
  InferenceTraceOptions shape;
  std::vector<TraceEvent> trace = MakeInferenceTrace(shape);
  ReplayTarget target;
  target.allocate = [](uint64_t bytes, uint32_t stream) -> Result<void*> {
    void* p = nullptr;
    cudaError_t error = cudaMallocAsync(&p, bytes, CudaStream(stream));
    if (error != cudaSuccess) return Status::OutOfMemory(cudaGetErrorString(error));
    return p;
  };
  target.free = [](void* p, uint32_t stream) {
    return cudaFreeAsync(p, CudaStream(stream)) == cudaSuccess ? Status::Ok()
                                                                 : Status::Internal("cudaFreeAsync");
  };
  target.peak_reserved_bytes = [mempool] {
    uint64_t high = 0;
    cudaMemPoolGetAttribute(mempool, cudaMemPoolAttrReservedMemHigh, &high);
    return high;
  };
  ReplayResult first = ReplayTrace(trace, target).value();
  for (auto _ : state) {
    ReplayResult warm = ReplayTrace(trace, target).value();
    state.SetIterationTime(warm.seconds);
  }
  cudaDeviceSynchronize();
  state.counters["ops"] = static_cast<double>(trace.size());
  state.counters["peak_requested_MiB"] = first.peak_requested_bytes / 1048576.0;
  state.counters["peak_reserved_MiB"] = first.peak_reserved_bytes / 1048576.0;
  state.counters["frag_at_peak"] = first.fragmentation_at_peak;
  std::lock_guard<std::mutex> lock(summary_mutex);
  char line[256];
  std::snprintf(line, sizeof(line), "trace replay, cudaMallocAsync: peak reserved %.1f MiB for %.1f MiB requested, fragmentation at peak %.4f",
                first.peak_reserved_bytes / 1048576.0, first.peak_requested_bytes / 1048576.0,
                first.fragmentation_at_peak);
  summary_lines["replay cudaMallocAsync"] = line;
}
#endif

// Keeps every benchmark's median and prints the summary after the run.
class SummaryReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& run : runs) {
      if (run.aggregate_name != "median" || run.run_name.function_name.find("Pair") == std::string::npos) {
        continue;
      }
      std::string family = run.run_name.function_name;
      if (!run.run_name.threads.empty()) family += "/" + run.run_name.threads;
      pair_ns_[family].push_back(run.GetAdjustedRealTime() *
                                 (run.time_unit == benchmark::kMicrosecond ? 1e3 : 1.0));
    }
    ConsoleReporter::ReportRuns(runs);
  }
  void PrintSummary() {
    std::printf("\nsummary (median over sizes %lld B ... %lld MiB of each median pair time)\n",
                static_cast<long long>(kMinPair), static_cast<long long>(kMaxPair >> 20));
    for (auto& [family, times] : pair_ns_) {
      std::sort(times.begin(), times.end());
      double median = times.size() % 2 == 1 ? times[times.size() / 2]
                                            : (times[times.size() / 2 - 1] + times[times.size() / 2]) / 2;
      std::printf("  %-40s %10.3f us  (%zu sizes)\n", family.c_str(), median / 1e3, times.size());
    }
    std::lock_guard<std::mutex> lock(summary_mutex);
    for (auto& [name, line] : summary_lines) std::printf("  %s\n", line.c_str());
  }

 private:
  std::map<std::string, std::vector<double>> pair_ns_;
};

void RegisterAll() {
  auto pairs = [](benchmark::internal::Benchmark* b) {
    b->RangeMultiplier(8)->Range(kMinPair, kMaxPair)->Repetitions(5)->ReportAggregatesOnly(true);
  };
  pairs(benchmark::RegisterBenchmark("BM_PoolPair", PoolPair));
  pairs(benchmark::RegisterBenchmark("BM_PoolPair", PoolPair)->Threads(2));
  benchmark::RegisterBenchmark("BM_ReplayInferenceTrace/pool", ReplayPool)->UseManualTime()->Iterations(5)->Unit(benchmark::kMillisecond);
#if defined(TIERCACHE_HAVE_CUDA)
  if (HaveGpu()) {
    pairs(benchmark::RegisterBenchmark("BM_CudaMallocPair", CudaMallocPair));
    pairs(benchmark::RegisterBenchmark("BM_CudaMallocAsyncPair", CudaMallocAsyncPair));
    pairs(benchmark::RegisterBenchmark("BM_CudaMallocAsyncPair", CudaMallocAsyncPair)->Threads(2));
    benchmark::RegisterBenchmark("BM_ReplayInferenceTrace/cudaMallocAsync", ReplayCudaMallocAsync)
        ->UseManualTime()->Iterations(5)->Unit(benchmark::kMillisecond);
  }
#endif
}

}  // namespace
}  // namespace tiercache

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  tiercache::RegisterAll();
  tiercache::SummaryReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  reporter.PrintSummary();
  benchmark::Shutdown();
  return 0;
}
