// IoUringEngine: the IoEngine over liburing, and the only code in tiercache
// that includes it.
//
// One ring per engine, sized to the queue depth. Submitters prepare SQEs
// under one mutex and call io_uring_submit once per batch (or once per
// queue-depth window of a larger batch); a completion thread reaps CQEs,
// resubmits short or EAGAIN/EINTR transfers, tops the ring up from the
// waiting queue with a single io_uring_submit, and only then runs the
// completion callbacks (outside the mutex); whatever those callbacks submit
// is gathered into one more io_uring_submit. Files are registered in a sparse
// fixed-file table and buffers in a sparse fixed-buffer table, so a transfer
// whose buffer lies in a registered one goes out as READ_FIXED/WRITE_FIXED
// without the kernel pinning pages per request. When the kernel lacks either
// table, plain descriptors and buffers are used.
//
// Thread safety: as IoEngine.
#ifndef TIERCACHE_TIERS_IO_URING_ENGINE_H_
#define TIERCACHE_TIERS_IO_URING_ENGINE_H_

#include <liburing.h>

#include <array>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "tiers/io_engine.h"

namespace tiercache {

class IoUringEngine : public IoEngine {
 public:
  // kPermissionDenied (EPERM/EACCES) or kUnsupported (ENOSYS) when the
  // kernel refuses io_uring; IoEngine::Create() falls back on those.
  static Result<std::unique_ptr<IoEngine>> Create(const IoEngineOptions& options);
  ~IoUringEngine() override;

 protected:
  void SubmitImpl(std::vector<Operation*> operations) override;
  Status RegisterFileImpl(int slot, int fd) override;
  Status RegisterBufferImpl(void* buffer, uint64_t bytes) override;
  Status UnregisterBufferImpl(void* buffer) override;

 private:
  static constexpr unsigned kBufferSlots = 64;
  // The kernel refuses to register more than 1 GiB in one slot.
  static constexpr uint64_t kMaxSlotBytes = 1ull << 30;

  struct RegisteredBuffer {
    unsigned char* base = nullptr;  // null: slot free
    uint64_t bytes = 0;
    void* owner = nullptr;          // what RegisterBuffer() was given
  };

  explicit IoUringEngine(const IoEngineOptions& options);
  // Moves waiting operations into the ring up to the queue depth and submits.
  void FillLocked();
  void PrepareLocked(Operation* op, io_uring_sqe* sqe);
  int FindBufferLocked(const unsigned char* buffer, uint64_t bytes) const;
  void ReapLoop();

  io_uring ring_;
  std::mutex mutex_;                  // guards the SQ side of ring_ and all below
  std::deque<Operation*> waiting_;    // GUARDED_BY(mutex_)
  uint32_t in_flight_ = 0;            // GUARDED_BY(mutex_)
  bool fixed_files_ = false;          // sparse file table registered
  std::array<bool, kMaxFiles> file_fixed_{};     // GUARDED_BY(mutex_)
  bool fixed_buffers_ = false;        // sparse buffer table registered
  std::array<RegisteredBuffer, kBufferSlots> buffers_;  // GUARDED_BY(mutex_)
  std::thread reaper_;
};

}  // namespace tiercache

#endif  // TIERCACHE_TIERS_IO_URING_ENGINE_H_
