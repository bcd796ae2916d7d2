#include "tiers/nvme_tier.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <utility>

#include "common/log.h"

namespace tiercache {
namespace {

constexpr uint64_t AlignDown(uint64_t value, uint64_t alignment) {
  return value & ~(alignment - 1);
}

bool IsAligned(const void* p, uint64_t alignment) {
  return (reinterpret_cast<uintptr_t>(p) & (alignment - 1)) == 0;
}

// A round of bounced I/O moves at most this much, so a huge unaligned
// request needs a bounded amount of bounce memory.
constexpr uint64_t kMaxRoundBytes = 8 * kMiB;
// Bounce buffers kept for reuse, and how many of them get registered with
// the engine as fixed buffers.
constexpr size_t kCachedBounceBuffers = 4;
constexpr size_t kRegisteredBounceBuffers = 2;

Status OpenError(int err, const std::string& name, const std::string& path) {
  const std::string what = name + ": cannot open " + path + ": " + std::strerror(err);
  switch (err) {
    case ENOENT: return Status::NotFound(what);
    case EACCES:
    case EPERM:
    case EROFS: return Status::PermissionDenied(what);
    case EISDIR: return Status::InvalidArgument(what);
    default: return Status::IoError(what);
  }
}

// Moves exactly `bytes` with blocking syscalls (edge read-modify-writes).
Status FullTransfer(int fd, IoOp op, unsigned char* buffer, uint64_t bytes, uint64_t offset) {
  uint64_t done = 0;
  while (done < bytes) {
    const ssize_t n = op == IoOp::kRead
                          ? ::pread(fd, buffer + done, bytes - done, offset + done)
                          : ::pwrite(fd, buffer + done, bytes - done, offset + done);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) {
      return Status::IoError(std::string(op == IoOp::kRead ? "read" : "write") +
                             " of the edge block at offset " + std::to_string(offset) +
                             (n == 0 ? " hit the end of file" : std::string(" failed: ") +
                                                                    std::strerror(errno)));
    }
    done += static_cast<uint64_t>(n);
  }
  return Status::Ok();
}

}  // namespace

// Aligned buffers for bounced I/O, recycled because allocating and faulting
// in megabytes per request would cost more than the copy.
class NvmeTier::BouncePool {
 public:
  BouncePool(uint64_t bytes, uint64_t alignment, IoEngine* engine)
      : bytes_(bytes), alignment_(alignment), engine_(engine) {}
  ~BouncePool() {
    for (unsigned char* b : free_) std::free(b);
  }

  uint64_t bytes() const { return bytes_; }

  // nullptr when the host is out of memory.
  unsigned char* Acquire() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!free_.empty()) {
      unsigned char* b = free_.back();
      free_.pop_back();
      return b;
    }
    auto* b = static_cast<unsigned char*>(std::aligned_alloc(alignment_, bytes_));
    if (b != nullptr && registered_.size() < kRegisteredBounceBuffers &&
        engine_->RegisterBuffer(b, bytes_).ok()) {
      registered_.push_back(b);
    }
    return b;
  }

  void Release(unsigned char* b) {
    std::lock_guard<std::mutex> lock(mutex_);
    // Registered buffers are never freed: the kernel holds their pages.
    if (free_.size() < kCachedBounceBuffers ||
        std::find(registered_.begin(), registered_.end(), b) != registered_.end()) {
      free_.push_back(b);
    } else {
      std::free(b);
    }
  }

 private:
  const uint64_t bytes_;
  const uint64_t alignment_;
  IoEngine* const engine_;
  std::mutex mutex_;
  std::vector<unsigned char*> free_;        // GUARDED_BY(mutex_)
  std::vector<unsigned char*> registered_;  // GUARDED_BY(mutex_)
};

// One caller request, planned into direct transfers and bounced ranges.
struct NvmeTier::Job {
  struct Range {
    uint64_t begin, end;  // aligned file offsets
  };
  struct BouncePiece {
    uint64_t file_offset, bytes, bounce_offset;
  };
  static constexpr uint64_t kNoBlock = ~0ull;

  ~Job() {
    if (buffer != nullptr) pool->Release(buffer);
  }
  bool HasRound() const { return !direct.empty() || next_range < bounced.size(); }

  IoOp op = IoOp::kRead;
  uint64_t begin = 0, end = 0;  // the caller's file range
  unsigned char* user = nullptr;  // user[0] is the byte at file offset `begin`
  IoCallback done;
  std::vector<IoRequest> direct;  // all go out in the first round
  std::vector<Range> bounced;
  size_t next_range = 0;
  uint64_t next_offset = 0;  // within bounced[next_range]
  std::vector<BouncePiece> round;
  BouncePool* pool = nullptr;
  unsigned char* buffer = nullptr;
  uint64_t edge_blocks[2] = {kNoBlock, kNoBlock};  // writes: partial blocks
};

