#include "tools/preload/preload_trace.h"

#include <cerrno>
#include <chrono>
#include <cinttypes>

namespace tiercache::preload {
namespace {
const auto kStart = std::chrono::steady_clock::now();
}

Result<std::unique_ptr<PreloadTrace>> PreloadTrace::Open(const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "we");
  if (file == nullptr) return Status::FromErrno(errno, "TIERCACHE_TRACE: cannot open " + path);
  std::fputs("# tiercache trace v1\ntime_ns,block_id,bytes,op,phase\n", file);
  return std::unique_ptr<PreloadTrace>(new PreloadTrace(file));
}

PreloadTrace::PreloadTrace(std::FILE* file) : file_(file) {}

PreloadTrace::~PreloadTrace() { std::fclose(file_); }

uint64_t PreloadTrace::Now() const {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now() - kStart)
                                   .count());
}

void PreloadTrace::Allocated(uint64_t id, const void* pointer, uint64_t bytes) {
  std::lock_guard<std::mutex> lock(mutex_);
  live_[reinterpret_cast<uintptr_t>(pointer)] = Block{id, bytes};
  std::fprintf(file_, "%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",write,0\n", Now(), id, bytes);
}

void PreloadTrace::Freed(const void* pointer) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = live_.find(reinterpret_cast<uintptr_t>(pointer));
  if (it == live_.end()) return;
  std::fprintf(file_, "%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",free,0\n", Now(), it->second.id,
               it->second.bytes);
  live_.erase(it);
}

void PreloadTrace::Touched(const void* pointer, uint64_t bytes) {
  uintptr_t begin = reinterpret_cast<uintptr_t>(pointer);
  uintptr_t end = begin + bytes;
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = live_.upper_bound(begin);
  if (it != live_.begin()) --it;
  uint64_t now = Now();
  for (; it != live_.end() && it->first < end; ++it) {
    if (it->first + it->second.bytes <= begin) continue;
    std::fprintf(file_, "%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",read,0\n", now, it->second.id,
                 it->second.bytes);
  }
}

void PreloadTrace::PassedThrough(const char* function, uint64_t bytes, int code, const char* why) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::fprintf(file_, "# %" PRIu64 " %s %" PRIu64 " -> %d passed through: %s\n", Now(), function,
               bytes, code, why);
}

void PreloadTrace::Flush() {
  std::lock_guard<std::mutex> lock(mutex_);
  std::fflush(file_);
}

}  // namespace tiercache::preload
