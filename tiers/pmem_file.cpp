#include "tiers/pmem_file.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "common/units.h"

namespace tiercache::pmem {
namespace {

std::string DirectoryOf(const std::string& path) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  return dir.empty() ? "." : dir;
}

// errno → Status, with EROFS counted as a refusal like EACCES: either way the
// file cannot be written and the caller must pick another path.
Status FileError(int err, const std::string& context) {
  if (err == EROFS) return Status::PermissionDenied(context + ": " + std::strerror(err));
  return Status::FromErrno(err, context);
}

// posix_fallocate returns the error rather than setting errno.
Status Preallocate(int fd, const std::string& path, uint64_t from, uint64_t to) {
  int err;
  do {
    err = posix_fallocate(fd, static_cast<off_t>(from), static_cast<off_t>(to - from));
  } while (err == EINTR);
  if (err == 0) return Status::Ok();
  const std::string context = path + ": cannot preallocate " + FormatBytes(to);
  if (err == EFBIG) return Status::OutOfSpace(context + ": " + std::strerror(err));
  return FileError(err, context);
}

Status LockExclusive(int fd, const std::string& path) {
  int rc;
  do {
    rc = flock(fd, LOCK_EX | LOCK_NB);
  } while (rc != 0 && errno == EINTR);
  if (rc == 0) return Status::Ok();
  if (errno == EWOULDBLOCK) {
    return Status::Busy(path + ": already open by another PMEM tier (the file is locked)");
  }
  return FileError(errno, path + ": cannot lock");
}

}  // namespace

Status CheckFreeSpace(const std::string& path, uint64_t bytes) {
  struct statvfs fs;
  const std::string dir = DirectoryOf(path);
  if (statvfs(dir.c_str(), &fs) != 0) return FileError(errno, dir + ": cannot query free space");
  const unsigned __int128 avail = static_cast<unsigned __int128>(fs.f_bavail) * fs.f_frsize;
  if (avail < bytes) {
    return Status::OutOfSpace(path + ": needs " + FormatBytes(bytes) + " but its filesystem has " +
                              FormatBytes(static_cast<uint64_t>(avail)) + " free");
  }
  return Status::Ok();
}

Result<std::unique_ptr<PmemFile>> PmemFile::Open(const std::string& path, bool create_if_missing,
                                                 uint64_t create_bytes) {
  if (path.empty()) return Status::InvalidArgument("pmem: the file path is empty");
  bool created = false;
  int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) {
    const std::string dir = DirectoryOf(path);
    struct stat dir_stat;
    if (stat(dir.c_str(), &dir_stat) != 0 || !S_ISDIR(dir_stat.st_mode)) {
      return Status::NotFound(path + ": directory " + dir + " does not exist");
    }
    if (!create_if_missing) return Status::NotFound(path + ": no such file (creation not asked)");
    if (create_bytes == 0) {
      return Status::InvalidArgument(path + ": a capacity is needed to create the file");
    }
    // Created empty; the free-space check and preallocation below apply, and
    // any failure removes the file again.
    fd = open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    created = fd >= 0;
    if (fd < 0 && errno == EEXIST) fd = open(path.c_str(), O_RDWR | O_CLOEXEC);  // lost a race
  }
  if (fd < 0) return FileError(errno, path + ": cannot open for reading and writing");

  std::unique_ptr<PmemFile> file(new PmemFile(path, fd, 0, created));
  Status status = LockExclusive(fd, path);
  // Someone else may have opened the file between our create and our lock;
  // then it is theirs now and stays.
  if (!status.ok()) return status;
  struct stat st;
  if (fstat(fd, &st) != 0) status = FileError(errno, path + ": cannot stat");
  if (status.ok() && !S_ISREG(st.st_mode)) {
    status = Status::Unsupported(path + ": not a regular file");
  }
  if (status.ok()) {
    file->size_ = static_cast<uint64_t>(st.st_size);
    // An empty file holds nothing to lose: initialise it like a new one.
    if (file->size_ == 0 && create_if_missing && create_bytes > 0) {
      file->created_ = true;
      status = file->Grow(create_bytes);
      // A failed preallocation may have extended the file part way; an
      // empty file it was, an empty file it stays.
      if (!status.ok() && !created) {
        [[maybe_unused]] const int rc = ftruncate(fd, 0);  // best effort; keep the first error
      }
    }
  }
  if (!status.ok()) {
    if (created) unlink(path.c_str());
    return status;
  }
  return file;
}

PmemFile::~PmemFile() {
  if (fd_ >= 0) close(fd_);
}

Status PmemFile::Grow(uint64_t bytes) {
  if (bytes <= size_) return Status::Ok();
  TC_RETURN_IF_ERROR(CheckFreeSpace(path_, bytes - size_));
  TC_RETURN_IF_ERROR(Preallocate(fd_, path_, size_, bytes));
  size_ = bytes;
  return Status::Ok();
}

Status PmemFile::ReadPrefix(void* buffer, uint64_t bytes) const {
  std::memset(buffer, 0, bytes);
  uint64_t done = 0;
  while (done < bytes) {
    const ssize_t n = pread(fd_, static_cast<char*>(buffer) + done, bytes - done,
                            static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return FileError(errno, path_ + ": cannot read the header");
    if (n == 0) break;  // end of file: the rest stays zero
    done += static_cast<uint64_t>(n);
  }
  return Status::Ok();
}

}  // namespace tiercache::pmem