Result<std::unique_ptr<NvmeTier>> NvmeTier::Create(const NvmeTierOptions& options) {
  const std::string& name = options.name;
  if (options.path.empty()) return Status::InvalidArgument(name + ": no file path given");
  if (options.capacity == 0) return Status::InvalidArgument(name + ": capacity of 0 bytes");
  if (!IsPowerOfTwo(options.granularity) || options.granularity < 512) {
    return Status::InvalidArgument(name + ": granularity must be a power of two >= 512");
  }
  if (options.block_size == 0 || options.block_size % options.granularity != 0 ||
      options.block_size > (1ull << 30)) {
    return Status::InvalidArgument(name + ": block size must be a multiple of " +
                                   std::to_string(options.granularity) + " up to 1 GiB");
  }
  const std::filesystem::path path(options.path);
  std::error_code ec;
  const std::filesystem::path dir = path.has_parent_path() ? path.parent_path() : ".";
  if (!std::filesystem::is_directory(dir, ec)) {
    return Status::NotFound(name + ": directory " + dir.string() + " of " + options.path +
                            " does not exist");
  }
  struct stat before;
  const bool existed = ::stat(options.path.c_str(), &before) == 0;
  bool direct = options.direct;
  const int flags = O_RDWR | O_CREAT | O_CLOEXEC;
  int fd = ::open(options.path.c_str(), flags | (direct ? O_DIRECT : 0), 0644);
  if (fd < 0 && errno == EINVAL && direct) {
    RecordFallback("nvme.o_direct", options.path +
                                        ": the filesystem refuses O_DIRECT; using buffered I/O");
    direct = false;
    fd = ::open(options.path.c_str(), flags, 0644);
  }
  if (fd < 0) return OpenError(errno, name, options.path);
  // From here on, a failure closes the file and removes it if we made it.
  auto fail = [&](Status status) -> Result<std::unique_ptr<NvmeTier>> {
    ::close(fd);
    if (!existed) ::unlink(options.path.c_str());
    return status;
  };
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    return fail(Status::InvalidArgument(name + ": " + options.path + " is not a regular file"));
  }
  const uint64_t capacity = AlignUp(options.capacity, options.granularity);
  if (static_cast<uint64_t>(st.st_size) < capacity) {
    struct statvfs vfs;
    const uint64_t have = static_cast<uint64_t>(st.st_blocks) * 512;
    const uint64_t need = capacity > have ? capacity - have : 0;
    if (::fstatvfs(fd, &vfs) == 0 &&
        need > static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize) {
      return fail(Status::OutOfSpace(
          name + ": capacity " + FormatBytes(capacity) + " for " + options.path + " exceeds the " +
          FormatBytes(static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize) + " free there"));
    }
    if (::fallocate(fd, 0, 0, static_cast<off_t>(capacity)) != 0) {
      const int err = errno;
      if (err == ENOSPC) {
        return fail(Status::OutOfSpace(name + ": no space for " + FormatBytes(capacity) +
                                       " in " + options.path));
      }
      // Filesystems without fallocate get a sparse file of the right size.
      if (err != EOPNOTSUPP || ::ftruncate(fd, static_cast<off_t>(capacity)) != 0) {
        return fail(Status::IoError(name + ": cannot size " + options.path + " to " +
                                    FormatBytes(capacity) + ": " + std::strerror(errno)));
      }
    }
  }
  Result<std::unique_ptr<IoEngine>> engine = IoEngine::Create(options.io);
  if (!engine.ok()) {
    return fail(Status(engine.status().code(), name + ": " + engine.status().message()));
  }
  Result<int> file = (*engine)->RegisterFile(fd);
  if (!file.ok()) return fail(file.status());
  return std::unique_ptr<NvmeTier>(
      new NvmeTier(options, capacity, fd, direct, std::move(engine).value(), *file));
}

NvmeTier::NvmeTier(const NvmeTierOptions& options, uint64_t capacity, int fd, bool direct,
                   std::unique_ptr<IoEngine> engine, int file)
    : Tier(options.name, TierKind::kNvme, capacity, options.granularity),
      path_(options.path),
      fd_(fd),
      direct_(direct),
      io_align_(direct ? options.granularity : 1),
      block_size_(options.block_size),
      round_bytes_(std::max(options.block_size,
                            std::min<uint64_t>(kMaxRoundBytes,
                                               options.block_size * engine->queue_depth()))),
      engine_(std::move(engine)),
      file_(file) {
  bounce_ = std::make_unique<BouncePool>(round_bytes_, std::max<uint64_t>(io_align_, 4096),
                                         engine_.get());
}

