// The POSIX side of the PMEM tier's file: opening or creating it, checking
// free space before preallocating, growing it, and the exclusive lock that
// keeps two tiers (in one process or two) from mapping the same file.
//
// Every failure is a Status naming the path: kNotFound for a missing file or
// directory, kPermissionDenied for EACCES/EPERM/EROFS, kOutOfSpace when the
// filesystem cannot hold the requested size, kBusy when the file is locked.
// Nothing here writes into an existing file's bytes; a file this code created
// is removed again when its creation fails.
//
// Thread safety: a PmemFile is owned by one PmemTier; the functions are
// reentrant.
#ifndef TIERCACHE_TIERS_PMEM_FILE_H_
#define TIERCACHE_TIERS_PMEM_FILE_H_

#include <cstdint>
#include <memory>
#include <string>

#include "common/status.h"

namespace tiercache::pmem {

class PmemFile {
 public:
  ~PmemFile();  // closes the descriptor, which drops the lock
  PmemFile(const PmemFile&) = delete;
  PmemFile& operator=(const PmemFile&) = delete;

  // Opens `path` read-write under an exclusive flock. A missing (or empty)
  // file is created and preallocated to `create_bytes` when
  // `create_if_missing`; created() then says so and the file reads as zeros.
  // REQUIRES: create_bytes > 0 when create_if_missing.
  static Result<std::unique_ptr<PmemFile>> Open(const std::string& path, bool create_if_missing,
                                                uint64_t create_bytes);

  // Extends the file to `bytes` (preallocated, zero-filled) after checking
  // the filesystem has room. A no-op when it is already that large.
  Status Grow(uint64_t bytes);

  // Reads up to `bytes` from the start of the file; the rest of `buffer` is
  // zero-filled.
  Status ReadPrefix(void* buffer, uint64_t bytes) const;

  int fd() const { return fd_; }
  uint64_t size() const { return size_; }
  bool created() const { return created_; }
  // created() and the file did not exist before: removing it loses nothing.
  bool new_inode() const { return new_inode_; }
  const std::string& path() const { return path_; }

 private:
  PmemFile(std::string path, int fd, uint64_t size, bool new_inode)
      : path_(std::move(path)), fd_(fd), size_(size), created_(new_inode), new_inode_(new_inode) {}

  std::string path_;
  int fd_;
  uint64_t size_;
  bool created_;
  bool new_inode_;
};

// kOutOfSpace unless the filesystem holding `path` has `bytes` free for an
// unprivileged writer (statvfs f_bavail).
Status CheckFreeSpace(const std::string& path, uint64_t bytes);

}  // namespace tiercache::pmem

#endif  // TIERCACHE_TIERS_PMEM_FILE_H_
