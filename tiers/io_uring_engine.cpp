#include "tiers/io_uring_engine.h"

#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <system_error>
#include <utility>

#include "common/check.h"
#include "common/log.h"

namespace tiercache {
namespace {

constexpr uint32_t kMaxQueueDepth = 4096;

// Set on a completion thread while it runs callbacks: I/O those callbacks
// submit is queued and goes out in the one io_uring_submit that follows.
thread_local const void* tls_deferring_engine = nullptr;

Status RingError(int err, const std::string& what) {
  std::string message = "io_uring: " + what + ": " + std::strerror(err);
  switch (err) {
    case EPERM:
    case EACCES: return Status::PermissionDenied(std::move(message));
    case ENOSYS: return Status::Unsupported(std::move(message));
    case ENOMEM: return Status::OutOfMemory(std::move(message));
    default: return Status::Unavailable(std::move(message));
  }
}

}  // namespace

Result<std::unique_ptr<IoEngine>> IoUringEngine::Create(const IoEngineOptions& options) {
  if (options.queue_depth == 0 || options.queue_depth > kMaxQueueDepth) {
    return Status::InvalidArgument("io_uring: queue depth must be in [1, " +
                                   std::to_string(kMaxQueueDepth) + "]");
  }
  std::unique_ptr<IoUringEngine> engine(new IoUringEngine(options));
  const int ret = io_uring_queue_init(options.queue_depth, &engine->ring_, 0);
  if (ret < 0) {
    engine->ring_.ring_fd = -1;  // nothing to tear down
    return RingError(-ret, "io_uring_queue_init(" + std::to_string(options.queue_depth) + ")");
  }
  // Fixed tables are an optimisation: kernels before 5.19 lack sparse
  // registration, and then plain descriptors and buffers do the job.
  engine->fixed_files_ = io_uring_register_files_sparse(&engine->ring_, kMaxFiles) == 0;
  engine->fixed_buffers_ = io_uring_register_buffers_sparse(&engine->ring_, kBufferSlots) == 0;
  TC_LOG_DEBUG("io_uring engine: queue depth %u, fixed files %d, fixed buffers %d",
               options.queue_depth, engine->fixed_files_, engine->fixed_buffers_);
  try {
    engine->reaper_ = std::thread([e = engine.get()] { e->ReapLoop(); });
  } catch (const std::system_error& e) {
    return Status::OutOfMemory(std::string("io_uring: cannot start the completion thread: ") +
                               e.what());
  }
  return std::unique_ptr<IoEngine>(std::move(engine));
}

IoUringEngine::IoUringEngine(const IoEngineOptions& options)
    : IoEngine(IoEngineKind::kUring, options) {
  std::memset(&ring_, 0, sizeof(ring_));
}

IoUringEngine::~IoUringEngine() {
  if (reaper_.joinable()) {
    WaitForIdle();
    {
      // A NOP without an operation tells the completion thread to stop.
      std::lock_guard<std::mutex> lock(mutex_);
      io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
      TC_CHECK(sqe != nullptr, "io_uring: no SQE free for the stop marker on an idle ring");
      io_uring_prep_nop(sqe);
      io_uring_sqe_set_data(sqe, nullptr);
      while (io_uring_submit(&ring_) == -EINTR) {
      }
    }
    reaper_.join();
  }
  if (ring_.ring_fd >= 0) io_uring_queue_exit(&ring_);
}

void IoUringEngine::SubmitImpl(std::vector<Operation*> operations) {
  std::lock_guard<std::mutex> lock(mutex_);
  waiting_.insert(waiting_.end(), operations.begin(), operations.end());
  if (tls_deferring_engine != this) FillLocked();
}

void IoUringEngine::FillLocked() {
  unsigned prepared = 0;
  while (in_flight_ < queue_depth() && !waiting_.empty()) {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (sqe == nullptr) break;  // cannot happen while in_flight_ <= ring entries
    Operation* op = waiting_.front();
    waiting_.pop_front();
    PrepareLocked(op, sqe);
    ++in_flight_;
    ++prepared;
  }
  // One io_uring_submit for everything prepared; loop only for the rare
  // partial or interrupted submission.
  while (prepared > 0) {
    const int ret = io_uring_submit(&ring_);
    kernel_submits_.fetch_add(1, std::memory_order_relaxed);
    if (ret > 0) {
      prepared -= std::min<unsigned>(prepared, static_cast<unsigned>(ret));
    } else if (ret != -EINTR && ret != -EAGAIN && ret != -EBUSY) {
      TC_FAIL(std::string("io_uring_submit failed: ") + std::strerror(-ret));
    }
  }
}

void IoUringEngine::PrepareLocked(Operation* op, io_uring_sqe* sqe) {
  const Transfer t = NextTransfer(*op);
  const int handle = op->request.file;
  const bool fixed_file = fixed_files_ && file_fixed_[handle];
  const int fd = fixed_file ? handle : FileDescriptor(handle);
  const int buffer_index = fixed_buffers_ ? FindBufferLocked(t.buffer, t.bytes) : -1;
  const auto length = static_cast<unsigned>(t.bytes);
  if (op->request.op == IoOp::kRead) {
    if (buffer_index >= 0) {
      io_uring_prep_read_fixed(sqe, fd, t.buffer, length, t.offset, buffer_index);
    } else {
      io_uring_prep_read(sqe, fd, t.buffer, length, t.offset);
    }
  } else {
    if (buffer_index >= 0) {
      io_uring_prep_write_fixed(sqe, fd, t.buffer, length, t.offset, buffer_index);
    } else {
      io_uring_prep_write(sqe, fd, t.buffer, length, t.offset);
    }
  }
  if (fixed_file) {
    sqe->flags |= IOSQE_FIXED_FILE;
    fixed_file_transfers_.fetch_add(1, std::memory_order_relaxed);
  }
  if (buffer_index >= 0) fixed_buffer_transfers_.fetch_add(1, std::memory_order_relaxed);
  io_uring_sqe_set_data(sqe, op);
}

int IoUringEngine::FindBufferLocked(const unsigned char* buffer, uint64_t bytes) const {
  for (unsigned i = 0; i < kBufferSlots; ++i) {
    const RegisteredBuffer& b = buffers_[i];
    if (b.base != nullptr && buffer >= b.base && buffer + bytes <= b.base + b.bytes) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

void IoUringEngine::ReapLoop() {
  EnterEngineThread();
  std::vector<Operation*> finished, again;
  for (;;) {
    io_uring_cqe* cqe = nullptr;
    const int ret = io_uring_wait_cqe(&ring_, &cqe);
    if (ret == -EINTR || ret == -EAGAIN) continue;
    TC_CHECK(ret == 0, std::string("io_uring_wait_cqe failed: ") + std::strerror(-ret));
    bool stop = false;
    unsigned head, seen = 0;
    // The kernel orders the submitter's writes to an operation before its
    // CQE, but only the mutex makes that visible to the memory model (and
    // to ThreadSanitizer); the lock is needed for the refill below anyway.
    std::unique_lock<std::mutex> lock(mutex_);
    io_uring_for_each_cqe(&ring_, head, cqe) {
      ++seen;
      auto* op = static_cast<Operation*>(io_uring_cqe_get_data(cqe));
      if (op == nullptr) {
        stop = true;
      } else if (OnTransferDone(*op, cqe->res) == Next::kResubmit) {
        again.push_back(op);
      } else {
        finished.push_back(op);
      }
    }
    io_uring_cq_advance(&ring_, seen);
    in_flight_ -= static_cast<uint32_t>(again.size() + finished.size());
    // Remainders go first: their batch is the one closest to done.
    waiting_.insert(waiting_.begin(), again.begin(), again.end());
    FillLocked();
    lock.unlock();
    tls_deferring_engine = this;
    for (Operation* op : finished) Complete(op);
    tls_deferring_engine = nullptr;
    if (!finished.empty()) {
      lock.lock();
      FillLocked();
      lock.unlock();
    }
    finished.clear();
    again.clear();
    if (stop) return;
  }
}

Status IoUringEngine::RegisterFileImpl(int slot, int fd) {
  if (!fixed_files_) return Status::Ok();
  const int ret = io_uring_register_files_update(&ring_, slot, &fd, 1);
  std::lock_guard<std::mutex> lock(mutex_);
  file_fixed_[slot] = ret == 1;
  if (ret != 1) TC_LOG_DEBUG("io_uring: file %d not registered: %s", fd, std::strerror(-ret));
  return Status::Ok();
}

Status IoUringEngine::RegisterBufferImpl(void* buffer, uint64_t bytes) {
  if (!fixed_buffers_) {
    return Status::Unavailable("io_uring: this kernel has no sparse fixed-buffer table");
  }
  std::lock_guard<std::mutex> lock(mutex_);
  auto* base = static_cast<unsigned char*>(buffer);
  std::vector<unsigned> taken;
  Status status;
  for (uint64_t done = 0; done < bytes && status.ok();) {
    unsigned slot = 0;
    while (slot < kBufferSlots && buffers_[slot].base != nullptr) ++slot;
    if (slot == kBufferSlots) {
      status = Status::OutOfSpace("io_uring: all " + std::to_string(kBufferSlots) +
                                  " fixed-buffer slots are in use");
      break;
    }
    const uint64_t chunk = std::min(bytes - done, kMaxSlotBytes);
    iovec iov{base + done, chunk};
    __u64 tag = 0;
    const int ret = io_uring_register_buffers_update_tag(&ring_, slot, &iov, &tag, 1);
    if (ret != 1) {
      status = RingError(ret < 0 ? -ret : EIO, "registering a buffer of " +
                                                   std::to_string(chunk) + " bytes");
      break;
    }
    buffers_[slot] = RegisteredBuffer{base + done, chunk, buffer};
    taken.push_back(slot);
    done += chunk;
  }
  if (!status.ok()) {
    for (unsigned slot : taken) {
      iovec empty{nullptr, 0};
      __u64 tag = 0;
      io_uring_register_buffers_update_tag(&ring_, slot, &empty, &tag, 1);
      buffers_[slot] = RegisteredBuffer{};
    }
  }
  return status;
}

Status IoUringEngine::UnregisterBufferImpl(void* buffer) {
  std::lock_guard<std::mutex> lock(mutex_);
  bool found = false;
  for (unsigned slot = 0; slot < kBufferSlots; ++slot) {
    if (buffers_[slot].base == nullptr || buffers_[slot].owner != buffer) continue;
    iovec empty{nullptr, 0};
    __u64 tag = 0;
    io_uring_register_buffers_update_tag(&ring_, slot, &empty, &tag, 1);
    buffers_[slot] = RegisteredBuffer{};
    found = true;
  }
  return found ? Status::Ok() : Status::NotFound("io_uring: buffer was not registered");
}

}  // namespace tiercache
