// engine_timing_bench: engine_bench's loop on the emulated device, with the
// link and the kernels given the GPU machine's timing, so that the cache's
// schedule (which copy waits for which kernel, how many blocks move) can be
// studied and compared between builds without a GPU.
//
// The engine: one host thread, per layer, Acquire(block, stream) -> a
// "kernel" (a host function on the compute stream that sleeps for the
// compute time: the stream is busy, the host is not) -> Release(block,
// stream); the host waits only at the end of a step. The link: every copy
// sleeps `copy_delay` before it runs (EmulatedDevice's delay), one copy at a
// time on the cache's upload stream, so a block's upload takes the time a
// block of `--model-mib` takes at `--peak-gbps`. The blocks themselves are
// small (`--block-kib`), so the host memcpy behind a copy is negligible.
// The runtime is the library's, with its defaults (learning prefetcher,
// next-use eviction, derived lookahead); only the sizes are set.
//
// Cases as in engine_bench: room for 3 blocks; GPU caches of exactly 25, 50
// and 75% of the blocks (bound = bytes moved / peak, and the lower bound of
// any schedule, L/(L-1) x bytes not resident, docs/perf.md); caches of f of
// the blocks plus two blocks of room (bound = the blocks not held). Timing
// on a 2-core machine is good to a few percent; the GPU figures are
// engine_bench's.
//
// Usage: engine_timing_bench [--blocks=16] [--steps=10] [--model-mib=350]
//                            [--peak-gbps=55] [--compute-us=850]
//                            [--block-kib=256] [--cases=all|room3,budget,held]
//                            [--config=key=value,...]   (runtime settings, e.g. cycle_plan=false)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "alloc/emulated_device.h"
#include "bench/bench_args.h"
#include "common/units.h"
#include "runtime/runtime.h"

