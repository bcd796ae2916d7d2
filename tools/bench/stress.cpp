#include "tools/bench/stress.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "common/units.h"
#include "runtime/config.h"
#include "runtime/runtime.h"

namespace tiercache::bench {
namespace {

uint64_t ResidentKib() {
  unsigned long long pages_total = 0, pages_resident = 0;
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  const int got = std::fscanf(f, "%llu %llu", &pages_total, &pages_resident);
  std::fclose(f);
  return got == 2 ? pages_resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE)) / 1024 : 0;
}

std::vector<unsigned char> Pattern(uint64_t bytes, uint64_t seed) {
  std::vector<unsigned char> out(bytes);
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (uint64_t i = 0; i < bytes; ++i) {
    if ((i & 7) == 0) x = x * 6364136223846793005ull + 1442695040888963407ull;
    out[i] = static_cast<unsigned char>(x >> ((i & 7) * 8));
  }
  return out;
}

struct Counters {
  std::atomic<uint64_t> acquires{0}, bytes_verified{0}, mismatches{0}, errors{0}, refusals{0};
  std::atomic<uint64_t> prefetches{0}, evictions{0}, saves{0}, restores{0};
  std::mutex mutex;
  std::string first_error;     // GUARDED_BY(mutex)
  std::string first_mismatch;  // GUARDED_BY(mutex)
};

struct Activation {
  ActivationHandle handle;
  std::vector<unsigned char> data;
};

// One thread's share of the load.
class Worker {
 public:
  Worker(Runtime& runtime, const std::vector<BlockId>& ids,
         const std::vector<std::vector<unsigned char>>& data, Stream stream, uint64_t seed,
         Counters& counters)
      : runtime_(runtime), cache_(runtime.cache()), ids_(ids), data_(data), stream_(stream),
        random_(seed), counters_(counters), cursor_(random_() % ids.size()) {}

  void Run(std::chrono::steady_clock::time_point deadline) {
    while (std::chrono::steady_clock::now() < deadline) Step();
    while (!pending_.empty()) Restore();
  }

 private:
  size_t Pick() { return (cursor_ + random_() % 5) % ids_.size(); }

  // Ok: true. Expected refusals: counted, false. Anything else: an error.
  bool Note(const Status& s, const char* what) {
    if (s.ok()) return true;
    if (s.code() == ErrorCode::kOutOfSpace || s.code() == ErrorCode::kBusy) {
      counters_.refusals++;
      return false;
    }
    counters_.errors++;
    std::lock_guard<std::mutex> lock(counters_.mutex);
    if (counters_.first_error.empty()) counters_.first_error = std::string(what) + ": " + s.ToString();
    return false;
  }

  // `what` names the source for the report's first mismatch.
  void Verify(const void* device_ptr, const std::vector<unsigned char>& expected,
              const std::string& what) {
    host_.resize(expected.size());
    Status s = runtime_.device().CopyAsync(host_.data(), device_ptr, host_.size(),
                                           CopyKind::kDeviceToHost, stream_);
    if (s.ok()) s = runtime_.device().StreamSynchronize(stream_);
    if (!Note(s, "read back")) return;
    if (host_ != expected) {
      counters_.mismatches++;
      uint64_t first = 0, wrong = 0;
      for (uint64_t i = expected.size(); i-- > 0;) {
        if (host_[i] != expected[i]) first = i, ++wrong;
      }
      std::lock_guard<std::mutex> lock(counters_.mutex);
      if (counters_.first_mismatch.empty()) {
        counters_.first_mismatch = what + ": " + std::to_string(wrong) + " of " +
                                   std::to_string(expected.size()) +
                                   " bytes differ, the first at offset " + std::to_string(first);
      }
    } else {
      counters_.bytes_verified += expected.size();
    }
  }

  void AcquireSome(bool try_only) {
    const size_t first = Pick(), count = try_only ? 1 : 1 + random_() % 2;
    std::vector<size_t> held;
    for (size_t k = 0; k < count; ++k) {
      const size_t i = (first + k) % ids_.size();
      Result<void*> ptr = try_only ? cache_.TryAcquire(ids_[i], stream_)
                                   : cache_.Acquire(ids_[i], stream_);
      if (!Note(ptr.status(), try_only ? "try_acquire" : "acquire")) continue;
      counters_.acquires++;
      Verify(*ptr, data_[i], std::string(try_only ? "try_acquire" : "acquire") + " of block " +
                                 std::to_string(i));
      held.push_back(i);
    }
    for (size_t i : held) Note(cache_.Release(ids_[i], stream_), "release");
    cursor_ = (cursor_ + 1) % ids_.size();
  }

