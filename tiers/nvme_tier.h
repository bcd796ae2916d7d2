// NvmeTier: a tier over one file on a local SSD, read and written with
// O_DIRECT through an IoEngine (io_uring, or the pread/pwrite pool).
//
// Contract
// - Create() opens (or creates) `path`, sizes it to `capacity` with
//   fallocate and keeps it open. The directory must exist. The file is the
//   tier's address space: tier address == file offset. Its contents are not
//   indexed, so the tier is volatile (persistent() is false); the file is
//   left in place when the tier closes.
// - Read/Write accept any alignment. Whole blocks in the middle of a request
//   go straight between the caller's buffer and the file when the buffer is
//   aligned for O_DIRECT, else through aligned bounce buffers; an unaligned
//   head or tail is read (and, for writes, patched and written back) as a
//   whole block. Requests are cut into `block_size` transfers submitted as
//   one batch, the engine keeping `queue_depth` of them in the kernel.
// - ReadAsync/WriteAsync return before the data moves and call back on an
//   engine thread. One exception: the unaligned edge blocks of a write are
//   read-modify-written before WriteAsync returns (see docs/tiers-nvme.md).
// - RegisterBuffer() registers a long-lived host buffer (a staging pool) for
//   fixed-buffer io_uring I/O. The buffer must stay mapped until
//   UnregisterBuffer() or the tier's destruction.
// - Failures: a missing directory is kNotFound and an unwritable file
//   kPermissionDenied, both naming the path; a capacity beyond the free
//   space kOutOfSpace; I/O errors kIoError with the offset.
// - Fallbacks, each recorded once: "nvme.o_direct" when the filesystem
//   refuses O_DIRECT (EINVAL), and "nvme.io_engine" (see io_engine.h).
//
// Thread safety: as Tier. Writes to distinct bytes of one block from
// different threads are safe: edge read-modify-writes hold a per-block lock.
#ifndef TIERCACHE_TIERS_NVME_TIER_H_
#define TIERCACHE_TIERS_NVME_TIER_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/units.h"
#include "tiers/io_engine.h"
#include "tiers/tier.h"

namespace tiercache {

struct NvmeTierOptions {
  std::string name = "nvme";
  std::string path;             // the backing file; its directory must exist
  uint64_t capacity = 0;        // bytes, > 0; rounded up to the granularity
  uint64_t block_size = 1 * kMiB;  // largest transfer; a multiple of the granularity
  uint64_t granularity = 4096;  // O_DIRECT alignment: a power of two >= 512
  bool direct = true;           // O_DIRECT; false opens buffered (tests, tmpfs)
  IoEngineOptions io;           // engine kind, queue depth (default 64), test seams
};

struct NvmeTierStats {
  IoEngineStats engine;
  uint64_t direct_bytes = 0;       // moved straight from/to the caller's buffer
  uint64_t bounced_bytes = 0;      // moved through a bounce buffer
  uint64_t edge_blocks_rewritten = 0;  // read-modify-writes of partial blocks
};

class NvmeTier : public Tier {
 public:
  static Result<std::unique_ptr<NvmeTier>> Create(const NvmeTierOptions& options);
  ~NvmeTier() override;

  const std::string& path() const { return path_; }
  bool direct_io() const { return direct_; }
  IoEngineKind engine_kind() const { return engine_->kind(); }
  uint64_t block_size() const { return block_size_; }
  uint32_t queue_depth() const { return engine_->queue_depth(); }
  NvmeTierStats nvme_stats() const;

  Status UnregisterBuffer(void* buffer) { return engine_->UnregisterBuffer(buffer); }

 protected:
  Status ReadImpl(uint64_t address, void* dst, uint64_t bytes) override;
  Status WriteImpl(uint64_t address, const void* src, uint64_t bytes) override;
  void ReadAsyncImpl(uint64_t address, void* dst, uint64_t bytes, IoCallback done) override;
  void WriteAsyncImpl(uint64_t address, const void* src, uint64_t bytes,
                      IoCallback done) override;
  Status FlushImpl() override;
  Status RegisterBufferImpl(void* buffer, uint64_t bytes) override;

 private:
  struct Job;
  class BouncePool;

  NvmeTier(const NvmeTierOptions& options, uint64_t capacity, int fd, bool direct,
           std::unique_ptr<IoEngine> engine, int file);

  std::unique_ptr<Job> Plan(IoOp op, uint64_t address, unsigned char* user, uint64_t bytes);
  // Read-modify-writes the partial edge blocks of a write, synchronously.
  Status RewriteEdges(const Job& job);
  // The next batch of the job (all direct pieces first, then one bounce
  // round); for writes, copies the caller's bytes into the bounce buffer.
  std::vector<IoRequest> NextRound(Job& job);
  // After a round: for reads, copies bounce data out to the caller.
  void FinishRound(Job& job);
  Status RunSync(Job& job);
  void RunAsync(std::shared_ptr<Job> job);

  const std::string path_;
  const int fd_;
  const bool direct_;
  const uint64_t io_align_;     // alignment of offsets, lengths and buffers for I/O
  const uint64_t block_size_;
  const uint64_t round_bytes_;  // bounce buffer size: bytes bounced per round
  std::unique_ptr<IoEngine> engine_;
  const int file_;              // the engine's handle for fd_
  std::unique_ptr<BouncePool> bounce_;
  std::array<std::mutex, 64> edge_locks_;  // striped by block number

  std::atomic<uint64_t> direct_bytes_{0}, bounced_bytes_{0}, edge_blocks_rewritten_{0};
};

}  // namespace tiercache

#endif  // TIERCACHE_TIERS_NVME_TIER_H_
