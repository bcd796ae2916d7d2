#include "tiers/tier.h"

#include <chrono>
#include <thread>
#include <utility>

namespace tiercache {
namespace {

uint64_t NowNanoseconds() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

}  // namespace

const char* TierKindName(TierKind kind) {
  switch (kind) {
    case TierKind::kMemory: return "memory";
    case TierKind::kDram: return "dram";
    case TierKind::kPmem: return "pmem";
    case TierKind::kNvme: return "nvme";
    case TierKind::kFile: return "file";
  }
  return "unknown";
}

Tier::Tier(std::string name, TierKind kind, uint64_t capacity, uint64_t granularity)
    : name_(std::move(name)),
      kind_(kind),
      capacity_(capacity),
      granularity_(granularity),
      space_(capacity, granularity) {}

Tier::~Tier() = default;

uint64_t Tier::used() const {
  std::lock_guard<std::mutex> lock(space_mutex_);
  return space_.used();
}

Result<Extent> Tier::Allocate(uint64_t bytes) {
  if (bytes == 0) return Status::InvalidArgument(name_ + ": allocation of 0 bytes");
  if (const InjectedFault fault = NextFault(FaultSite::kTierAllocate); fault) {
    if (fault.action == FaultAction::kDelay) {
      std::this_thread::sleep_for(fault.delay);
    } else {
      allocation_failures_.fetch_add(1, std::memory_order_relaxed);
      return fault.action == FaultAction::kOutOfSpace
                 ? Status::OutOfSpace(name_ + ": injected: no space left")
                 : Status::IoError(name_ + ": injected allocation failure");
    }
  }
  std::lock_guard<std::mutex> lock(space_mutex_);
  Result<Extent> extent = space_.Allocate(bytes);
  if (extent.ok()) {
    allocations_.fetch_add(1, std::memory_order_relaxed);
  } else {
    allocation_failures_.fetch_add(1, std::memory_order_relaxed);
    return Status(extent.status().code(), name_ + ": " + extent.status().message());
  }
  return extent;
}

Status Tier::Free(const Extent& extent) {
  std::lock_guard<std::mutex> lock(space_mutex_);
  Status status = space_.Free(extent);
  if (!status.ok()) return Status(status.code(), name_ + ": " + status.message());
  OnFreeLocked(extent);
  frees_.fetch_add(1, std::memory_order_relaxed);
  return Status::Ok();
}

Status Tier::ReserveExtent(const Extent& extent) {
  std::lock_guard<std::mutex> lock(space_mutex_);
  return space_.Reserve(extent);
}

Status Tier::CheckAccess(const Extent& extent, uint64_t offset, const void* buffer,
                         uint64_t bytes, const char* what) const {
  if (bytes > 0 && buffer == nullptr) {
    return Status::InvalidArgument(name_ + ": " + what + " with a null buffer");
  }
  if (offset > extent.length || bytes > extent.length - offset) {
    return Status::InvalidArgument(name_ + ": " + what + " of " + std::to_string(bytes) +
                                   " bytes at offset " + std::to_string(offset) +
                                   " runs past the extent's " + std::to_string(extent.length));
  }
  std::lock_guard<std::mutex> lock(space_mutex_);
  if (!space_.IsLive(extent)) {
    return Status::InvalidArgument(name_ + ": " + what + " of an extent that is not allocated");
  }
  return Status::Ok();
}

Status Tier::Read(const Extent& extent, uint64_t offset, void* dst, uint64_t bytes) {
  TC_RETURN_IF_ERROR(CheckAccess(extent, offset, dst, bytes, "read"));
  if (bytes == 0) return Status::Ok();
  const uint64_t start = NowNanoseconds();
  const InjectedFault fault = NextFault(FaultSite::kTierRead);
  Status status = fault ? FaultedRead(fault, extent.offset + offset, dst, bytes)
                        : ReadImpl(extent.offset + offset, dst, bytes);
  read_nanoseconds_.fetch_add(NowNanoseconds() - start, std::memory_order_relaxed);
  reads_.fetch_add(1, std::memory_order_relaxed);
  if (status.ok()) {
    bytes_read_.fetch_add(bytes, std::memory_order_relaxed);
  } else {
    read_errors_.fetch_add(1, std::memory_order_relaxed);
  }
  return status;
}

Status Tier::Write(const Extent& extent, uint64_t offset, const void* src, uint64_t bytes) {
  TC_RETURN_IF_ERROR(CheckAccess(extent, offset, src, bytes, "write"));
  if (bytes == 0) return Status::Ok();
  const uint64_t start = NowNanoseconds();
  const InjectedFault fault = NextFault(FaultSite::kTierWrite);
  Status status = fault ? FaultedWrite(fault, extent.offset + offset, src, bytes)
                        : WriteImpl(extent.offset + offset, src, bytes);
  write_nanoseconds_.fetch_add(NowNanoseconds() - start, std::memory_order_relaxed);
  writes_.fetch_add(1, std::memory_order_relaxed);
  if (status.ok()) {
    bytes_written_.fetch_add(bytes, std::memory_order_relaxed);
  } else {
    write_errors_.fetch_add(1, std::memory_order_relaxed);
  }
  return status;
}

IoCallback Tier::Counted(IoCallback done, bool is_read, uint64_t bytes) {
  const uint64_t start = NowNanoseconds();
  return [this, done = std::move(done), is_read, bytes, start](Status status) {
    const uint64_t elapsed = NowNanoseconds() - start;
    if (is_read) {
      read_nanoseconds_.fetch_add(elapsed, std::memory_order_relaxed);
      reads_.fetch_add(1, std::memory_order_relaxed);
      (status.ok() ? bytes_read_ : read_errors_)
          .fetch_add(status.ok() ? bytes : 1, std::memory_order_relaxed);
    } else {
      write_nanoseconds_.fetch_add(elapsed, std::memory_order_relaxed);
      writes_.fetch_add(1, std::memory_order_relaxed);
      (status.ok() ? bytes_written_ : write_errors_)
          .fetch_add(status.ok() ? bytes : 1, std::memory_order_relaxed);
    }
    done(std::move(status));
  };
}

void Tier::ReadAsync(const Extent& extent, uint64_t offset, void* dst, uint64_t bytes,
                     IoCallback done) {
  Status status = CheckAccess(extent, offset, dst, bytes, "read");
  if (!status.ok() || bytes == 0) {
    done(std::move(status));
    return;
  }
  IoCallback counted = Counted(std::move(done), true, bytes);
  if (const InjectedFault fault = NextFault(FaultSite::kTierRead); fault) {
    if (fault.action != FaultAction::kDelay) {
      counted(FaultedRead(fault, extent.offset + offset, dst, bytes));
      return;
    }
    std::this_thread::sleep_for(fault.delay);
  }
  ReadAsyncImpl(extent.offset + offset, dst, bytes, std::move(counted));
}

void Tier::WriteAsync(const Extent& extent, uint64_t offset, const void* src, uint64_t bytes,
                      IoCallback done) {
  Status status = CheckAccess(extent, offset, src, bytes, "write");
  if (!status.ok() || bytes == 0) {
    done(std::move(status));
    return;
  }
  IoCallback counted = Counted(std::move(done), false, bytes);
  if (const InjectedFault fault = NextFault(FaultSite::kTierWrite); fault) {
    if (fault.action != FaultAction::kDelay) {
      counted(FaultedWrite(fault, extent.offset + offset, src, bytes));
      return;
    }
    std::this_thread::sleep_for(fault.delay);
  }
  WriteAsyncImpl(extent.offset + offset, src, bytes, std::move(counted));
}

void Tier::ReadAsyncImpl(uint64_t address, void* dst, uint64_t bytes, IoCallback done) {
  done(ReadImpl(address, dst, bytes));
}

void Tier::WriteAsyncImpl(uint64_t address, const void* src, uint64_t bytes, IoCallback done) {
  done(WriteImpl(address, src, bytes));
}

Status Tier::Flush() { return FlushImpl(); }

void* Tier::HostAddress(const Extent& extent) const {
  {
    std::lock_guard<std::mutex> lock(space_mutex_);
    if (!space_.IsLive(extent)) return nullptr;
  }
  return HostAddressImpl(extent.offset);
}

Status Tier::HostRuns(const Extent& extent, uint64_t bytes, std::vector<HostRun>* runs) const {
  if (runs == nullptr || bytes == 0 || bytes > extent.length) {
    return Status::InvalidArgument(name() + ": HostRuns of a bad range");
  }
  {
    std::lock_guard<std::mutex> lock(space_mutex_);
    if (!space_.IsLive(extent)) return Status::InvalidArgument(name() + ": HostRuns of a free extent");
  }
  runs->clear();
  return HostRunsImpl(extent.offset, bytes, runs);
}

Status Tier::HostRunsImpl(uint64_t address, uint64_t bytes, std::vector<HostRun>* runs) const {
  const void* data = HostAddressImpl(address);
  if (data == nullptr) return Status::Unavailable(name() + ": its bytes are not in host memory");
  runs->push_back({data, bytes});
  return Status::Ok();
}

Status Tier::Commit(uint64_t key, const Extent& extent, uint32_t flags) {
  {
    std::lock_guard<std::mutex> lock(space_mutex_);
    if (!space_.IsLive(extent)) {
      return Status::InvalidArgument(name_ + ": commit of an extent that is not allocated");
    }
  }
  return CommitImpl(key, extent, flags);
}

Result<Extent> Tier::Lookup(uint64_t key, uint32_t* flags) {
  uint32_t found = 0;
  Result<Extent> extent = LookupImpl(key, &found);
  if (flags != nullptr) *flags = extent.ok() ? found : 0;
  return extent;
}
Status Tier::Forget(uint64_t key) { return ForgetImpl(key); }

Status Tier::CommitImpl(uint64_t, const Extent&, uint32_t) {
  return Status::Unsupported(name_ + ": not a persistent tier");
}
Result<Extent> Tier::LookupImpl(uint64_t key, uint32_t*) {
  return Status::NotFound(name_ + ": no committed extent for key " + std::to_string(key));
}
Status Tier::ForgetImpl(uint64_t) {
  return Status::Unsupported(name_ + ": not a persistent tier");
}

TierStats Tier::stats() const {
  TierStats s;
  s.capacity = capacity_;
  s.used = used();
  s.allocations = allocations_.load(std::memory_order_relaxed);
  s.frees = frees_.load(std::memory_order_relaxed);
  s.allocation_failures = allocation_failures_.load(std::memory_order_relaxed);
  s.reads = reads_.load(std::memory_order_relaxed);
  s.writes = writes_.load(std::memory_order_relaxed);
  s.bytes_read = bytes_read_.load(std::memory_order_relaxed);
  s.bytes_written = bytes_written_.load(std::memory_order_relaxed);
  s.read_errors = read_errors_.load(std::memory_order_relaxed);
  s.write_errors = write_errors_.load(std::memory_order_relaxed);
  s.read_nanoseconds = read_nanoseconds_.load(std::memory_order_relaxed);
  s.write_nanoseconds = write_nanoseconds_.load(std::memory_order_relaxed);
  return s;
}

}  // namespace tiercache