  void Save() {
    const uint64_t bytes = 64 * kKiB + random_() % (192 * kKiB);
    Activation a{0, Pattern(bytes, random_())};
    Result<void*> ptr = runtime_.allocator().Allocate(bytes, stream_);
    if (!Note(ptr.status(), "device alloc")) return;
    Status s = runtime_.device().CopyAsync(*ptr, a.data.data(), bytes, CopyKind::kHostToDevice,
                                           stream_);
    if (!Note(s, "copy to device")) {
      (void)runtime_.allocator().Free(*ptr, stream_);
      return;
    }
    Result<ActivationHandle> handle = runtime_.activations()->Save(*ptr, bytes, stream_);
    if (!Note(handle.status(), "save")) {
      (void)runtime_.device().StreamSynchronize(stream_);
      (void)runtime_.allocator().Free(*ptr, stream_);
      return;
    }
    counters_.saves++;
    a.handle = *handle;
    pending_.push_back(std::move(a));
  }

  void Restore() {  // newest first, as a backward pass runs
    Activation a = std::move(pending_.back());
    pending_.pop_back();
    if (random_() % 8 == 0) {
      Note(runtime_.activations()->Discard(a.handle), "discard");
      (void)runtime_.device().StreamSynchronize(stream_);  // a.data fed the save's copy
      return;
    }
    Result<void*> ptr = runtime_.activations()->Restore(a.handle, stream_);
    if (!Note(ptr.status(), "restore")) {
      (void)runtime_.device().StreamSynchronize(stream_);
      return;
    }
    counters_.restores++;
    Verify(*ptr, a.data, "restore of an activation");
    Note(runtime_.allocator().Free(*ptr, stream_), "device free");
  }

  void Step() {
    const uint32_t r = random_() % 100;
    if (r < 50) {
      AcquireSome(false);
    } else if (r < 60) {
      std::vector<BlockId> next;
      for (int k = 1; k <= 3; ++k) next.push_back(ids_[(cursor_ + k) % ids_.size()]);
      if (Note(cache_.Prefetch(next), "prefetch")) counters_.prefetches++;
    } else if (r < 67) {
      if (Note(cache_.Evict(ids_[random_() % ids_.size()]), "evict")) counters_.evictions++;
    } else if (r < 74) {
      AcquireSome(true);
    } else if (r < 78) {
      Note(cache_.HintNextUse(ids_[Pick()], random_() % 64), "hint");
    } else if (r < 80 && !pending_.empty()) {
      std::vector<ActivationHandle> handles;
      for (auto it = pending_.rbegin(); it != pending_.rend(); ++it) handles.push_back(it->handle);
      Note(runtime_.activations()->PrefetchRestore(handles), "prefetch restore");
    } else if (pending_.size() < 3 && (pending_.empty() || random_() % 2 == 0)) {
      Save();
    } else if (!pending_.empty()) {
      Restore();
    }
  }

  Runtime& runtime_;
  BlockCache& cache_;
  const std::vector<BlockId>& ids_;
  const std::vector<std::vector<unsigned char>>& data_;
  Stream stream_;
  std::mt19937_64 random_;
  Counters& counters_;
  size_t cursor_;
  std::deque<Activation> pending_;
  std::vector<unsigned char> host_;
};

RuntimeConfig StressConfig(const StressOptions& options, const std::string& dir) {
  RuntimeConfig config;
  const uint64_t block = options.block_bytes;
  config.gpu_cache_bytes = block * static_cast<uint64_t>(std::max(2, options.blocks / 2));
  config.gpu_budget_bytes = config.gpu_cache_bytes + 16 * kMiB;  // room for activations
  config.dram_bytes = block * static_cast<uint64_t>(options.blocks) / 2 + 8 * kMiB;
  config.nvme_path = dir;
  config.nvme_bytes = block * static_cast<uint64_t>(options.blocks) + 64 * kMiB;
  config.chunk_bytes = 64 * kKiB;
  config.staging_buffers = 4;
  config.acquire_wait_ms = 200;
  return config;
}

}  // namespace

