// PreloadTrace: the allocation and copy trace TIERCACHE_TRACE records, in
// the tiercache-csv block-trace format that tiercache-bench replays
// (docs/traces.md): `tiercache-bench replay --trace <file>`.
//
// Mapping: each allocation the pool served is a block with a new id (never
// reused) written at allocation (op `write`), each host<->device copy that
// touches it is a `read` of that block, and its free is `free`. Calls the
// library passed through to CUDA, and their return codes, are `#` comment
// lines ("# 1234 cudaMalloc 1048576 -> 35 passed through: no CUDA device"),
// which readers skip, so the file stays replayable while still recording
// every call observed. Times are ns since the library loaded.
//
// Thread safety: every method may be called from any thread (one mutex);
// lines are written in the order the calls took the lock.
#ifndef TIERCACHE_TOOLS_PRELOAD_PRELOAD_TRACE_H_
#define TIERCACHE_TOOLS_PRELOAD_PRELOAD_TRACE_H_

#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "common/status.h"

namespace tiercache::preload {

class PreloadTrace {
 public:
  static Result<std::unique_ptr<PreloadTrace>> Open(const std::string& path);
  ~PreloadTrace();

  void Allocated(uint64_t id, const void* pointer, uint64_t bytes);
  void Freed(const void* pointer);
  // A copy touching [pointer, pointer + bytes): one `read` per block it
  // overlaps. Pointers outside every traced block are ignored.
  void Touched(const void* pointer, uint64_t bytes);
  // A call the pool did not serve, with the code the real function returned.
  void PassedThrough(const char* function, uint64_t bytes, int code, const char* why);
  void Flush();

 private:
  explicit PreloadTrace(std::FILE* file);
  uint64_t Now() const;
  struct Block {
    uint64_t id;
    uint64_t bytes;
  };
  std::mutex mutex_;
  std::FILE* file_;
  std::map<uintptr_t, Block> live_;  // by start address
};

}  // namespace tiercache::preload

#endif  // TIERCACHE_TOOLS_PRELOAD_PRELOAD_TRACE_H_
