// FileTier: a read-only tier over ranges of existing files (a checkpoint's
// shards), read in place through the NVMe tier's I/O engines. Nothing is
// copied when a range is mapped; bytes move only when they are read.
//
// Contract
// - AddFile() opens a file read-only (twice: once with O_DIRECT, once
//   through the page cache) and records its identity (device, inode, size,
//   modification time). Map() makes a list of pieces, each a range of an
//   added file or a run of zeros (padding), one extent of the tier's
//   address space; the extent reads as the pieces back to back. Ranges are
//   bounds-checked against the file's size (kInvalidArgument).
// - Read() checks the identity of every file it touches first: a file whose
//   size or modification time changed since AddFile() is kCorruption naming
//   the file (nothing is read; other files' extents are unaffected).
// - How bytes are read (FileReadMode): kDirect uses O_DIRECT for the whole
//   pages of a range (the partial first and last pages are read with
//   O_DIRECT into a small bounce buffer and trimmed to the range's bytes; a
//   last page cut by the end of the file goes through the page cache);
//   kBuffered uses the page cache; kAuto (the default) reads each piece of
//   at most block_size through the page cache when mincore() says every
//   page of it is resident (a warm file), with O_DIRECT otherwise (a cold
//   one). O_DIRECT reads go straight into the caller's buffer when it is
//   congruent with the file offset modulo the alignment (a checkpoint lays
//   its blocks out so that it is); a destination that is not is read
//   through the page cache. The O_DIRECT engine is the IoEngine's default
//   (io_uring with registered buffers and files, or the pread pool where
//   io_uring is refused); page-cache reads run on a pread pool, whose
//   threads copy from the page cache in parallel.
// - PinResidentFiles() registers the files' read-only mappings for DMA with
//   a function the caller gives (the runtime's Device::RegisterHostReadOnly)
//   when every file lies wholly in the page cache and together they take at
//   most half the machine's memory; all files or none. Once pinned,
//   HostRuns() hands out the mapped bytes of an extent (one run per piece,
//   identities checked first, as Read() does), so a device copies straight
//   from the page cache with no host copy; the pages stay resident until
//   the tier is destroyed. Read() works as before.
// - Write() is kPermissionDenied: the files are never written.
// - Fallbacks, each recorded once: "file.o_direct" when the filesystem
//   refuses O_DIRECT (all reads then go through the page cache), and
//   "nvme.io_engine" (see io_engine.h).
//
// Thread safety: as Tier. AddFile/Map/Unmap may run concurrently with reads
// of other extents; unmapping an extent that is being read is a caller error.
#ifndef TIERCACHE_TIERS_FILE_TIER_H_
#define TIERCACHE_TIERS_FILE_TIER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <shared_mutex>
#include <string>
#include <vector>

#include "common/units.h"
#include "tiers/io_engine.h"
#include "tiers/tier.h"

namespace tiercache {

// What identifies a file's contents: a change of any field means the bytes
// mapped from it may not be the ones registered.
struct FileIdentity {
  uint64_t device = 0;
  uint64_t inode = 0;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  bool operator==(const FileIdentity& o) const {
    return device == o.device && inode == o.inode && size == o.size && mtime_ns == o.mtime_ns;
  }
  bool operator!=(const FileIdentity& o) const { return !(*this == o); }
};

struct FilePiece {
  static constexpr int kZeros = -1;
  int file = kZeros;    // a handle from AddFile(), or kZeros: `bytes` of zeros
  uint64_t offset = 0;  // in the file
  uint64_t bytes = 0;   // > 0
};

enum class FileReadMode { kAuto, kDirect, kBuffered };
const char* FileReadModeName(FileReadMode mode);  // "auto", "direct", "buffered"
Result<FileReadMode> ParseFileReadMode(const char* text);

struct FileTierOptions {
  std::string name = "checkpoint";
  FileReadMode mode = FileReadMode::kAuto;
  uint64_t block_size = 1 * kMiB;  // largest transfer; a multiple of the alignment
  uint64_t alignment = 4096;       // O_DIRECT: a power of two >= 512
  uint32_t buffered_threads = 0;   // page-cache readers; 0: min(hardware threads, 16)
  IoEngineOptions io;              // the O_DIRECT engine (queue depth 64 by default)
};

struct FileTierStats {
  IoEngineStats direct_engine;
  IoEngineStats buffered_engine;
  uint64_t direct_bytes = 0;    // read with O_DIRECT straight into the caller's buffer
  uint64_t edge_bytes = 0;      // partial pages read with O_DIRECT through a bounce page
  uint64_t cached_bytes = 0;    // read through the page cache
  uint64_t zero_bytes = 0;      // padding
  uint64_t changed_files = 0;   // reads refused because a file changed
  uint64_t pinned_bytes = 0;    // page cache registered for DMA (PinResidentFiles)
  uint64_t mapped_bytes = 0;    // handed out by HostRuns for DMA (padding excluded)
};

class FileTier : public Tier {
 public:
  static Result<std::unique_ptr<FileTier>> Create(const FileTierOptions& options);
  ~FileTier() override;

