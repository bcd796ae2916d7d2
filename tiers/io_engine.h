// IoEngine: the NVMe tier's one seam to the kernel's I/O interfaces.
//
// Contract
// - Submit() takes a batch of reads/writes (IoRequest) against files
//   registered with RegisterFile() and calls `done` exactly once, on an engine
//   thread, when every request of the batch has finished; the Status is the
//   first failure or ok. Buffers must stay valid until then. With O_DIRECT
//   files, buffer addresses, offsets and lengths must satisfy the file's
//   alignment; the engine does not bounce (the NVMe tier does).
// - At most queue_depth() transfers are in the kernel at once; the rest wait
//   in the engine, so a batch may be arbitrarily large.
// - A transfer that comes back short is resubmitted for the remainder; one
//   that fails with EAGAIN or EINTR is resubmitted as is. End of file before
//   the request is satisfied, or any other error, fails the request with
//   kIoError naming the offset.
// - Execute() is Submit() plus a wait. Called on one of the engine's own
//   threads (from inside a completion callback) it runs the batch inline
//   with pread/pwrite instead of waiting, so it can never deadlock.
// - Two implementations: IoUringEngine (liburing; the only user of it) and
//   ThreadPoolEngine (pread/pwrite workers). Create() picks io_uring unless
//   the options or TIERCACHE_NVME_ENGINE=threads say otherwise; when the
//   kernel refuses io_uring (EPERM, EACCES, ENOSYS: seccomp or
//   kernel.io_uring_disabled) the thread pool takes over and the fallback is
//   recorded as "nvme.io_engine".
// - Destroying an engine waits for every submitted batch to complete.
//
// Thread safety: every public method may be called concurrently from any
// thread, including from inside a completion callback.
#ifndef TIERCACHE_TIERS_IO_ENGINE_H_
#define TIERCACHE_TIERS_IO_ENGINE_H_

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "common/fault_injector.h"
#include "common/status.h"

namespace tiercache {

enum class IoOp : uint8_t { kRead, kWrite };
enum class IoEngineKind { kAuto, kUring, kThreads };

const char* IoEngineKindName(IoEngineKind kind);  // "auto", "uring", "threads"
// "uring" / "io_uring", "threads" / "thread_pool", "auto" or "" -> kAuto.
Result<IoEngineKind> ParseIoEngineKind(const char* text);

struct IoRequest {
  IoOp op = IoOp::kRead;
  int file = 0;            // a handle from RegisterFile()
  void* buffer = nullptr;  // for writes the engine only reads it
  uint64_t offset = 0;     // byte offset in the file
  uint64_t bytes = 0;      // > 0
};

struct IoEngineOptions {
  IoEngineKind kind = IoEngineKind::kAuto;  // kAuto consults TIERCACHE_NVME_ENGINE
  uint32_t queue_depth = 64;                // transfers in the kernel at once, >= 1
  uint32_t threads = 0;                     // thread pool workers; 0: min(queue_depth, 32)

  // Test seams, off by default. Each transfer is cut to at most this many
  // bytes, which exercises the short-transfer path exactly as a short read
  // from the kernel does.
  uint64_t max_transfer_bytes = 0;
  // The first N transfer results are replaced by -EAGAIN / -EINTR
  // (alternating), which exercises the retry path.
  uint32_t inject_transient_errors = 0;
  // Consulted once, at Create(), for FaultSite::kIoUringSetup: a kRefuse
  // there is handled exactly as the kernel refusing io_uring (the fallback).
  FaultInjector* faults = nullptr;
};

struct IoEngineStats {
  uint64_t batches = 0;           // Submit()/Execute() calls
  uint64_t requests = 0;          // IoRequests completed (ok or not)
  uint64_t failed_requests = 0;
  uint64_t transfers = 0;         // syscalls or SQEs issued, retries included
  uint64_t kernel_submits = 0;    // io_uring_submit calls (uring only)
  uint64_t short_transfers = 0;   // remainders resubmitted
  uint64_t retries = 0;           // EAGAIN/EINTR resubmissions
  uint64_t fixed_buffer_transfers = 0;
  uint64_t fixed_file_transfers = 0;
  uint64_t inline_batches = 0;    // Execute() run inline on an engine thread
  uint64_t bytes_read = 0;
  uint64_t bytes_written = 0;
};

using IoDone = std::function<void(Status)>;

class IoEngine {
 public:
  static constexpr int kMaxFiles = 256;  // a sharded checkpoint opens one per shard