Result<StressReport> RunStress(const StressOptions& options) {
  if (options.threads < 1 || options.streams < 1 || options.blocks < 2 ||
      options.block_bytes == 0 || !(options.seconds > 0)) {
    return Status::InvalidArgument("stress: threads, streams, blocks (>= 2), block size and "
                                   "seconds must be positive");
  }
  std::string dir = options.dir;
  if (dir.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    dir = tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
  }
  TC_ASSIGN_OR_RETURN(std::unique_ptr<Runtime> runtime,
                      Runtime::Create(StressConfig(options, dir)));
  BlockCache& cache = runtime->cache();
  std::vector<std::vector<unsigned char>> data;
  std::vector<BlockId> ids;
  for (int i = 0; i < options.blocks; ++i) {
    data.push_back(Pattern(options.block_bytes + 4099 * static_cast<uint64_t>(i % 7) + i,
                           options.seed * 1000 + i));
    Tier* home = runtime->tier(i % 2 == 0 ? "dram" : "nvme");
    TC_ASSIGN_OR_RETURN(BlockId id, cache.RegisterFromBuffer("stress" + std::to_string(i),
                                                             data.back().data(),
                                                             data.back().size(), home));
    ids.push_back(id);
  }
  std::vector<Stream> streams;
  for (int s = 0; s < options.streams; ++s) {
    TC_ASSIGN_OR_RETURN(Stream stream, runtime->device().CreateStream());
    streams.push_back(stream);
  }

  Counters counters;
  const auto start = std::chrono::steady_clock::now();
  const auto duration = std::chrono::duration<double>(options.seconds);
  const auto deadline = start + std::chrono::duration_cast<std::chrono::nanoseconds>(duration);
  std::vector<std::thread> threads;
  for (int t = 0; t < options.threads; ++t) {
    threads.emplace_back([&, t] {
      Worker(*runtime, ids, data, streams[t % streams.size()], options.seed * 7919 + t, counters)
          .Run(deadline);
    });
  }
  StressReport report;
  const auto warm = start + std::chrono::duration_cast<std::chrono::nanoseconds>(duration / 10);
  bool warmed = false;
  while (std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    const uint64_t rss = ResidentKib();
    report.rss_max_kib = std::max(report.rss_max_kib, rss);
    if (!warmed && std::chrono::steady_clock::now() >= warm) {
      report.rss_start_kib = rss;
      warmed = true;
    }
  }
  for (std::thread& thread : threads) thread.join();
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (Stream stream : streams) (void)runtime->device().StreamSynchronize(stream);
  Status drained = cache.Drain();
  if (!drained.ok()) return drained;
  for (BlockId id : ids) {
    TC_ASSIGN_OR_RETURN(BlockInfo info, cache.Info(id));
    report.pinned_after += info.pins;
  }
  report.rss_end_kib = ResidentKib();
  if (report.rss_start_kib == 0) report.rss_start_kib = report.rss_end_kib;
  report.rss_max_kib = std::max(report.rss_max_kib, report.rss_end_kib);
  for (Stream stream : streams) (void)runtime->device().DestroyStream(stream);
  report.acquires = counters.acquires;
  report.bytes_verified = counters.bytes_verified;
  report.mismatches = counters.mismatches;
  report.errors = counters.errors;
  report.refusals = counters.refusals;
  report.prefetches = counters.prefetches;
  report.evictions = counters.evictions;
  report.saves = counters.saves;
  report.restores = counters.restores;
  report.first_error = counters.first_error;
  report.first_mismatch = counters.first_mismatch;
  return report;
}

std::string RenderStressReport(const StressReport& r) {
  char line[1024];
  std::snprintf(line, sizeof(line),
                "stress: %.1f s, %llu acquires, %s verified, %llu mismatches, %llu errors, "
                "%llu refusals (out of space / busy), %llu prefetches, %llu evictions, "
                "%llu saves, %llu restores, %llu pins left\n"
                "resident memory: %llu KiB after warm-up, %llu KiB at the end, %llu KiB at most\n"
                "%s%s%s%s%s",
                r.seconds, (unsigned long long)r.acquires, FormatBytes(r.bytes_verified).c_str(),
                (unsigned long long)r.mismatches, (unsigned long long)r.errors,
                (unsigned long long)r.refusals, (unsigned long long)r.prefetches,
                (unsigned long long)r.evictions, (unsigned long long)r.saves,
                (unsigned long long)r.restores, (unsigned long long)r.pinned_after,
                (unsigned long long)r.rss_start_kib, (unsigned long long)r.rss_end_kib,
                (unsigned long long)r.rss_max_kib, r.ok() ? "every byte verified" : "FAILED",
                r.first_error.empty() ? "" : ": first error: ", r.first_error.c_str(),
                r.first_mismatch.empty() ? "" : ": first mismatch: ", r.first_mismatch.c_str());
  return std::string(line) + "\n";
}

}  // namespace tiercache::bench