NvmeTier::~NvmeTier() {
  engine_.reset();  // waits for every request in flight, which may use bounce_
  bounce_.reset();
  ::close(fd_);
}

std::unique_ptr<NvmeTier::Job> NvmeTier::Plan(IoOp op, uint64_t address, unsigned char* user,
                                              uint64_t bytes) {
  auto job = std::make_unique<Job>();
  job->op = op;
  job->begin = address;
  job->end = address + bytes;
  job->user = user;
  job->pool = bounce_.get();
  const uint64_t g = io_align_;
  const uint64_t first = AlignDown(job->begin, g), last = AlignUp(job->end, g);
  uint64_t middle_begin = AlignUp(job->begin, g), middle_end = AlignDown(job->end, g);
  if (op == IoOp::kWrite) {
    // Partial blocks are patched in place (RewriteEdges); the rest is whole.
    if (job->begin % g != 0) job->edge_blocks[0] = first;
    if (job->end % g != 0 && middle_end != first) job->edge_blocks[1] = middle_end;
    if (job->end % g != 0 && middle_end == first) job->edge_blocks[0] = first;
  }
  const bool has_middle = middle_begin < middle_end;
  const bool direct =
      has_middle && IsAligned(user + (middle_begin - job->begin), std::max<uint64_t>(g, 1));
  if (op == IoOp::kRead) {
    if (direct) {
      if (first < middle_begin) job->bounced.push_back({first, middle_begin});
      if (middle_end < last) job->bounced.push_back({middle_end, last});
    } else {
      job->bounced.push_back({first, last});
      middle_begin = middle_end;  // nothing direct
    }
  } else if (has_middle && !direct) {
    job->bounced.push_back({middle_begin, middle_end});
    middle_begin = middle_end;
  }
  if (direct) {
    for (uint64_t at = middle_begin; at < middle_end; at += block_size_) {
      const uint64_t n = std::min(block_size_, middle_end - at);
      job->direct.push_back(IoRequest{op, file_, user + (at - job->begin), at, n});
    }
    direct_bytes_.fetch_add(middle_end - middle_begin, std::memory_order_relaxed);
  }
  return job;
}

Status NvmeTier::RewriteEdges(const Job& job) {
  if (job.edge_blocks[0] == Job::kNoBlock && job.edge_blocks[1] == Job::kNoBlock) {
    return Status::Ok();
  }
  const uint64_t g = io_align_;
  auto* block = static_cast<unsigned char*>(std::aligned_alloc(std::max<uint64_t>(g, 4096), g));
  if (block == nullptr) return Status::OutOfMemory(name() + ": no memory for an edge block");
  Status status;
  for (uint64_t at : job.edge_blocks) {
    if (at == Job::kNoBlock || !status.ok()) continue;
    // Two writers patching different bytes of one block must not undo each
    // other's bytes, so the whole read-modify-write holds the block's lock.
    std::lock_guard<std::mutex> lock(edge_locks_[(at / g) % edge_locks_.size()]);
    status = FullTransfer(fd_, IoOp::kRead, block, g, at);
    if (!status.ok()) break;
    const uint64_t lo = std::max(at, job.begin), hi = std::min(at + g, job.end);
    std::memcpy(block + (lo - at), job.user + (lo - job.begin), hi - lo);
    status = FullTransfer(fd_, IoOp::kWrite, block, g, at);
    edge_blocks_rewritten_.fetch_add(1, std::memory_order_relaxed);
  }
  std::free(block);
  if (!status.ok()) return Status(status.code(), name() + ": " + status.message());
  return status;
}

std::vector<IoRequest> NvmeTier::NextRound(Job& job) {
  std::vector<IoRequest> batch = std::move(job.direct);
  job.direct.clear();
  job.round.clear();
  if (job.next_range >= job.bounced.size()) return batch;
  if (job.buffer == nullptr) job.buffer = bounce_->Acquire();
  if (job.buffer == nullptr) return {};  // out of memory: the caller reports it
  uint64_t used = 0;
  while (used < round_bytes_ && job.next_range < job.bounced.size()) {
    const Job::Range& range = job.bounced[job.next_range];
    const uint64_t at = range.begin + job.next_offset;
    const uint64_t n = std::min({range.end - at, block_size_, round_bytes_ - used});
    // Bounced writes cover whole blocks inside the caller's range.
    if (job.op == IoOp::kWrite) std::memcpy(job.buffer + used, job.user + (at - job.begin), n);
    job.round.push_back({at, n, used});
    batch.push_back(IoRequest{job.op, file_, job.buffer + used, at, n});
    used += n;
    job.next_offset += n;
    if (at + n == range.end) {
      ++job.next_range;
      job.next_offset = 0;
    }
  }
  bounced_bytes_.fetch_add(used, std::memory_order_relaxed);
  return batch;
}