namespace tiercache {
namespace {

struct Options {
  int blocks = 16;
  int steps = 10;
  double model_mib = 350;
  double peak_gbps = 55;
  uint64_t compute_us = 850;
  uint64_t block_kib = 256;
  std::string cases = "all";
  std::vector<std::pair<std::string, std::string>> settings;  // for every case's runtime
};

struct CaseResult {
  std::string name;
  double first_ms = 0, step_ms = 0, moved_blocks = 0, bound_ms = 0;
  double hits = 0, misses = 0;
};

void SleepFor(void* us) {
  std::this_thread::sleep_for(std::chrono::microseconds(*static_cast<uint64_t*>(us)));
}

double Ms(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

// One runtime with a GPU cache of `cache_blocks` blocks, the engine loop
// for `steps` steps.
CaseResult RunCase(const Options& o, const std::string& name, int cache_blocks,
                   uint64_t load_us) {
  CaseResult r{name};
  auto device = std::make_shared<EmulatedDevice>();
  const uint64_t bytes = o.block_kib * kKiB;
  RuntimeConfig config;
  config.chunk_bytes = AlignUp(bytes, kMiB);
  config.staging_buffers = 2;
  config.dram_bytes = static_cast<uint64_t>(o.blocks) * bytes + 2 * config.chunk_bytes + 4 * kMiB;
  config.gpu_cache_bytes = static_cast<uint64_t>(cache_blocks) * bytes;
  config.gpu_budget_bytes = config.gpu_cache_bytes + 64 * kMiB;
  for (const auto& [key, value] : o.settings) {
    Status set = SetConfigField(key, value, &config);
    if (!set.ok()) {
      std::fprintf(stderr, "engine_timing_bench: --config: %s\n", set.ToString().c_str());
      std::exit(2);
    }
  }
  Result<std::unique_ptr<Runtime>> created = Runtime::Create(config, device);
  if (!created.ok()) {
    std::fprintf(stderr, "engine_timing_bench: %s\n", created.status().ToString().c_str());
    std::exit(1);
  }
  std::unique_ptr<Runtime> rt = std::move(created).value();
  BlockCache& cache = rt->cache();
  std::vector<unsigned char> data(bytes);
  std::vector<BlockId> ids;
  for (int l = 0; l < o.blocks; ++l) {
    std::memset(data.data(), l + 1, data.size());
    ids.push_back(cache.RegisterFromBuffer("layer" + std::to_string(l), data.data(), bytes,
                                           rt->tier("dram")).value());
  }
  Stream compute = device->CreateStream().value();
  device->set_copy_delay(std::chrono::microseconds(load_us));
  uint64_t compute_us = o.compute_us;
  const int gpu = cache.gpu_stats_slot();
  TierTraffic before;
  std::vector<double> steps;
  for (int step = 0; step < o.steps; ++step) {
    (void)device->StreamSynchronize(compute);
    if (step == 1) {
      (void)cache.Drain();
      before = cache.stats().Snapshot(gpu);
    }
    const auto t0 = std::chrono::steady_clock::now();
    for (BlockId id : ids) {
      Result<void*> ptr = cache.Acquire(id, compute);
      if (!ptr.ok()) {
        std::fprintf(stderr, "engine_timing_bench: acquire: %s\n", ptr.status().ToString().c_str());
        std::exit(1);
      }
      (void)device->LaunchHostFunc(compute, SleepFor, &compute_us);
      (void)cache.Release(id, compute);
    }
    (void)device->StreamSynchronize(compute);
    steps.push_back(Ms(t0, std::chrono::steady_clock::now()));
    if (std::getenv("TIERCACHE_BENCH_VERBOSE") != nullptr) {
      const TierTraffic now = cache.stats().Snapshot(gpu);
      std::string resident;
      for (BlockId id : ids) resident += cache.Info(id)->on_gpu ? '#' : '.';
      std::fprintf(stderr, "%s step %d: %.1f ms, %llu uploads so far, on the GPU %s\n", name.c_str(), step,
                   steps.back(), static_cast<unsigned long long>(now.bytes_in / bytes), resident.c_str());
    }
  }
  (void)cache.Drain();
  if (std::getenv("TIERCACHE_BENCH_VERBOSE") != nullptr) {
    const std::string stats = cache.StatsJson();
    const size_t at = stats.find("\"prefetch\"");
    std::fprintf(stderr, "%s: %s\n", name.c_str(), stats.substr(at, 400).c_str());
  }
  const TierTraffic after = cache.stats().Snapshot(gpu);
  const double measured = o.steps - 1;
  r.moved_blocks = static_cast<double>(after.bytes_in - before.bytes_in) / bytes / measured;
  r.hits = static_cast<double>(after.hits - before.hits) / measured;
  r.misses = static_cast<double>(after.misses - before.misses) / measured;
  r.first_ms = steps.front();
  std::vector<double> steady(steps.begin() + 1, steps.end());
  std::sort(steady.begin(), steady.end());
  r.step_ms = steady[steady.size() / 2];
  device->set_copy_delay(std::chrono::microseconds(0));
  (void)device->DestroyStream(compute);
  return r;
}

bool Wanted(const Options& o, const char* kind) {
  return o.cases == "all" || o.cases.find(kind) != std::string::npos;
}

bool ParseArgs(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    auto value = [&](const char* key) { return bench::FlagValue(argv[i], key); };
    if (const char* v = value("blocks")) o->blocks = std::atoi(v);
    else if (const char* v = value("steps")) o->steps = std::atoi(v);
    else if (const char* v = value("model-mib")) o->model_mib = std::atof(v);
    else if (const char* v = value("peak-gbps")) o->peak_gbps = std::atof(v);
    else if (const char* v = value("compute-us")) o->compute_us = std::strtoull(v, nullptr, 10);
    else if (const char* v = value("block-kib")) o->block_kib = std::strtoull(v, nullptr, 10);
    else if (const char* v = value("cases")) o->cases = v;
    else if (const char* v = value("config")) {
      if (!bench::ParseSettings(v, &o->settings)) {
        std::fprintf(stderr, "engine_timing_bench: --config wants key=value[,key=value...], got '%s'\n", v);
        return false;
      }
    }
    else {
      std::fprintf(stderr, "engine_timing_bench: unknown argument '%s'\n", argv[i]);
      return false;
    }
  }
  if (o->blocks < 4 || o->steps < 2 || o->block_kib < 4 || !(o->peak_gbps > 0) || !(o->model_mib > 0)) {
    std::fprintf(stderr, "engine_timing_bench: need blocks >= 4, steps >= 2, block-kib >= 4, "
                         "peak-gbps and model-mib above 0\n");
    return false;
  }
  return true;
}

}  // namespace
}  // namespace tiercache

