// Helpers shared by the NVMe tier and I/O engine tests: a scratch directory
// removed afterwards, aligned buffers, and a child process with io_uring
// blocked by seccomp.
#ifndef TIERCACHE_TESTS_NVME_NVME_TEST_UTIL_H_
#define TIERCACHE_TESTS_NVME_NVME_TEST_UTIL_H_

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

namespace tiercache::testing {

// mkdtemp under $TMPDIR (or /tmp); removed with everything in it.
class ScratchDir {
 public:
  explicit ScratchDir(const char* base = nullptr) {
    if (base == nullptr) base = std::getenv("TMPDIR");
    std::string pattern = std::string(base && *base ? base : "/tmp") + "/tiercache-nvme-XXXXXX";
    char* made = ::mkdtemp(pattern.data());
    if (made != nullptr) path_ = made;
  }
  ~ScratchDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  bool ok() const { return !path_.empty(); }
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};
using AlignedBuffer = std::unique_ptr<unsigned char, FreeDeleter>;

inline AlignedBuffer MakeAligned(uint64_t bytes, uint64_t alignment = 4096) {
  return AlignedBuffer(
      static_cast<unsigned char*>(std::aligned_alloc(alignment, (bytes + alignment - 1) /
                                                                    alignment * alignment)));
}

// Makes io_uring_setup fail with `err` in this process from now on, as a
// container's seccomp profile does. Only for forked test children.
inline bool BlockIoUring(int err) {
  struct sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (static_cast<unsigned>(err) & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog program = {static_cast<unsigned short>(sizeof(filter) / sizeof(filter[0])),
                               filter};
  return ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
         ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) == 0;
}

}  // namespace tiercache::testing

#endif  // TIERCACHE_TESTS_NVME_NVME_TEST_UTIL_H_
