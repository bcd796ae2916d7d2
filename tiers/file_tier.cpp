#include "tiers/file_tier.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <utility>

#include "common/log.h"

namespace tiercache {
namespace {

// The address space extents are carved from: large enough for any set of
// checkpoints, never backed by memory.
constexpr uint64_t kAddressSpace = 1ull << 50;

constexpr uint64_t AlignDown(uint64_t value, uint64_t alignment) {
  return value & ~(alignment - 1);
}

Status OpenError(int err, const std::string& name, const std::string& path) {
  const std::string what = name + ": cannot open " + path + ": " + std::strerror(err);
  switch (err) {
    case ENOENT: return Status::NotFound(what);
    case EACCES:
    case EPERM: return Status::PermissionDenied(what);
    case EISDIR: return Status::InvalidArgument(what);
    default: return Status::IoError(what);
  }
}

FileIdentity IdentityOf(const struct stat& st) {
  FileIdentity id;
  id.device = static_cast<uint64_t>(st.st_dev);
  id.inode = static_cast<uint64_t>(st.st_ino);
  id.size = static_cast<uint64_t>(st.st_size);
  id.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  return id;
}

}  // namespace

const char* FileReadModeName(FileReadMode mode) {
  switch (mode) {
    case FileReadMode::kAuto: return "auto";
    case FileReadMode::kDirect: return "direct";
    case FileReadMode::kBuffered: return "buffered";
  }
  return "unknown";
}

Result<FileReadMode> ParseFileReadMode(const char* text) {
  if (text == nullptr || *text == '\0' || std::strcmp(text, "auto") == 0) return FileReadMode::kAuto;
  if (std::strcmp(text, "direct") == 0) return FileReadMode::kDirect;
  if (std::strcmp(text, "buffered") == 0) return FileReadMode::kBuffered;
  return Status::InvalidArgument(std::string("unknown file read mode \"") + text +
                                 "\" (expected auto, direct or buffered)");
}

struct FileTier::File {
  std::string path;
  int fd = -1;         // through the page cache
  int direct_fd = -1;  // O_DIRECT; -1 when the filesystem refuses it
  int handle = -1;         // buffered_'s handle for fd
  int direct_handle = -1;  // direct_'s handle for direct_fd
  FileIdentity identity;
  void* map = nullptr;  // PROT_READ mapping, only for mincore()
  uint64_t map_bytes = 0;
};

// One piece's part of a read: bytes of a file (or zeros) for dst.
struct FileTier::Segment {
  const File* file = nullptr;  // null: zeros
  uint64_t offset = 0;
  uint64_t bytes = 0;
  unsigned char* dst = nullptr;
};

// The requests of one read, and the partial pages to trim after it.
struct FileTier::Plan {
  struct Edge {
    int handle;        // direct_'s file handle
    uint64_t page;     // aligned file offset of the page
    uint64_t from;     // first byte wanted, inside the page
    uint64_t bytes;    // bytes wanted
    unsigned char* dst;
  };
  ~Plan() { std::free(bounce); }
  std::vector<IoRequest> direct, buffered;
  std::vector<Edge> edges;
  std::vector<const File*> files;
  unsigned char* bounce = nullptr;
};

Result<std::unique_ptr<FileTier>> FileTier::Create(const FileTierOptions& options) {
  const std::string& name = options.name;
  if (!IsPowerOfTwo(options.alignment) || options.alignment < 512) {
    return Status::InvalidArgument(name + ": alignment must be a power of two >= 512");
  }
  if (options.block_size == 0 || options.block_size % options.alignment != 0 ||
      options.block_size > (1ull << 30)) {
    return Status::InvalidArgument(name + ": block size must be a multiple of " +
                                   std::to_string(options.alignment) + " up to 1 GiB");
  }
  Result<std::unique_ptr<IoEngine>> direct = IoEngine::Create(options.io);
  if (!direct.ok()) return Status(direct.status().code(), name + ": " + direct.status().message());
  IoEngineOptions pool;
  pool.kind = IoEngineKind::kThreads;
  uint32_t threads = options.buffered_threads;
  if (threads == 0) threads = std::clamp<uint32_t>(std::thread::hardware_concurrency(), 2, 16);
  pool.queue_depth = threads;
  pool.threads = threads;
  Result<std::unique_ptr<IoEngine>> buffered = IoEngine::Create(pool);
  if (!buffered.ok()) {
    return Status(buffered.status().code(), name + ": " + buffered.status().message());
  }
  return std::unique_ptr<FileTier>(
      new FileTier(options, std::move(direct).value(), std::move(buffered).value()));
}

FileTier::FileTier(const FileTierOptions& options, std::unique_ptr<IoEngine> direct,
                   std::unique_ptr<IoEngine> buffered)
    : Tier(options.name, TierKind::kFile, kAddressSpace, options.alignment),
      mode_(options.mode),
      align_(options.alignment),
      block_size_(options.block_size),
      direct_(std::move(direct)),
      buffered_(std::move(buffered)) {}

FileTier::~FileTier() {
  direct_.reset();  // wait for every request in flight
  buffered_.reset();
  for (const auto& f : files_) {
    if (pinned() && f->map != nullptr) {
      Status s = unpin_(f->map);
      if (!s.ok()) TC_LOG_WARN("%s: unpinning %s failed: %s", name().c_str(), f->path.c_str(), s.ToString().c_str());
    }
    if (f->map != nullptr) ::munmap(f->map, f->map_bytes);
    if (f->direct_fd >= 0) ::close(f->direct_fd);
    ::close(f->fd);
  }
}

Result<int> FileTier::AddFile(const std::string& path) {
  auto file = std::make_unique<File>();
  file->path = path;
  file->fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (file->fd < 0) return OpenError(errno, name(), path);
  auto fail = [&](Status status) -> Result<int> {
    if (file->map != nullptr) ::munmap(file->map, file->map_bytes);
    if (file->direct_fd >= 0) ::close(file->direct_fd);
    ::close(file->fd);
    return status;
  };
  struct stat st;
  if (::fstat(file->fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    return fail(Status::InvalidArgument(name() + ": " + path + " is not a regular file"));
  }
  file->identity = IdentityOf(st);
  if (mode_ != FileReadMode::kBuffered) {
    file->direct_fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_DIRECT);
    if (file->direct_fd < 0) {
      if (errno != EINVAL) return fail(OpenError(errno, name(), path));
      RecordFallback("file.o_direct",
                     path + ": the filesystem refuses O_DIRECT; reading through the page cache");
    }
  }
  if (file->identity.size > 0) {
    void* map = ::mmap(nullptr, file->identity.size, PROT_READ, MAP_SHARED, file->fd, 0);
    if (map != MAP_FAILED) {
      file->map = map;
      file->map_bytes = file->identity.size;
    }
  }
  (void)::posix_fadvise(file->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  std::unique_lock<std::shared_mutex> lock(mutex_);
  Result<int> handle = buffered_->RegisterFile(file->fd);
  if (!handle.ok()) return fail(Status(handle.status().code(), name() + ": " + handle.status().message()));
  file->handle = *handle;
  if (file->direct_fd >= 0) {
    Result<int> direct = direct_->RegisterFile(file->direct_fd);
    if (!direct.ok()) {
      return fail(Status(direct.status().code(), name() + ": " + direct.status().message()));
    }
    file->direct_handle = *direct;
  }
  files_.push_back(std::move(file));
  return static_cast<int>(files_.size() - 1);
}

size_t FileTier::file_count() const {
  std::shared_lock<std::shared_mutex> lock(mutex_);
  return files_.size();
}

std::string FileTier::file_path(int file) const {
  std::shared_lock<std::shared_mutex> lock(mutex_);
  return files_.at(static_cast<size_t>(file))->path;
}

FileIdentity FileTier::file_identity(int file) const {
  std::shared_lock<std::shared_mutex> lock(mutex_);
  return files_.at(static_cast<size_t>(file))->identity;
}

bool FileTier::file_direct(int file) const {
  std::shared_lock<std::shared_mutex> lock(mutex_);
  return files_.at(static_cast<size_t>(file))->direct_fd >= 0;
}

Status FileTier::CheckFile(int file) const {
  const File* f = nullptr;
  {
    std::shared_lock<std::shared_mutex> lock(mutex_);
    if (file < 0 || static_cast<size_t>(file) >= files_.size()) {
      return Status::InvalidArgument(name() + ": no file " + std::to_string(file));
    }
    f = files_[static_cast<size_t>(file)].get();
  }
  return CheckIdentity(*f);
}

Status FileTier::CheckIdentity(const File& file) const {
  struct stat st;
  if (::fstat(file.fd, &st) != 0) {
    return Status::IoError(name() + ": cannot stat " + file.path + ": " + std::strerror(errno));
  }
  const FileIdentity now = IdentityOf(st);
  if (now == file.identity) return Status::Ok();
  changed_files_.fetch_add(1, std::memory_order_relaxed);
  std::string what = now.size != file.identity.size
                         ? "size " + std::to_string(file.identity.size) + " -> " +
                               std::to_string(now.size) + " bytes"
                         : std::string("modification time changed");
  return Status::Corruption(name() + ": " + file.path + " changed since it was registered (" +
                            what + "); its blocks cannot be read");
}

Result<Extent> FileTier::Map(const std::vector<FilePiece>& pieces) {
  if (pieces.empty()) return Status::InvalidArgument(name() + ": a mapping needs pieces");
  Mapping mapping;
  {
    std::shared_lock<std::shared_mutex> lock(mutex_);
    for (const FilePiece& p : pieces) {
      if (p.bytes == 0) return Status::InvalidArgument(name() + ": an empty piece");
      if (p.file != FilePiece::kZeros) {
        if (p.file < 0 || static_cast<size_t>(p.file) >= files_.size()) {
          return Status::InvalidArgument(name() + ": no file " + std::to_string(p.file));
        }
        const File& f = *files_[static_cast<size_t>(p.file)];
        if (p.offset > f.identity.size || p.bytes > f.identity.size - p.offset) {
          return Status::InvalidArgument(name() + ": range [" + std::to_string(p.offset) + ", +" +
                                         std::to_string(p.bytes) + ") lies past the end of " +
                                         f.path + " (" + std::to_string(f.identity.size) +
                                         " bytes)");
        }
      }
      if (p.bytes > kAddressSpace - mapping.length) {
        return Status::InvalidArgument(name() + ": mapping too large");
      }
      mapping.starts.push_back(mapping.length);
      mapping.length += p.bytes;
    }
  }
  mapping.pieces = pieces;
  TC_ASSIGN_OR_RETURN(Extent extent, Allocate(mapping.length));
  std::unique_lock<std::shared_mutex> lock(mutex_);
  mappings_[extent.offset] = std::move(mapping);
  return extent;
}

Status FileTier::Unmap(const Extent& extent) {
  {
    std::unique_lock<std::shared_mutex> lock(mutex_);
    auto it = mappings_.find(extent.offset);
    if (it == mappings_.end() || it->second.length != extent.length) {
      return Status::InvalidArgument(name() + ": no mapping at " + std::to_string(extent.offset));
    }
    mappings_.erase(it);
  }
  return Free(extent);
}

Status FileTier::Segments(uint64_t address, unsigned char* dst, uint64_t bytes,
                          std::vector<Segment>* out) const {
  std::shared_lock<std::shared_mutex> lock(mutex_);
  auto it = mappings_.upper_bound(address);
  if (it == mappings_.begin()) return Status::InvalidArgument(name() + ": address not mapped");
  --it;
  const Mapping& m = it->second;
  const uint64_t begin = address - it->first, end = begin + bytes;
  if (end > m.length) return Status::InvalidArgument(name() + ": read past its mapping");
  // The first piece that ends after `begin`.
  size_t i = static_cast<size_t>(std::upper_bound(m.starts.begin(), m.starts.end(), begin) -
                                 m.starts.begin()) - 1;
  for (; i < m.pieces.size() && m.starts[i] < end; ++i) {
    const FilePiece& p = m.pieces[i];
    const uint64_t lo = std::max(begin, m.starts[i]);
    const uint64_t hi = std::min(end, m.starts[i] + p.bytes);
    Segment s;
    s.file = p.file == FilePiece::kZeros ? nullptr : files_[static_cast<size_t>(p.file)].get();
    s.offset = p.offset + (lo - m.starts[i]);
    s.bytes = hi - lo;
    s.dst = dst == nullptr ? nullptr : dst + (lo - begin);  // HostRuns has no destination
    out->push_back(s);
  }
  return Status::Ok();
}

bool FileTier::Resident(const File& file, uint64_t offset, uint64_t bytes) const {
  if (file.map == nullptr) return false;
  static const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  const uint64_t start = AlignDown(offset, page);
  const uint64_t length = AlignUp(offset + bytes, page) - start;
  std::vector<unsigned char> pages(length / page);
  if (::mincore(static_cast<unsigned char*>(file.map) + start, length, pages.data()) != 0) {
    return false;
  }
  return std::all_of(pages.begin(), pages.end(), [](unsigned char v) { return (v & 1) != 0; });
}

void FileTier::PlanSegment(const Segment& s, Plan* plan) {
  if (s.file == nullptr) {
    std::memset(s.dst, 0, s.bytes);
    zero_bytes_.fetch_add(s.bytes, std::memory_order_relaxed);
    return;
  }
  const File& f = *s.file;
  if (std::find(plan->files.begin(), plan->files.end(), &f) == plan->files.end()) {
    plan->files.push_back(&f);
  }
  const uint64_t end = s.offset + s.bytes;
  auto buffered = [&](uint64_t at, uint64_t n) {
    plan->buffered.push_back(IoRequest{IoOp::kRead, f.handle, s.dst + (at - s.offset), at, n});
    cached_bytes_.fetch_add(n, std::memory_order_relaxed);
  };
  for (uint64_t at = s.offset; at < end;) {
    // Pieces end on block boundaries of the file, so that the next starts aligned.
    const uint64_t n = std::min(end, AlignDown(at, align_) + block_size_) - at;
    unsigned char* dst = s.dst + (at - s.offset);
    const bool congruent = (reinterpret_cast<uintptr_t>(dst) & (align_ - 1)) == (at & (align_ - 1));
    if (mode_ == FileReadMode::kBuffered || f.direct_fd < 0 || !congruent ||
        (mode_ == FileReadMode::kAuto && Resident(f, at, n))) {
      buffered(at, n);
      at += n;
      continue;
    }
    uint64_t lo = at, hi = at + n;
    // A last page cut by the end of the file cannot be read with O_DIRECT
    // (the read comes back short).
    const uint64_t eof_page = AlignDown(f.identity.size, align_);
    if (hi > eof_page) {
      const uint64_t tail = std::max(lo, eof_page);
      buffered(tail, hi - tail);
      hi = tail;
    }
    if (lo < hi && lo % align_ != 0) {
      const uint64_t page = AlignDown(lo, align_);
      const uint64_t upto = std::min(hi, page + align_);
      plan->edges.push_back({f.direct_handle, page, lo - page, upto - lo, s.dst + (lo - s.offset)});
      lo = upto;
    }
    if (lo < hi && hi % align_ != 0) {
      const uint64_t page = AlignDown(hi, align_);
      plan->edges.push_back({f.direct_handle, page, 0, hi - page, s.dst + (page - s.offset)});
      hi = page;
    }
    if (lo < hi) {
      plan->direct.push_back(
          IoRequest{IoOp::kRead, f.direct_handle, s.dst + (lo - s.offset), lo, hi - lo});
      direct_bytes_.fetch_add(hi - lo, std::memory_order_relaxed);
    }
    at += n;
  }
}

Status FileTier::PrepareEdges(Plan* plan) {
  if (plan->edges.empty()) return Status::Ok();
  plan->bounce = static_cast<unsigned char*>(std::aligned_alloc(align_, align_ * plan->edges.size()));
  if (plan->bounce == nullptr) return Status::OutOfMemory(name() + ": no memory for edge pages");
  for (size_t i = 0; i < plan->edges.size(); ++i) {
    const Plan::Edge& e = plan->edges[i];
    plan->direct.push_back(IoRequest{IoOp::kRead, e.handle, plan->bounce + i * align_, e.page, align_});
    edge_bytes_.fetch_add(e.bytes, std::memory_order_relaxed);
  }
  return Status::Ok();
}

void FileTier::FinishEdges(const Plan& plan) {
  for (size_t i = 0; i < plan.edges.size(); ++i) {
    const Plan::Edge& e = plan.edges[i];
    std::memcpy(e.dst, plan.bounce + i * align_ + e.from, e.bytes);
  }
}

Status FileTier::NameFiles(const Plan& plan, const Status& status) const {
  std::string files;
  for (const File* f : plan.files) files += (files.empty() ? "" : ", ") + f->path;
  return Status(status.code(), name() + " (" + files + "): " + status.message());
}

Status FileTier::PlanRead(uint64_t address, unsigned char* dst, uint64_t bytes, Plan* plan) {
  std::vector<Segment> segments;
  TC_RETURN_IF_ERROR(Segments(address, dst, bytes, &segments));
  for (const Segment& s : segments) {
    if (s.file != nullptr) TC_RETURN_IF_ERROR(CheckIdentity(*s.file));
  }
  for (const Segment& s : segments) PlanSegment(s, plan);
  return Status::Ok();
}

Status FileTier::ReadImpl(uint64_t address, void* dst, uint64_t bytes) {
  // The asynchronous read, waited for.
  std::mutex mutex;
  std::condition_variable cv;
  bool finished = false;
  Status result;
  ReadAsyncImpl(address, dst, bytes, [&](Status status) {
    std::lock_guard<std::mutex> lock(mutex);
    result = std::move(status);
    finished = true;
    cv.notify_all();
  });
  std::unique_lock<std::mutex> lock(mutex);
  cv.wait(lock, [&] { return finished; });
  return result;
}

void FileTier::ReadAsyncImpl(uint64_t address, void* dst, uint64_t bytes, IoCallback done) {
  struct Pending {
    Plan plan;
    std::mutex mutex;
    int left = 0;
    Status first;
    IoCallback done;
  };
  auto p = std::make_shared<Pending>();
  p->done = std::move(done);
  Status status = PlanRead(address, static_cast<unsigned char*>(dst), bytes, &p->plan);
  if (status.ok()) status = PrepareEdges(&p->plan);
  if (!status.ok()) return p->done(p->plan.files.empty() ? status : NameFiles(p->plan, status));
  const bool direct = !p->plan.direct.empty(), buffered = !p->plan.buffered.empty();
  p->left = (direct ? 1 : 0) + (buffered ? 1 : 0);
  if (p->left == 0) return p->done(Status::Ok());  // zeros only: written while planning
  auto one_done = [this, p](Status s) {
    {
      std::lock_guard<std::mutex> lock(p->mutex);
      if (p->first.ok() && !s.ok()) p->first = std::move(s);
      if (--p->left > 0) return;
    }
    if (p->first.ok()) FinishEdges(p->plan);
    p->done(p->first.ok() ? Status::Ok() : NameFiles(p->plan, p->first));
  };
  // Both batches are moved out before either is submitted: a completion may
  // run inline.
  std::vector<IoRequest> direct_batch = std::move(p->plan.direct), buffered_batch = std::move(p->plan.buffered);
  if (direct) direct_->Submit(std::move(direct_batch), one_done);
  if (buffered) buffered_->Submit(std::move(buffered_batch), one_done);
}

Status FileTier::WriteImpl(uint64_t, const void*, uint64_t) {
  return Status::PermissionDenied(name() + ": checkpoint files are read-only");
}

Status FileTier::RegisterBufferImpl(void* buffer, uint64_t bytes) {
  return direct_->RegisterBuffer(buffer, bytes);
}

bool FileTier::PinResidentFiles(PinFunction pin, UnpinFunction unpin) {
  std::unique_lock<std::shared_mutex> lock(mutex_);
  if (pinned() || !pin || !unpin || files_.empty()) return false;
  uint64_t total = 0;
  for (const auto& f : files_) {
    if (f->identity.size == 0) continue;
    if (f->map == nullptr || !Resident(*f, 0, f->identity.size)) return false;
    total += f->identity.size;
  }
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
  const uint64_t memory = pages > 0 && page > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page) : 0;
  if (total > memory / 2) {
    TC_LOG_INFO("%s: %s of files in the page cache is over half the memory: not pinned", name().c_str(),
                FormatBytes(total).c_str());
    return false;
  }
  const auto start = std::chrono::steady_clock::now();
  for (size_t i = 0; i < files_.size(); ++i) {
    const File& f = *files_[i];
    if (f.map == nullptr) continue;
    Status s = pin(f.map, f.map_bytes);
    if (s.ok()) continue;
    for (size_t j = 0; j < i; ++j) {
      if (files_[j]->map != nullptr) (void)unpin(files_[j]->map);
    }
    TC_LOG_INFO("%s: the page cache of %s cannot be pinned for DMA (%s): reading through the staging ring",
                name().c_str(), f.path.c_str(), s.ToString().c_str());
    return false;
  }
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  TC_LOG_INFO("%s: pinned %s of page cache in %zu file(s) for DMA in %.1f ms", name().c_str(),
              FormatBytes(total).c_str(), files_.size(), ms);
  unpin_ = std::move(unpin);
  pinned_bytes_ = total;
  pinned_.store(true, std::memory_order_release);
  return true;
}

Status FileTier::HostRunsImpl(uint64_t address, uint64_t bytes, std::vector<HostRun>* runs) const {
  if (!pinned()) return Status::Unavailable(name() + ": its files are not pinned in the page cache");
  std::vector<Segment> segments;
  TC_RETURN_IF_ERROR(Segments(address, nullptr, bytes, &segments));
  std::vector<const File*> checked;
  uint64_t mapped = 0;
  for (const Segment& s : segments) {
    if (s.file == nullptr) {
      runs->push_back({nullptr, s.bytes});
      continue;
    }
    if (std::find(checked.begin(), checked.end(), s.file) == checked.end()) {
      TC_RETURN_IF_ERROR(CheckIdentity(*s.file));
      checked.push_back(s.file);
    }
    runs->push_back({static_cast<const unsigned char*>(s.file->map) + s.offset, s.bytes});
    mapped += s.bytes;
  }
  mapped_bytes_.fetch_add(mapped, std::memory_order_relaxed);
  return Status::Ok();
}

FileTierStats FileTier::file_stats() const {
  FileTierStats s;
  s.direct_engine = direct_->stats();
  s.buffered_engine = buffered_->stats();
  s.direct_bytes = direct_bytes_.load(std::memory_order_relaxed);
  s.edge_bytes = edge_bytes_.load(std::memory_order_relaxed);
  s.cached_bytes = cached_bytes_.load(std::memory_order_relaxed);
  s.zero_bytes = zero_bytes_.load(std::memory_order_relaxed);
  s.changed_files = changed_files_.load(std::memory_order_relaxed);
  s.pinned_bytes = pinned() ? pinned_bytes_ : 0;
  s.mapped_bytes = mapped_bytes_.load(std::memory_order_relaxed);
  return s;
}

}  // namespace tiercache