  // Opens `path` read-only; returns its handle. kNotFound / kPermissionDenied
  // naming the path; kInvalidArgument for anything but a regular file.
  Result<int> AddFile(const std::string& path);
  size_t file_count() const;
  // REQUIRES: `file` came from AddFile().
  std::string file_path(int file) const;
  FileIdentity file_identity(int file) const;
  bool file_direct(int file) const;  // O_DIRECT was granted for it
  // kCorruption when the file changed since AddFile() (see the contract).
  Status CheckFile(int file) const;

  // An extent reading as `pieces` back to back. kInvalidArgument for an
  // unknown file, an empty piece or a range past the end of its file.
  Result<Extent> Map(const std::vector<FilePiece>& pieces);
  Status Unmap(const Extent& extent);

  // See the contract. `pin` registers a read-only range, `unpin` undoes it
  // (called for each pinned file when the tier is destroyed, or at once for
  // those done when a later one fails: then nothing stays pinned). False
  // when nothing was pinned (a file not wholly resident, too large, or a
  // refusal, logged once). REQUIRES: called once, after the last AddFile().
  using PinFunction = std::function<Status(const void*, size_t)>;
  using UnpinFunction = std::function<Status(void*)>;
  bool PinResidentFiles(PinFunction pin, UnpinFunction unpin);
  bool pinned() const { return pinned_.load(std::memory_order_acquire); }

  FileReadMode mode() const { return mode_; }
  uint64_t alignment() const { return align_; }
  FileTierStats file_stats() const;

 protected:
  // ReadImpl waits for ReadAsyncImpl, which plans the read and submits it
  // without waiting: `done` runs on an engine thread once every request has
  // finished (after the edge pages are trimmed into place), so several
  // reads of a file overlap.
  Status ReadImpl(uint64_t address, void* dst, uint64_t bytes) override;
  void ReadAsyncImpl(uint64_t address, void* dst, uint64_t bytes, IoCallback done) override;
  Status WriteImpl(uint64_t address, const void* src, uint64_t bytes) override;
  Status RegisterBufferImpl(void* buffer, uint64_t bytes) override;
  Status HostRunsImpl(uint64_t address, uint64_t bytes, std::vector<HostRun>* runs) const override;

 private:
  struct File;
  struct Mapping {
    uint64_t length = 0;
    std::vector<FilePiece> pieces;
    std::vector<uint64_t> starts;  // offset of each piece inside the extent
  };
  struct Segment;  // one piece's part of a read
  struct Plan;

  FileTier(const FileTierOptions& options, std::unique_ptr<IoEngine> direct,
           std::unique_ptr<IoEngine> buffered);

  // The segments of [address, address + bytes), or kInvalidArgument when
  // the range is not mapped.
  Status Segments(uint64_t address, unsigned char* dst, uint64_t bytes,
                  std::vector<Segment>* out) const;
  Status CheckIdentity(const File& file) const;
  // True when every page of [offset, offset + bytes) is in the page cache.
  bool Resident(const File& file, uint64_t offset, uint64_t bytes) const;
  void PlanSegment(const Segment& segment, Plan* plan);
  // Plans [address, address + bytes) into `plan` after checking the files'
  // identities.
  Status PlanRead(uint64_t address, unsigned char* dst, uint64_t bytes, Plan* plan);
  // Adds the edge pages' reads (into a bounce buffer) to the direct batch.
  Status PrepareEdges(Plan* plan);
  void FinishEdges(const Plan& plan);
  Status NameFiles(const Plan& plan, const Status& status) const;

  const FileReadMode mode_;
  const uint64_t align_;
  const uint64_t block_size_;
  std::unique_ptr<IoEngine> direct_;
  std::unique_ptr<IoEngine> buffered_;

  mutable std::shared_mutex mutex_;
  std::vector<std::unique_ptr<File>> files_;  // GUARDED_BY(mutex_); index = handle
  std::map<uint64_t, Mapping> mappings_;      // GUARDED_BY(mutex_); by extent offset

  std::atomic<uint64_t> direct_bytes_{0}, edge_bytes_{0}, cached_bytes_{0}, zero_bytes_{0};
  mutable std::atomic<uint64_t> changed_files_{0};
  std::atomic<bool> pinned_{false};
  uint64_t pinned_bytes_ = 0;  // set once by PinResidentFiles
  UnpinFunction unpin_;
  mutable std::atomic<uint64_t> mapped_bytes_{0};
};

}  // namespace tiercache

#endif  // TIERCACHE_TIERS_FILE_TIER_H_
