#include "tiers/io_engine.h"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>

#include "common/log.h"
#include "tiers/io_thread_pool_engine.h"
#ifdef TIERCACHE_HAVE_URING
#include "tiers/io_uring_engine.h"
#endif

namespace tiercache {
namespace {

// Which engine, if any, owns the calling thread (see Execute()).
thread_local const IoEngine* tls_engine_thread = nullptr;
// Set by Execute() on an engine thread: the batch it submits runs inline.
thread_local bool tls_run_inline = false;

// A transfer larger than this is cut (and resubmitted for the rest): the
// kernel caps one read/write near 2 GiB and io_uring lengths are 32-bit.
constexpr uint64_t kMaxTransferBytes = 1ull << 30;
// EAGAIN/EINTR more often than this for one request is not transient.
constexpr uint32_t kMaxAttempts = 1000;

}  // namespace

const char* IoEngineKindName(IoEngineKind kind) {
  switch (kind) {
    case IoEngineKind::kAuto: return "auto";
    case IoEngineKind::kUring: return "uring";
    case IoEngineKind::kThreads: return "threads";
  }
  return "unknown";
}

Result<IoEngineKind> ParseIoEngineKind(const char* text) {
  if (text == nullptr || *text == '\0' || std::strcmp(text, "auto") == 0) {
    return IoEngineKind::kAuto;
  }
  if (std::strcmp(text, "uring") == 0 || std::strcmp(text, "io_uring") == 0) {
    return IoEngineKind::kUring;
  }
  if (std::strcmp(text, "threads") == 0 || std::strcmp(text, "thread_pool") == 0) {
    return IoEngineKind::kThreads;
  }
  return Status::InvalidArgument(std::string("unknown I/O engine \"") + text +
                                 "\" (expected uring, threads or auto)");
}

Result<std::unique_ptr<IoEngine>> IoEngine::Create(const IoEngineOptions& options) {
  if (options.queue_depth == 0) {
    return Status::InvalidArgument("I/O engine: queue depth must be at least 1");
  }
  IoEngineKind kind = options.kind;
  if (kind == IoEngineKind::kAuto) {
    Result<IoEngineKind> from_env = ParseIoEngineKind(std::getenv("TIERCACHE_NVME_ENGINE"));
    if (!from_env.ok()) {
      return Status::InvalidArgument("TIERCACHE_NVME_ENGINE: " + from_env.status().message());
    }
    kind = *from_env;
  }
  if (kind == IoEngineKind::kThreads) return ThreadPoolEngine::Create(options);
#ifdef TIERCACHE_HAVE_URING
  const InjectedFault fault = options.faults == nullptr
                                  ? InjectedFault{}
                                  : options.faults->Next(FaultSite::kIoUringSetup, "");
  Result<std::unique_ptr<IoEngine>> uring =
      fault.action == FaultAction::kRefuse
          ? Result<std::unique_ptr<IoEngine>>(
                Status::PermissionDenied("io_uring_queue_init: injected refusal"))
          : IoUringEngine::Create(options);
  if (uring.ok()) return uring;
  const ErrorCode code = uring.status().code();
  // Refusals (seccomp, kernel.io_uring_disabled, a kernel without io_uring)
  // are what the thread pool is for; anything else is a real error.
  if (code != ErrorCode::kPermissionDenied && code != ErrorCode::kUnsupported) return uring;
  RecordFallback("nvme.io_engine", "io_uring refused (" + uring.status().message() +
                                       "); using the pread/pwrite thread pool");
#else
  RecordFallback("nvme.io_engine",
                 "built without liburing; using the pread/pwrite thread pool");
#endif
  return ThreadPoolEngine::Create(options);
}

IoEngine::IoEngine(IoEngineKind kind, const IoEngineOptions& options)
    : kind_(kind), options_(options) {
  for (auto& file : files_) file.store(-1, std::memory_order_relaxed);
}

IoEngine::~IoEngine() = default;

Result<int> IoEngine::RegisterFile(int fd) {
  if (fd < 0) return Status::InvalidArgument("I/O engine: bad file descriptor");
  std::lock_guard<std::mutex> lock(files_mutex_);
  if (file_count_ == kMaxFiles) {
    return Status::OutOfSpace("I/O engine: more than " + std::to_string(kMaxFiles) + " files");
  }
  const int slot = file_count_;
  TC_RETURN_IF_ERROR(RegisterFileImpl(slot, fd));
  files_[slot].store(fd, std::memory_order_release);
  ++file_count_;
  return slot;
}

Status IoEngine::RegisterBuffer(void* buffer, uint64_t bytes) {
  if (buffer == nullptr || bytes == 0) {
    return Status::InvalidArgument("I/O engine: registering an empty buffer");
  }
  return RegisterBufferImpl(buffer, bytes);
}

Status IoEngine::UnregisterBuffer(void* buffer) { return UnregisterBufferImpl(buffer); }

void IoEngine::Submit(std::vector<IoRequest> requests, IoDone done) {
  for (const IoRequest& r : requests) {
    if (r.file < 0 || r.file >= kMaxFiles || FileDescriptor(r.file) < 0 ||
        r.buffer == nullptr || r.bytes == 0) {
      done(Status::InvalidArgument("I/O engine: request with an unknown file, a null buffer "
                                   "or no bytes"));
      return;
    }
  }
  if (requests.empty()) {
    done(Status::Ok());
    return;
  }
  auto* batch = new Batch();
  batch->operations.resize(requests.size());
  batch->outstanding.store(requests.size(), std::memory_order_relaxed);
  batch->done = std::move(done);
  std::vector<Operation*> operations(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    batch->operations[i].request = requests[i];
    batch->operations[i].batch = batch;
    operations[i] = &batch->operations[i];
  }
  {
    std::lock_guard<std::mutex> lock(idle_mutex_);
    ++outstanding_batches_;
  }
  batches_.fetch_add(1, std::memory_order_relaxed);
  if (tls_engine_thread == this && tls_run_inline) {
    RunInline(batch);
    return;
  }
  SubmitImpl(std::move(operations));
}

Status IoEngine::Execute(std::vector<IoRequest> requests) {
  if (tls_engine_thread == this) {
    // Waiting here would block the thread that must deliver the completion.
    Status result;
    tls_run_inline = true;
    Submit(std::move(requests), [&result](Status s) { result = std::move(s); });
    tls_run_inline = false;
    return result;
  }
  std::mutex mutex;
  std::condition_variable cv;
  bool finished = false;
  Status result;
  Submit(std::move(requests), [&](Status s) {
    std::lock_guard<std::mutex> lock(mutex);
    result = std::move(s);
    finished = true;
    cv.notify_one();
  });
  std::unique_lock<std::mutex> lock(mutex);
  cv.wait(lock, [&] { return finished; });
  return result;
}

void IoEngine::RunInline(Batch* batch) {
  inline_batches_.fetch_add(1, std::memory_order_relaxed);
  const size_t count = batch->operations.size();
  for (size_t i = 0; i < count; ++i) {
    Operation* op = &batch->operations[i];
    while (OnTransferDone(*op, TransferSync(*op, NextTransfer(*op))) == Next::kResubmit) {
    }
    Complete(op);  // the last one frees the batch
  }
}

IoEngine::Transfer IoEngine::NextTransfer(const Operation& op) const {
  uint64_t bytes = op.request.bytes - op.done_bytes;
  if (bytes > kMaxTransferBytes) bytes = kMaxTransferBytes;
  if (options_.max_transfer_bytes != 0 && bytes > options_.max_transfer_bytes) {
    bytes = options_.max_transfer_bytes;
  }
  return Transfer{static_cast<unsigned char*>(op.request.buffer) + op.done_bytes,
                  op.request.offset + op.done_bytes, bytes};
}

IoEngine::Next IoEngine::OnTransferDone(Operation& op, int64_t result) {
  transfers_.fetch_add(1, std::memory_order_relaxed);
  if (options_.inject_transient_errors != 0 &&
      injected_errors_.load(std::memory_order_relaxed) < options_.inject_transient_errors) {
    const uint32_t n = injected_errors_.fetch_add(1, std::memory_order_relaxed);
    if (n < options_.inject_transient_errors) result = (n % 2 == 0) ? -EAGAIN : -EINTR;
  }
  const char* what = op.request.op == IoOp::kRead ? "read" : "write";
  const uint64_t at = op.request.offset + op.done_bytes;
  if (result == -EAGAIN || result == -EINTR) {
    retries_.fetch_add(1, std::memory_order_relaxed);
    if (++op.attempts < kMaxAttempts) return Next::kResubmit;
    op.status = Status::IoError(std::string(what) + " at offset " + std::to_string(at) +
                                ": still " + std::strerror(static_cast<int>(-result)) +
                                " after " + std::to_string(kMaxAttempts) + " attempts");
    return Next::kFinished;
  }
  if (result < 0) {
    op.status = Status::IoError(std::string(what) + " of " +
                                std::to_string(op.request.bytes - op.done_bytes) +
                                " bytes at offset " + std::to_string(at) + " failed: " +
                                std::strerror(static_cast<int>(-result)));
    return Next::kFinished;
  }
  if (result == 0) {
    op.status = Status::IoError(std::string(what) + " hit the end of file at offset " +
                                std::to_string(at) + " with " +
                                std::to_string(op.request.bytes - op.done_bytes) +
                                " bytes still to go");
    return Next::kFinished;
  }
  op.done_bytes += static_cast<uint64_t>(result);
  (op.request.op == IoOp::kRead ? bytes_read_ : bytes_written_)
      .fetch_add(static_cast<uint64_t>(result), std::memory_order_relaxed);
  if (op.done_bytes < op.request.bytes) {
    short_transfers_.fetch_add(1, std::memory_order_relaxed);
    return Next::kResubmit;
  }
  return Next::kFinished;
}

int64_t IoEngine::TransferSync(const Operation& op, const Transfer& t) const {
  const int fd = FileDescriptor(op.request.file);
  const ssize_t n = op.request.op == IoOp::kRead
                        ? ::pread(fd, t.buffer, t.bytes, static_cast<off_t>(t.offset))
                        : ::pwrite(fd, t.buffer, t.bytes, static_cast<off_t>(t.offset));
  return n < 0 ? -static_cast<int64_t>(errno) : static_cast<int64_t>(n);
}

void IoEngine::Complete(Operation* op) {
  requests_.fetch_add(1, std::memory_order_relaxed);
  if (!op->status.ok()) failed_requests_.fetch_add(1, std::memory_order_relaxed);
  Batch* batch = op->batch;
  if (batch->outstanding.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  Status first_error;
  for (const Operation& o : batch->operations) {
    if (!o.status.ok()) {
      first_error = o.status;
      break;
    }
  }
  {
    // The callback (and whatever it owns) is destroyed before the engine
    // counts the batch as finished: after that the owner may tear down.
    IoDone done = std::move(batch->done);
    delete batch;
    done(std::move(first_error));
  }
  std::lock_guard<std::mutex> lock(idle_mutex_);
  if (--outstanding_batches_ == 0) idle_cv_.notify_all();
}

void IoEngine::EnterEngineThread() const { tls_engine_thread = this; }

void IoEngine::WaitForIdle() {
  std::unique_lock<std::mutex> lock(idle_mutex_);
  idle_cv_.wait(lock, [this] { return outstanding_batches_ == 0; });
}

IoEngineStats IoEngine::stats() const {
  IoEngineStats s;
  s.batches = batches_.load(std::memory_order_relaxed);
  s.requests = requests_.load(std::memory_order_relaxed);
  s.failed_requests = failed_requests_.load(std::memory_order_relaxed);
  s.transfers = transfers_.load(std::memory_order_relaxed);
  s.kernel_submits = kernel_submits_.load(std::memory_order_relaxed);
  s.short_transfers = short_transfers_.load(std::memory_order_relaxed);
  s.retries = retries_.load(std::memory_order_relaxed);
  s.fixed_buffer_transfers = fixed_buffer_transfers_.load(std::memory_order_relaxed);
  s.fixed_file_transfers = fixed_file_transfers_.load(std::memory_order_relaxed);
  s.inline_batches = inline_batches_.load(std::memory_order_relaxed);
  s.bytes_read = bytes_read_.load(std::memory_order_relaxed);
  s.bytes_written = bytes_written_.load(std::memory_order_relaxed);
  return s;
}

}  // namespace tiercache
