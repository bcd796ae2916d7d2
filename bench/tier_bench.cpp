// Tier bandwidth: sequential reads and writes through every tier built in,
// and the NVMe tier kept busy at a fixed queue depth the way fio drives a
// device (bench/fio_compare.sh runs both on the same file).
//
// Families (names are what --benchmark_filter matches):
//   seq/<read|write>/<tier>/<request bytes>      one synchronous request at a
//       time, cycling over the working set; tiers: memory, dram, pmem,
//       nvme_uring, nvme_threads. The NVMe tier cuts each request into 1 MiB
//       transfers, 64 in flight.
//   nvme_queued/<read|write>/<uring|threads>/bs:<bytes>/qd:<depth>
//       `depth` asynchronous requests of `bytes` in flight at all times, each
//       completion issuing the next (fio's model); one iteration is one pass
//       over the working set.
//
// Environment:
//   TIERCACHE_BENCH_DIR    directory for the file-backed tiers (default $TMPDIR or /tmp)
//   TIERCACHE_BENCH_BYTES  working set per tier (default 1GiB)
//   TIERCACHE_BENCH_NVME_FILE  use this file for the NVMe tier and keep it
//       (default: a file in TIERCACHE_BENCH_DIR, removed at exit)
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/units.h"
#include "tiers/dram_tier.h"
#include "tiers/memory_tier.h"
#include "tiers/nvme_tier.h"
#ifdef TIERCACHE_HAVE_PMEM
#include "tiers/pmem_tier.h"
#endif