void NvmeTier::FinishRound(Job& job) {
  if (job.op != IoOp::kRead) return;
  for (const Job::BouncePiece& piece : job.round) {
    const uint64_t lo = std::max(piece.file_offset, job.begin);
    const uint64_t hi = std::min(piece.file_offset + piece.bytes, job.end);
    if (lo >= hi) continue;
    std::memcpy(job.user + (lo - job.begin),
                job.buffer + piece.bounce_offset + (lo - piece.file_offset), hi - lo);
  }
}

Status NvmeTier::RunSync(Job& job) {
  if (job.op == IoOp::kWrite) TC_RETURN_IF_ERROR(RewriteEdges(job));
  while (job.HasRound()) {
    std::vector<IoRequest> batch = NextRound(job);
    if (batch.empty()) return Status::OutOfMemory(name() + ": no memory for a bounce buffer");
    Status status = engine_->Execute(std::move(batch));
    if (!status.ok()) return Status(status.code(), name() + " (" + path_ + "): " + status.message());
    FinishRound(job);
  }
  return Status::Ok();
}

void NvmeTier::RunAsync(std::shared_ptr<Job> job) {
  std::vector<IoRequest> batch = NextRound(*job);
  if (batch.empty()) {
    IoCallback done = std::move(job->done);
    job.reset();
    done(Status::OutOfMemory(name() + ": no memory for a bounce buffer"));
    return;
  }
  engine_->Submit(std::move(batch), [this, job](Status status) mutable {
    if (status.ok()) FinishRound(*job);
    if (status.ok() && job->HasRound()) {
      RunAsync(std::move(job));
      return;
    }
    IoCallback done = std::move(job->done);
    job.reset();  // returns the bounce buffer before the caller hears back
    if (!status.ok()) status = Status(status.code(), name() + " (" + path_ + "): " + status.message());
    done(std::move(status));
  });
}

Status NvmeTier::ReadImpl(uint64_t address, void* dst, uint64_t bytes) {
  std::unique_ptr<Job> job = Plan(IoOp::kRead, address, static_cast<unsigned char*>(dst), bytes);
  return RunSync(*job);
}

Status NvmeTier::WriteImpl(uint64_t address, const void* src, uint64_t bytes) {
  // The engine never writes through a write request's buffer.
  auto* user = const_cast<unsigned char*>(static_cast<const unsigned char*>(src));
  std::unique_ptr<Job> job = Plan(IoOp::kWrite, address, user, bytes);
  return RunSync(*job);
}

void NvmeTier::ReadAsyncImpl(uint64_t address, void* dst, uint64_t bytes, IoCallback done) {
  std::shared_ptr<Job> job = Plan(IoOp::kRead, address, static_cast<unsigned char*>(dst), bytes);
  job->done = std::move(done);
  RunAsync(std::move(job));
}

void NvmeTier::WriteAsyncImpl(uint64_t address, const void* src, uint64_t bytes,
                              IoCallback done) {
  auto* user = const_cast<unsigned char*>(static_cast<const unsigned char*>(src));
  std::shared_ptr<Job> job = Plan(IoOp::kWrite, address, user, bytes);
  Status edges = RewriteEdges(*job);
  if (!edges.ok() || !job->HasRound()) {
    job.reset();
    done(std::move(edges));
    return;
  }
  job->done = std::move(done);
  RunAsync(std::move(job));
}

Status NvmeTier::FlushImpl() {
  if (::fdatasync(fd_) != 0) {
    return Status::IoError(name() + ": fdatasync of " + path_ + " failed: " +
                           std::strerror(errno));
  }
  return Status::Ok();
}

Status NvmeTier::RegisterBufferImpl(void* buffer, uint64_t bytes) {
  return engine_->RegisterBuffer(buffer, bytes);
}

NvmeTierStats NvmeTier::nvme_stats() const {
  NvmeTierStats s;
  s.engine = engine_->stats();
  s.direct_bytes = direct_bytes_.load(std::memory_order_relaxed);
  s.bounced_bytes = bounced_bytes_.load(std::memory_order_relaxed);
  s.edge_blocks_rewritten = edge_blocks_rewritten_.load(std::memory_order_relaxed);
  return s;
}

}  // namespace tiercache
