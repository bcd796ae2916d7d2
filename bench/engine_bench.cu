// engine_bench: tiercache driven the way an inference engine drives it, on a
// real GPU, against the peers that matter, all in one process.
//
// The engine: one host thread, per layer, tiercache_acquire(block, stream)
// -> a kernel that reads every byte of the block (and checksums it) and
// then runs for a configurable compute time -> tiercache_release(block,
// stream); the host never waits per layer, only at the end of a step. No
// hint is ever given: the runtime's defaults (learning prefetcher, next-use
// eviction, derived lookahead) are what is measured. Only the sizes are set.
//
// In the same run:
//   peak          pinned host->device cudaMemcpyAsync of one block, best of 5
//   double-buffer a hand-written pinned double buffer (two device buffers,
//                 copy k+1 on a copy stream while the kernel runs on k)
//   streaming     tiercache with GPU room for 3 blocks
//   budget f      tiercache with a GPU cache holding f of the blocks
//                 (25%, 50%, 75%); bound = bytes uploaded per step / peak
//   held f + 2    tiercache with a GPU cache of f of the blocks plus two
//                 blocks of room to stream the rest through; bound = the
//                 bytes of the blocks not held (1 - f of them) / peak. A
//                 cache of exactly f x L whole blocks cannot reach that bound:
//                 a block being uploaded holds nothing usable, so at most
//                 f x L - 1 blocks are hits a step (docs/perf.md)
// Per case: the first (learning) step, the median of the steady steps,
// bytes uploaded per step, effective GB/s, and the ratios the targets name
// (docs/perf.md): streaming >= 0.98 of the peak, budget steps <= 1.05 x
// bound, first step <= 1.25 x steady. Every kernel's checksum is compared
// with the block's: a wrong byte fails the run.
//
// Usage: engine_bench [--blocks=16] [--block-mib=350] [--steps=10]
//                     [--compute-us=850] [--json=PATH] [--config=key=value,...]
// (--config: runtime settings for every tiercache case, e.g. cycle_plan=false)
// Without a CUDA device it says so and exits 0.
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bench/bench_args.h"
#include "tiercache/tiercache.h"

namespace {

struct Options {
  int blocks = 16;
  uint64_t block_bytes = 350ull << 20;
  int steps = 10;
  uint64_t compute_ns = 850'000;  // ~ a Llama-7B decoder layer's decode compute on an H200
  std::string json;
  // Runtime settings applied to every tiercache case ("key=value,...").
  std::vector<std::pair<std::string, std::string>> settings;
};

#define CUDA_OK(call)                                                              \
  do {                                                                             \
    cudaError_t e_ = (call);                                                       \
    if (e_ != cudaSuccess) {                                                       \
      std::fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call,          \
                   cudaGetErrorString(e_));                                        \
      std::exit(1);                                                                \
    }                                                                              \
  } while (0)

#define TC_OK(call)                                                                \
  do {                                                                             \
    int s_ = (call);                                                               \
    if (s_ != TIERCACHE_OK) {                                                      \
      std::fprintf(stderr, "%s:%d: %s: %s (%s)\n", __FILE__, __LINE__, #call,     \
                   tiercache_status_name(s_), tiercache_last_error());             \
      std::exit(1);                                                                \
    }                                                                              \
  } while (0)