namespace tiercache {
namespace {

constexpr int64_t kRequestSizes[] = {64 * 1024, 1 << 20, 16 << 20, 64 << 20};

std::string EnvOr(const char* name, const std::string& fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : fallback;
}

uint64_t WorkingSetBytes() {
  static const uint64_t bytes = [] {
    Result<uint64_t> parsed = ParseBytes(EnvOr("TIERCACHE_BENCH_BYTES", "1GiB"));
    return parsed.ok() && *parsed >= 64 * kMiB ? AlignUp(*parsed, 64 * kMiB) : kGiB;
  }();
  return bytes;
}

std::string BenchDir() { return EnvOr("TIERCACHE_BENCH_DIR", EnvOr("TMPDIR", "/tmp")); }

// Files this process created, removed at exit.
std::vector<std::string>& ScratchFiles() {
  static std::vector<std::string> files;
  return files;
}

std::string ScratchFile(const std::string& stem) {
  std::string path = BenchDir() + "/tiercache-bench-" + stem + "-" + std::to_string(::getpid());
  ScratchFiles().push_back(path);
  return path;
}

std::string NvmeFile() {
  static const std::string path = [] {
    const char* given = std::getenv("TIERCACHE_BENCH_NVME_FILE");
    return given != nullptr && *given != '\0' ? std::string(given) : ScratchFile("nvme");
  }();
  return path;
}

Result<std::unique_ptr<Tier>> OpenNvme(IoEngineKind kind, uint64_t block, uint32_t depth) {
  NvmeTierOptions options;
  options.path = NvmeFile();
  options.capacity = WorkingSetBytes();
  options.block_size = block;
  options.io.kind = kind;
  options.io.queue_depth = depth;
  Result<std::unique_ptr<NvmeTier>> tier = NvmeTier::Create(options);
  if (!tier.ok()) return tier.status();
  if ((*tier)->engine_kind() != kind) {
    return Status::Unavailable(std::string("engine ") + IoEngineKindName(kind) +
                               " not available here");
  }
  return std::unique_ptr<Tier>(std::move(tier).value());
}

Result<std::unique_ptr<Tier>> OpenTier(const std::string& name) {
  const uint64_t bytes = WorkingSetBytes();
  if (name == "memory") {
    Result<std::unique_ptr<MemoryTier>> t = MemoryTier::Create("memory", bytes, 4096);
    if (!t.ok()) return t.status();
    return std::unique_ptr<Tier>(std::move(t).value());
  }
  if (name == "dram") {
    DramTierOptions options;
    options.capacity = bytes;
    Result<std::unique_ptr<DramTier>> t = DramTier::Create(options);
    if (!t.ok()) return t.status();
    return std::unique_ptr<Tier>(std::move(t).value());
  }
#ifdef TIERCACHE_HAVE_PMEM
  if (name == "pmem") {
    PmemTierOptions options;
    options.path = ScratchFile("pmem");
    options.capacity = bytes;
    Result<std::unique_ptr<PmemTier>> t = PmemTier::Open(options);
    if (!t.ok()) return t.status();
    return std::unique_ptr<Tier>(std::move(t).value());
  }
#endif
  if (name == "nvme_uring") return OpenNvme(IoEngineKind::kUring, 1 * kMiB, 64);
  if (name == "nvme_threads") return OpenNvme(IoEngineKind::kThreads, 1 * kMiB, 64);
  return Status::NotFound("no tier called " + name);
}

// A tier with its whole working set allocated and written once, so reads
// never see holes. Kept for the whole run: the first benchmark pays.
struct OpenedTier {
  std::unique_ptr<Tier> tier;
  Extent extent;
};

OpenedTier* Prepared(const std::string& name, std::string* error) {
  static std::map<std::string, std::unique_ptr<OpenedTier>> tiers;
  auto it = tiers.find(name);
  if (it != tiers.end()) return it->second.get();
  Result<std::unique_ptr<Tier>> tier = OpenTier(name);
  if (!tier.ok()) {
    *error = tier.status().ToString();
    return nullptr;
  }
  auto opened = std::make_unique<OpenedTier>();
  opened->tier = std::move(tier).value();
  Result<Extent> extent = opened->tier->Allocate(WorkingSetBytes());
  if (!extent.ok()) {
    *error = extent.status().ToString();
    return nullptr;
  }
  opened->extent = *extent;
  std::vector<unsigned char> chunk(64 * kMiB, 0x5A);
  for (uint64_t at = 0; at < WorkingSetBytes(); at += chunk.size()) {
    Status s = opened->tier->Write(opened->extent, at, chunk.data(), chunk.size());
    if (!s.ok()) {
      *error = s.ToString();
      return nullptr;
    }
  }
  return (tiers[name] = std::move(opened)).get();
}

unsigned char* AlignedScratch(uint64_t bytes) {
  static std::map<uint64_t, std::unique_ptr<unsigned char, decltype(&std::free)>> buffers;
  auto it = buffers.find(bytes);
  if (it == buffers.end()) {
    auto* p = static_cast<unsigned char*>(std::aligned_alloc(4096, bytes));
    std::memset(p, 0xA5, bytes);
    it = buffers.emplace(bytes, std::unique_ptr<unsigned char, decltype(&std::free)>(p, std::free))
             .first;
  }
  return it->second.get();
}

void Sequential(benchmark::State& state, const std::string& tier_name, bool read) {
  std::string error;
  OpenedTier* opened = Prepared(tier_name, &error);
  if (opened == nullptr) {
    state.SkipWithError(error.c_str());
    return;
  }
  const uint64_t block = static_cast<uint64_t>(state.range(0));
  unsigned char* buffer = AlignedScratch(block);
  uint64_t at = 0;
  for (auto _ : state) {
    Status s = read ? opened->tier->Read(opened->extent, at, buffer, block)
                    : opened->tier->Write(opened->extent, at, buffer, block);
    if (!s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      break;
    }
    at = (at + block) % WorkingSetBytes();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * block));
}

// `depth` slots; each completion issues the slot's next request until the
// pass has issued every block of the working set.
class QueuedPass {
 public:
  QueuedPass(Tier& tier, const Extent& extent, bool read, uint64_t block, unsigned char* buffers)
      : tier_(tier), extent_(extent), read_(read), block_(block), buffers_(buffers) {}

  Status Run(uint32_t depth) {
    next_ = 0;
    in_flight_ = 0;
    error_ = Status::Ok();
    const uint64_t total = WorkingSetBytes() / block_;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      in_flight_ = std::min<uint64_t>(depth, total);
      next_ = in_flight_;
    }
    for (uint64_t slot = 0; slot < std::min<uint64_t>(depth, total); ++slot) Issue(slot, slot);
    std::unique_lock<std::mutex> lock(mutex_);
    done_cv_.wait(lock, [this] { return in_flight_ == 0; });
    return error_;
  }

