// Topology's view of memory as the kernel reports it now (MemTotal from
// meminfo files) and the page-touching used by first-touch placement and by
// the DRAM tier's pre-fault. No hwloc calls here.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#include "common/check.h"
#include "common/units.h"
#include "tiers/topology.h"

namespace tiercache {
namespace {

// A meminfo file is a few KiB; anything much larger is not one.
constexpr size_t kMaxMeminfoBytes = 64 * 1024;

std::string_view Trim(std::string_view text) {
  const size_t first = text.find_first_not_of(" \t\r");
  if (first == std::string_view::npos) return {};
  const size_t last = text.find_last_not_of(" \t\r");
  return text.substr(first, last - first + 1);
}

// The key of a meminfo line is its last word before the colon: "MemTotal"
// in both "MemTotal:" and "Node 0 MemTotal:".
bool IsMemTotalKey(std::string_view key) {
  key = Trim(key);
  const size_t space = key.find_last_of(" \t");
  if (space != std::string_view::npos) key = key.substr(space + 1);
  return key == "MemTotal";
}

// "  123456 kB" -> bytes. The kernel always writes MemTotal in kB.
Result<uint64_t> ParseKilobytes(std::string_view value) {
  value = Trim(value);
  size_t digits = 0;
  uint64_t kilobytes = 0;
  while (digits < value.size() && value[digits] >= '0' && value[digits] <= '9') {
    const uint64_t digit = static_cast<uint64_t>(value[digits] - '0');
    if (kilobytes > (UINT64_MAX / 1024 - digit) / 10) {
      return Status::InvalidArgument("MemTotal figure \"" + std::string(value) +
                                     "\" is too large");
    }
    kilobytes = kilobytes * 10 + digit;
    ++digits;
  }
  if (digits == 0) {
    return Status::InvalidArgument("MemTotal figure \"" + std::string(value) +
                                   "\" is not a number");
  }
  if (Trim(value.substr(digits)) != "kB") {
    return Status::InvalidArgument("MemTotal figure \"" + std::string(value) +
                                   "\" is not in kB");
  }
  return kilobytes * 1024;
}

uint64_t PageBytes() {
  static const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  return page;
}

}  // namespace

Result<uint64_t> ParseMemTotal(std::string_view meminfo) {
  while (!meminfo.empty()) {
    const size_t end = meminfo.find('\n');
    std::string_view line = meminfo.substr(0, end);
    meminfo = end == std::string_view::npos ? std::string_view() : meminfo.substr(end + 1);
    const size_t colon = line.find(':');
    if (colon != std::string_view::npos && IsMemTotalKey(line.substr(0, colon))) {
      return ParseKilobytes(line.substr(colon + 1));
    }
  }
  return Status::NotFound("no MemTotal line in the meminfo text");
}

Result<uint64_t> ReadMemTotal(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno(errno, "opening " + path);
  std::string text(kMaxMeminfoBytes, '\0');
  size_t filled = 0;
  while (filled < text.size()) {
    const ssize_t got = read(fd, text.data() + filled, text.size() - filled);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      const int err = errno;
      close(fd);
      return Status::FromErrno(err, "reading " + path);
    }
    if (got == 0) break;
    filled += static_cast<size_t>(got);
  }
  close(fd);
  text.resize(filled);
  Result<uint64_t> total = ParseMemTotal(text);
  if (!total.ok()) return Status(total.status().code(), path + ": " + total.status().message());
  return total;
}

// hwloc reads node sizes once, at load; a VM whose memory is hot-plugged or
// ballooned in as it is used reports a fraction of what it has by then (6 GiB
// of 125 GiB on the lent GPU machine). The kernel's MemTotal is current.
// With one node, /proc/meminfo describes that node too, and is the figure
// the balloon driver updates first.
Result<MemoryLimit> Topology::NodeMemoryLimit(int os_index) const {
  TC_ASSIGN_OR_RETURN(NumaNode node, Node(os_index));
  MemoryLimit limit{node.local_memory_bytes, "hwloc's topology"};
  if (!this_system_) return limit;
  std::vector<std::string> paths = {"/sys/devices/system/node/node" + std::to_string(os_index) +
                                    "/meminfo"};
  if (nodes_.size() == 1) paths.push_back("/proc/meminfo");
  for (const std::string& path : paths) {
    Result<uint64_t> total = ReadMemTotal(path);
    if (total.ok() && *total > limit.bytes) limit = MemoryLimit{*total, "MemTotal in " + path};
  }
  return limit;
}

// The kernel zeroes and maps a page on its first write fault, so writing one
// byte per page is what faults a range in. A few threads, because faulting
// in tens of GiB from one thread takes seconds (608 ms per GiB measured inside
// cudaHostRegister, which faults from one thread).
Status Topology::TouchPages(void* data, size_t bytes, const std::vector<int>& cpus) const {
  if (bytes == 0) return Status::Ok();
  TC_CHECK(data != nullptr, "touching the pages of a null range");
  const uint64_t page = PageBytes();
  const uintptr_t begin = reinterpret_cast<uintptr_t>(data);
  const uintptr_t end = begin + bytes;
  const uintptr_t first_page = begin & ~(page - 1);
  const uint64_t pages = (end - first_page + page - 1) / page;
  auto touch = [=](uint64_t first, uint64_t last) {
    for (uint64_t p = first; p < last; ++p) {
      auto* byte = reinterpret_cast<volatile unsigned char*>(
          std::max<uintptr_t>(begin, first_page + p * page));
      *byte = *byte;  // a write, so the page is really mapped; contents kept
    }
  };
  const uint64_t most = cpus.empty() ? 4 : std::min<uint64_t>(4, cpus.size());
  const uint64_t workers = std::clamp<uint64_t>(bytes / (256 * kMiB), 1, most);
  std::vector<Status> bind_status(workers);
  std::vector<std::thread> threads;
  for (uint64_t w = 0; w < workers; ++w) {
    const uint64_t first = pages * w / workers, last = pages * (w + 1) / workers;
    auto work = [&, w, first, last] {
      if (!cpus.empty()) bind_status[w] = BindThreadToCpus(cpus);
      touch(first, last);
    };
    try {
      threads.emplace_back(work);
    } catch (const std::system_error&) {
      if (!cpus.empty()) bind_status[w] = Status::Unavailable("no thread to touch pages from");
      touch(first, last);
    }
  }
  for (std::thread& thread : threads) thread.join();
  for (Status& status : bind_status) {
    if (!status.ok()) return status;
  }
  return Status::Ok();
}

}  // namespace tiercache