__device__ uint64_t GlobalTimer() {
  uint64_t t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

// Reads every 16-byte word of the block, adds its 32-bit words into *sum,
// then spins until compute_ns have passed since the kernel began.
__global__ void LayerKernel(const uint4* data, size_t words, uint64_t compute_ns,
                            unsigned long long* sum) {
  const uint64_t start = GlobalTimer();
  unsigned long long local = 0;
  for (size_t i = blockIdx.x * blockDim.x + threadIdx.x; i < words; i += gridDim.x * blockDim.x) {
    const uint4 v = data[i];
    local += static_cast<unsigned long long>(v.x) + v.y + v.z + v.w;
  }
  atomicAdd(sum, local);
  while (GlobalTimer() - start < compute_ns) {
  }
}

double Seconds(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

uint32_t PatternWord(int layer, size_t word) {
  return static_cast<uint32_t>(layer + 1) * 2654435761u ^ static_cast<uint32_t>(word * 40503u);
}

void Fill(std::vector<uint32_t>* block, int layer) {
  for (size_t i = 0; i < block->size(); ++i) (*block)[i] = PatternWord(layer, i);
}

unsigned long long Checksum(const std::vector<uint32_t>& block) {
  unsigned long long s = 0;
  for (uint32_t w : block) s += w;
  return s;
}

struct Engine {
  Options o;
  int sms = 0;
  cudaStream_t compute = nullptr;
  unsigned long long* sums = nullptr;  // one per layer, device memory
  std::vector<unsigned long long> want;

  void Launch(const void* block, int layer) {
    LayerKernel<<<sms * 4, 256, 0, compute>>>(static_cast<const uint4*>(block), o.block_bytes / 16,
                                              o.compute_ns, sums + layer);
  }
  // Zeroes the checksums before a step; after it, checks them.
  void BeginStep() { CUDA_OK(cudaMemsetAsync(sums, 0, sizeof(unsigned long long) * o.blocks, compute)); }
  bool CheckStep() {
    std::vector<unsigned long long> got(o.blocks);
    CUDA_OK(cudaMemcpy(got.data(), sums, sizeof(unsigned long long) * o.blocks, cudaMemcpyDeviceToHost));
    for (int l = 0; l < o.blocks; ++l) {
      if (got[l] != want[l]) {
        std::fprintf(stderr, "layer %d: checksum %llu, want %llu\n", l, got[l], want[l]);
        return false;
      }
    }
    return true;
  }
};

double MeasurePeak(Engine& e, const void* host) {
  void* dev = nullptr;
  CUDA_OK(cudaMalloc(&dev, e.o.block_bytes));
  cudaStream_t s;
  CUDA_OK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  double best = 0;
  for (int i = 0; i < 5; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    CUDA_OK(cudaMemcpyAsync(dev, host, e.o.block_bytes, cudaMemcpyHostToDevice, s));
    CUDA_OK(cudaStreamSynchronize(s));
    best = std::max(best, e.o.block_bytes / Seconds(t0, std::chrono::steady_clock::now()));
  }
  CUDA_OK(cudaStreamDestroy(s));
  CUDA_OK(cudaFree(dev));
  return best;
}

struct CaseResult {
  std::string name;
  double first_s = 0, steady_s = 0;
  double uploaded_bytes = 0;  // per steady step
  double gpu_hits = 0, gpu_misses = 0;
  int lookahead = 0;
  bool exact = true;
  double bound_bytes = -1;  // bytes the bound counts; < 0: those uploaded
};

// The pinned double buffer: the peer an engine author would write by hand.
CaseResult DoubleBuffer(Engine& e, const std::vector<void*>& host) {
  CaseResult r{"double-buffer"};
  void* buf[2];
  CUDA_OK(cudaMalloc(&buf[0], e.o.block_bytes));
  CUDA_OK(cudaMalloc(&buf[1], e.o.block_bytes));
  cudaStream_t copy;
  CUDA_OK(cudaStreamCreateWithPriority(&copy, cudaStreamNonBlocking, -1));
  cudaEvent_t copied[2], used[2];
  for (int i = 0; i < 2; ++i) {
    CUDA_OK(cudaEventCreateWithFlags(&copied[i], cudaEventDisableTiming));
    CUDA_OK(cudaEventCreateWithFlags(&used[i], cudaEventDisableTiming));
    CUDA_OK(cudaEventRecord(used[i], e.compute));
  }
  std::vector<double> steps;
  for (int step = 0; step < e.o.steps; ++step) {
    e.BeginStep();
    CUDA_OK(cudaStreamSynchronize(e.compute));
    const auto t0 = std::chrono::steady_clock::now();
    for (int l = 0; l < e.o.blocks; ++l) {
      const int k = l % 2;
      CUDA_OK(cudaStreamWaitEvent(copy, used[k], 0));
      CUDA_OK(cudaMemcpyAsync(buf[k], host[l], e.o.block_bytes, cudaMemcpyHostToDevice, copy));
      CUDA_OK(cudaEventRecord(copied[k], copy));
      CUDA_OK(cudaStreamWaitEvent(e.compute, copied[k], 0));
      e.Launch(buf[k], l);
      CUDA_OK(cudaEventRecord(used[k], e.compute));
    }
    CUDA_OK(cudaStreamSynchronize(e.compute));
    steps.push_back(Seconds(t0, std::chrono::steady_clock::now()));
    r.exact = r.exact && e.CheckStep();
  }
  r.first_s = steps.front();
  r.steady_s = Median(std::vector<double>(steps.begin() + 1, steps.end()));
  r.uploaded_bytes = static_cast<double>(e.o.blocks) * e.o.block_bytes;
  for (int i = 0; i < 2; ++i) {
    CUDA_OK(cudaEventDestroy(copied[i]));
    CUDA_OK(cudaEventDestroy(used[i]));
    CUDA_OK(cudaFree(buf[i]));
  }
  CUDA_OK(cudaStreamDestroy(copy));
  return r;
}

// Reads a number out of the stats JSON: the first "key": after `anchor`.
double JsonNumber(const std::string& json, const std::string& anchor, const std::string& key) {
  size_t at = json.find(anchor);
  if (at == std::string::npos) return -1;
  at = json.find("\"" + key + "\":", at);
  if (at == std::string::npos) return -1;
  return std::strtod(json.c_str() + at + key.size() + 3, nullptr);
}

std::string Stats(tiercache_runtime* rt) {
  size_t needed = 0;
  tiercache_stats_json(rt, nullptr, 0, &needed);
  std::string s(needed, '\0');
  TC_OK(tiercache_stats_json(rt, s.data(), s.size(), nullptr));
  return s;
}

// tiercache with a GPU cache of `cache_blocks` blocks, C API defaults.
CaseResult Tiercache(Engine& e, const std::string& name, int cache_blocks,
                     const std::vector<std::vector<uint32_t>>& layers) {
  CaseResult r{name};
  tiercache_config* config = nullptr;
  TC_OK(tiercache_config_create(&config));
  const uint64_t cache = static_cast<uint64_t>(cache_blocks) * e.o.block_bytes;
  TC_OK(tiercache_config_set(config, "gpu_cache_bytes", std::to_string(cache).c_str()));
  TC_OK(tiercache_config_set(config, "gpu_budget_bytes", std::to_string(cache + (1ull << 30)).c_str()));
  const uint64_t dram = static_cast<uint64_t>(e.o.blocks) * e.o.block_bytes + (512ull << 20);
  TC_OK(tiercache_config_set(config, "dram_bytes", std::to_string(dram).c_str()));
  for (const auto& [key, value] : e.o.settings) TC_OK(tiercache_config_set(config, key.c_str(), value.c_str()));
  tiercache_runtime* rt = nullptr;
  TC_OK(tiercache_open(config, &rt));
  tiercache_config_destroy(config);
  std::vector<tiercache_block> ids(e.o.blocks);
  for (int l = 0; l < e.o.blocks; ++l) {
    TC_OK(tiercache_register_buffer(rt, ("layer" + std::to_string(l)).c_str(), layers[l].data(),
                                    e.o.block_bytes, "dram", TIERCACHE_NO_GROUP, &ids[l]));
  }
  std::vector<double> steps;
  double bytes_before = 0, hits_before = 0, misses_before = 0;
  for (int step = 0; step < e.o.steps; ++step) {
    e.BeginStep();
    CUDA_OK(cudaStreamSynchronize(e.compute));
    if (step == 1) {
      TC_OK(tiercache_drain(rt));
      const std::string s = Stats(rt);
      bytes_before = JsonNumber(s, "\"name\":\"gpu\"", "bytes_in");
      hits_before = JsonNumber(s, "\"name\":\"gpu\"", "hits");
      misses_before = JsonNumber(s, "\"name\":\"gpu\"", "misses");
    }
    const auto t0 = std::chrono::steady_clock::now();
    for (int l = 0; l < e.o.blocks; ++l) {
      void* ptr = nullptr;
      TC_OK(tiercache_acquire(rt, ids[l], e.compute, &ptr));
      e.Launch(ptr, l);
      TC_OK(tiercache_release(rt, ids[l], e.compute));
    }
    CUDA_OK(cudaStreamSynchronize(e.compute));
    steps.push_back(Seconds(t0, std::chrono::steady_clock::now()));
    r.exact = r.exact && e.CheckStep();
  }
  TC_OK(tiercache_drain(rt));
  const std::string s = Stats(rt);
  const int measured = e.o.steps - 1;
  r.uploaded_bytes = (JsonNumber(s, "\"name\":\"gpu\"", "bytes_in") - bytes_before) / measured;
  r.gpu_hits = (JsonNumber(s, "\"name\":\"gpu\"", "hits") - hits_before) / measured;
  r.gpu_misses = (JsonNumber(s, "\"name\":\"gpu\"", "misses") - misses_before) / measured;
  r.lookahead = static_cast<int>(JsonNumber(s, "\"prefetch\":", "lookahead"));
  r.first_s = steps.front();
  r.steady_s = Median(std::vector<double>(steps.begin() + 1, steps.end()));
  TC_OK(tiercache_close(rt));
  return r;
}

bool ParseArgs(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    auto value = [&](const char* key) { return tiercache::bench::FlagValue(argv[i], key); };
    if (const char* v = value("blocks")) o->blocks = std::atoi(v);
    else if (const char* v = value("block-mib")) o->block_bytes = std::strtoull(v, nullptr, 10) << 20;
    else if (const char* v = value("steps")) o->steps = std::atoi(v);
    else if (const char* v = value("compute-us")) o->compute_ns = std::strtoull(v, nullptr, 10) * 1000;
    else if (const char* v = value("json")) o->json = v;
    else if (const char* v = value("config")) {
      if (!tiercache::bench::ParseSettings(v, &o->settings)) {
        std::fprintf(stderr, "engine_bench: --config wants key=value[,key=value...], got '%s'\n", v);
        return false;
      }
    }
    else {
      std::fprintf(stderr, "engine_bench: unknown argument '%s'\n"
                   "usage: engine_bench [--blocks=N] [--block-mib=N] [--steps=N] [--compute-us=N] [--json=PATH]\n"
                   "                    [--config=key=value,...]\n",
                   argv[i]);
      return false;
    }
  }
  if (o->blocks < 4 || o->steps < 2 || o->block_bytes < (1 << 20) || o->block_bytes % 16 != 0) {
    std::fprintf(stderr, "engine_bench: need blocks >= 4, steps >= 2, block-mib >= 1\n");
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Engine e;
  if (!ParseArgs(argc, argv, &e.o)) return 2;
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::printf("engine_bench: no CUDA device; nothing to measure\n");
    return 0;
  }
  cudaDeviceProp prop;
  CUDA_OK(cudaGetDeviceProperties(&prop, 0));
  e.sms = prop.multiProcessorCount;
  CUDA_OK(cudaStreamCreateWithFlags(&e.compute, cudaStreamNonBlocking));
  CUDA_OK(cudaMalloc(&e.sums, sizeof(unsigned long long) * e.o.blocks));
  std::printf("engine_bench: %s, %d x %.0f MiB layers, %.0f us compute per layer, %d steps\n", prop.name,
              e.o.blocks, e.o.block_bytes / 1048576.0, e.o.compute_ns / 1e3, e.o.steps);
  // The layers' bytes, in pinned host memory for the peers and pageable for
  // registration (the runtime copies them into its pinned DRAM tier).
  std::vector<std::vector<uint32_t>> layers(e.o.blocks, std::vector<uint32_t>(e.o.block_bytes / 4));
  std::vector<void*> pinned(e.o.blocks);
  for (int l = 0; l < e.o.blocks; ++l) {
    Fill(&layers[l], l);
    e.want.push_back(Checksum(layers[l]));
    CUDA_OK(cudaHostAlloc(&pinned[l], e.o.block_bytes, cudaHostAllocDefault));
    std::memcpy(pinned[l], layers[l].data(), e.o.block_bytes);
  }
  const double peak = MeasurePeak(e, pinned[0]);
  std::vector<CaseResult> results;
  results.push_back(DoubleBuffer(e, pinned));
  for (void* p : pinned) CUDA_OK(cudaFreeHost(p));  // host memory for the runtime's tier
  results.push_back(Tiercache(e, "streaming-room3", 3, layers));
  for (int pct : {25, 50, 75}) {
    results.push_back(Tiercache(e, "budget-" + std::to_string(pct) + "%", e.o.blocks * pct / 100, layers));
  }
  for (int pct : {25, 50, 75}) {
    const int held = e.o.blocks * pct / 100;
    CaseResult r = Tiercache(e, "held-" + std::to_string(pct) + "%+2", held + 2, layers);
    r.bound_bytes = static_cast<double>(e.o.blocks - held) * static_cast<double>(e.o.block_bytes);
    results.push_back(r);
  }
  const double compute_s = e.o.blocks * e.o.compute_ns / 1e9;
  std::printf("pinned copy peak: %.2f GB/s; compute per step %.1f ms\n", peak / 1e9, compute_s * 1e3);
  std::printf("%-16s %9s %9s %10s %8s %8s %9s %9s %6s %5s %s\n", "case", "first_ms", "step_ms",
              "moved_GB", "GB/s", "vs_peak", "bound_ms", "vs_bound", "first/", "ahead", "exact");
  bool all_exact = true;
  std::string json = "{\"peak_gbps\":" + std::to_string(peak / 1e9) + ",\"cases\":[";
  for (size_t i = 0; i < results.size(); ++i) {
    const CaseResult& r = results[i];
    const double gbps = r.uploaded_bytes / r.steady_s;
    const double counted = r.bound_bytes >= 0 ? r.bound_bytes : r.uploaded_bytes;
    const double bound = std::max(counted / peak, compute_s);
    std::printf("%-16s %9.1f %9.1f %10.2f %8.2f %8.3f %9.1f %9.3f %6.2f %5d %s\n", r.name.c_str(),
                r.first_s * 1e3, r.steady_s * 1e3, r.uploaded_bytes / 1e9, gbps / 1e9, gbps / peak,
                bound * 1e3, r.steady_s / bound, r.first_s / r.steady_s, r.lookahead,
                r.exact ? "yes" : "NO");
    all_exact = all_exact && r.exact;
    json += std::string(i ? "," : "") + "{\"name\":\"" + r.name + "\",\"first_ms\":" +
            std::to_string(r.first_s * 1e3) + ",\"step_ms\":" + std::to_string(r.steady_s * 1e3) +
            ",\"uploaded_bytes\":" + std::to_string(r.uploaded_bytes) + ",\"vs_peak\":" +
            std::to_string(gbps / peak) + ",\"bound_ms\":" + std::to_string(bound * 1e3) +
            ",\"vs_bound\":" + std::to_string(r.steady_s / bound) + ",\"gpu_hits\":" +
            std::to_string(r.gpu_hits) + ",\"gpu_misses\":" + std::to_string(r.gpu_misses) +
            ",\"lookahead\":" + std::to_string(r.lookahead) + ",\"exact\":" + (r.exact ? "true" : "false") + "}";
  }
  json += "]}\n";
  std::printf("targets: streaming vs_peak >= 0.98; budget vs_bound <= 1.05; first/steady <= 1.25\n"
              "(held cases: bound = bytes of the blocks not held / peak)\n");
  if (!e.o.json.empty()) {
    if (FILE* f = std::fopen(e.o.json.c_str(), "w")) {
      std::fputs(json.c_str(), f);
      std::fclose(f);
    }
  }
  CUDA_OK(cudaFree(e.sums));
  CUDA_OK(cudaStreamDestroy(e.compute));
  return all_exact ? 0 : 1;
}