 private:
  void Issue(uint64_t slot, uint64_t index) {
    unsigned char* buffer = buffers_ + slot * block_;
    auto done = [this, slot](Status s) { Completed(slot, std::move(s)); };
    if (read_) {
      tier_.ReadAsync(extent_, index * block_, buffer, block_, done);
    } else {
      tier_.WriteAsync(extent_, index * block_, buffer, block_, done);
    }
  }

  void Completed(uint64_t slot, Status status) {
    uint64_t index;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!status.ok() && error_.ok()) error_ = status;
      if (next_ == WorkingSetBytes() / block_ || !error_.ok()) {
        if (--in_flight_ == 0) done_cv_.notify_one();
        return;
      }
      index = next_++;
    }
    Issue(slot, index);
  }

  Tier& tier_;
  const Extent extent_;
  const bool read_;
  const uint64_t block_;
  unsigned char* const buffers_;
  std::mutex mutex_;
  std::condition_variable done_cv_;
  uint64_t next_ = 0, in_flight_ = 0;
  Status error_;
};

void Queued(benchmark::State& state, IoEngineKind kind, bool read) {
  const uint64_t block = static_cast<uint64_t>(state.range(0));
  const auto depth = static_cast<uint32_t>(state.range(1));
  // One transfer per request, `depth` of them in the kernel: what fio does.
  Result<std::unique_ptr<Tier>> tier = OpenNvme(kind, block, depth);
  if (!tier.ok()) {
    state.SkipWithError(tier.status().ToString().c_str());
    return;
  }
  Result<Extent> extent = (*tier)->Allocate(WorkingSetBytes());
  if (!extent.ok()) {
    state.SkipWithError(extent.status().ToString().c_str());
    return;
  }
  unsigned char* buffers = AlignedScratch(block * depth);
  (void)(*tier)->RegisterBuffer(buffers, block * depth);  // a hint; fine to be refused
  QueuedPass pass(**tier, *extent, read, block, buffers);
  for (auto _ : state) {
    Status s = pass.Run(depth);
    if (!s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      break;
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * WorkingSetBytes()));
  state.counters["queue_depth"] = depth;
}

void RegisterAll() {
  std::vector<std::string> tiers = {"memory", "dram"};
#ifdef TIERCACHE_HAVE_PMEM
  tiers.push_back("pmem");
#endif
  tiers.push_back("nvme_uring");
  tiers.push_back("nvme_threads");
  for (const char* op : {"write", "read"}) {
    for (const std::string& tier : tiers) {
      const bool read = std::strcmp(op, "read") == 0;
      auto* b = benchmark::RegisterBenchmark(
          ("seq/" + std::string(op) + "/" + tier).c_str(),
          [tier, read](benchmark::State& state) { Sequential(state, tier, read); });
      for (int64_t size : kRequestSizes) b->Arg(size);
      b->UseRealTime()->Unit(benchmark::kMillisecond);
    }
  }
  for (const char* op : {"write", "read"}) {
    for (IoEngineKind kind : {IoEngineKind::kUring, IoEngineKind::kThreads}) {
      const bool read = std::strcmp(op, "read") == 0;
      auto* b = benchmark::RegisterBenchmark(
          ("nvme_queued/" + std::string(op) + "/" + IoEngineKindName(kind)).c_str(),
          [kind, read](benchmark::State& state) { Queued(state, kind, read); });
      b->ArgNames({"bs", "qd"});
      for (int64_t size : kRequestSizes) {
        for (int64_t depth : {1, 8, 32}) {
          if (size * depth <= int64_t{1} << 30) b->Args({size, depth});
        }
      }
      b->UseRealTime()->Unit(benchmark::kMillisecond);
    }
  }
}

}  // namespace
}  // namespace tiercache

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  tiercache::RegisterAll();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  for (const std::string& path : tiercache::ScratchFiles()) std::remove(path.c_str());
  return 0;
}