int main(int argc, char** argv) {
  using namespace tiercache;
  Options o;
  if (!ParseArgs(argc, argv, &o)) return 2;
  const uint64_t load_us =
      static_cast<uint64_t>(o.model_mib * 1048576.0 / (o.peak_gbps * 1e9) * 1e6 + 0.5);
  const double load_ms = load_us / 1e3;
  const double compute_ms = o.blocks * o.compute_us / 1e3;
  std::printf("engine_timing_bench: %d blocks, upload %.2f ms a block (%.0f MiB at %.1f GB/s), "
              "kernel %.2f ms, %d steps, emulated device\n",
              o.blocks, load_ms, o.model_mib, o.peak_gbps, o.compute_us / 1e3, o.steps);
  std::vector<CaseResult> results;
  if (Wanted(o, "room3")) {
    CaseResult r = RunCase(o, "streaming-room3", 3, load_us);
    r.bound_ms = std::max(o.blocks * load_ms, compute_ms);
    results.push_back(r);
  }
  const int L = o.blocks;
  for (int pct : {25, 50, 75}) {
    const int k = L * pct / 100;
    if (Wanted(o, "budget")) {
      CaseResult r = RunCase(o, "budget-" + std::to_string(pct) + "%", k, load_us);
      r.bound_ms = std::max(r.moved_blocks * load_ms, compute_ms);
      results.push_back(r);
    }
  }
  for (int pct : {25, 50, 75}) {
    const int k = L * pct / 100;
    if (Wanted(o, "held")) {
      CaseResult r = RunCase(o, "held-" + std::to_string(pct) + "%+2", k + 2, load_us);
      r.bound_ms = std::max((L - k) * load_ms, compute_ms);
      results.push_back(r);
    }
  }
  std::printf("%-16s %9s %9s %8s %6s %6s %9s %9s %11s\n", "case", "first_ms", "step_ms", "moved",
              "hits", "misses", "bound_ms", "vs_bound", "vs_floor");
  for (const CaseResult& r : results) {
    // Any schedule's floor for an exact budget of k blocks: L/(L-1) x (L-k) uploads.
    double floor_ms = 0;
    if (r.name.rfind("budget-", 0) == 0) {
      const int pct = std::atoi(r.name.c_str() + 7);
      const int k = L * pct / 100;
      floor_ms = std::max(static_cast<double>(L) / (L - 1) * (L - k) * load_ms, compute_ms);
    }
    std::printf("%-16s %9.1f %9.1f %8.2f %6.1f %6.1f %9.1f %9.3f %11s\n", r.name.c_str(), r.first_ms,
                r.step_ms, r.moved_blocks, r.hits, r.misses, r.bound_ms, r.step_ms / r.bound_ms,
                floor_ms > 0 ? std::to_string(r.step_ms / floor_ms).substr(0, 5).c_str() : "-");
  }
  std::printf("bound: room3 = all blocks / peak; budget = blocks moved / peak; held = blocks not held "
              "/ peak; vs_floor = step / (L/(L-1) x blocks not resident / peak)\n");
  return 0;
}