  // See the contract for how the kind is chosen. kInvalidArgument for a
  // queue depth of 0 or an unknown TIERCACHE_NVME_ENGINE value.
  static Result<std::unique_ptr<IoEngine>> Create(const IoEngineOptions& options);

  virtual ~IoEngine();
  IoEngine(const IoEngine&) = delete;
  IoEngine& operator=(const IoEngine&) = delete;

  IoEngineKind kind() const { return kind_; }
  const char* name() const { return IoEngineKindName(kind_); }
  uint32_t queue_depth() const { return options_.queue_depth; }

  // Makes `fd` addressable by requests; returns its handle. The engine does
  // not own or close it. kOutOfSpace past kMaxFiles files.
  Result<int> RegisterFile(int fd);
  // Registers [buffer, buffer + bytes) for fixed-buffer I/O (io_uring); a
  // hint the thread pool ignores. REQUIRES: the memory stays mapped until
  // UnregisterBuffer() or the engine's destruction, because the kernel keeps
  // the pages it pinned. kUnavailable when the kernel refuses.
  Status RegisterBuffer(void* buffer, uint64_t bytes);
  Status UnregisterBuffer(void* buffer);

  void Submit(std::vector<IoRequest> batch, IoDone done);
  Status Execute(std::vector<IoRequest> batch);

  IoEngineStats stats() const;

 protected:
  struct Batch;
  // One request in flight: the engine's unit of work.
  struct Operation {
    IoRequest request;
    uint64_t done_bytes = 0;
    uint32_t attempts = 0;
    int fixed_buffer = -1;  // io_uring registered-buffer index, -1 if none
    Status status;
    Batch* batch = nullptr;
  };
  struct Batch {
    std::vector<Operation> operations;
    std::atomic<size_t> outstanding{0};
    IoDone done;
  };
  // The next transfer of an operation: what is left, cut by the test seam.
  struct Transfer {
    unsigned char* buffer;
    uint64_t offset;
    uint64_t bytes;
  };
  enum class Next { kResubmit, kFinished };

  IoEngine(IoEngineKind kind, const IoEngineOptions& options);

  // Hands operations (all of one batch) to the implementation.
  virtual void SubmitImpl(std::vector<Operation*> operations) = 0;
  virtual Status RegisterFileImpl(int slot, int fd) { return Status::Ok(); }
  virtual Status RegisterBufferImpl(void* buffer, uint64_t bytes) { return Status::Ok(); }
  virtual Status UnregisterBufferImpl(void* buffer) { return Status::Ok(); }

  Transfer NextTransfer(const Operation& op) const;
  // Accounts the result of one transfer (bytes moved or -errno) and says
  // whether the operation needs another one.
  Next OnTransferDone(Operation& op, int64_t result);
  // Runs one transfer with pread/pwrite; returns bytes or -errno.
  int64_t TransferSync(const Operation& op, const Transfer& transfer) const;
  // Calls the batch's callback when this was its last operation.
  void Complete(Operation* op);

  int FileDescriptor(int handle) const { return files_[handle].load(std::memory_order_acquire); }
  // Marks the calling thread as one of this engine's (see Execute()).
  void EnterEngineThread() const;
  // Blocks until every submitted batch has called back. Implementations call
  // it first thing in their destructors, while their threads still run.
  void WaitForIdle();

  std::atomic<uint64_t> kernel_submits_{0}, fixed_buffer_transfers_{0},
      fixed_file_transfers_{0};

 private:
  void RunInline(Batch* batch);

  const IoEngineKind kind_;
  const IoEngineOptions options_;
  std::array<std::atomic<int>, kMaxFiles> files_;
  std::mutex files_mutex_;  // serialises RegisterFile
  int file_count_ = 0;      // GUARDED_BY(files_mutex_)

  std::mutex idle_mutex_;
  std::condition_variable idle_cv_;
  uint64_t outstanding_batches_ = 0;  // GUARDED_BY(idle_mutex_)

  std::atomic<uint32_t> injected_errors_{0};
  std::atomic<uint64_t> batches_{0}, requests_{0}, failed_requests_{0}, transfers_{0},
      short_transfers_{0}, retries_{0}, inline_batches_{0}, bytes_read_{0}, bytes_written_{0};
};

}  // namespace tiercache

#endif  // TIERCACHE_TIERS_IO_ENGINE_H_
