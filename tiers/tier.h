// Tier: one level of the storage hierarchy (DRAM, PMEM, NVMe, or memory for
// tests) seen as a linear address space of `capacity()` bytes.
//
// Contract
// - Allocate() reserves an Extent; Read()/Write() move bytes between a host
//   buffer and [extent.offset + offset, + bytes) of an allocated extent. Any
//   alignment of buffer, offset and size is accepted: a tier that needs
//   aligned I/O (NVMe, O_DIRECT) bounces the unaligned edges itself.
// - The public calls are non-virtual: argument checks, bounds checks and the
//   byte/op counters live here once; implementations override the *Impl
//   hooks, which receive tier-absolute addresses already checked.
// - ReadAsync()/WriteAsync() call `done` exactly once, possibly inline on the
//   calling thread, possibly on an I/O thread. The buffer must stay valid
//   until then. Errors are reported through `done`, never thrown.
// - Persistent tiers (PMEM) additionally keep a durable index of committed
//   extents by key: Commit(key, extent) checksums the extent's current
//   contents and records it; after a restart Lookup(key) finds it again, or
//   returns kCorruption when the bytes no longer match the checksum. A
//   32-bit `flags` word given to Commit is kept with the entry and handed
//   back by Lookup; its meaning is the committer's (the runtime marks
//   extents holding an encoding). Volatile tiers answer kUnsupported /
//   kNotFound.
//
// - Fault injection (tests): SetFaultInjector() attaches a FaultInjector
//   (common/fault_injector.h) consulted by Read, Write, their Async forms and
//   Allocate, here in the base class, so every tier acts out the same faults
//   the same way. Without one a call pays a single atomic load.
//
// Thread safety: all public methods may be called concurrently from any
// thread. Concurrent writes to overlapping bytes give unspecified contents
// (as with memory); everything else is safe.
#ifndef TIERCACHE_TIERS_TIER_H_
#define TIERCACHE_TIERS_TIER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "common/fault_injector.h"
#include "common/status.h"
#include "tiers/extent_allocator.h"

namespace tiercache {

// kFile: ranges of existing read-only files (a checkpoint read in place).
enum class TierKind { kMemory, kDram, kPmem, kNvme, kFile };
const char* TierKindName(TierKind kind);  // "memory", "dram", "pmem", "nvme", "file"

// Counters since the tier was opened. A snapshot; fields are independent.
struct TierStats {
  uint64_t capacity = 0;
  uint64_t used = 0;
  uint64_t allocations = 0;
  uint64_t frees = 0;
  uint64_t allocation_failures = 0;
  uint64_t reads = 0;
  uint64_t writes = 0;
  uint64_t bytes_read = 0;
  uint64_t bytes_written = 0;
  uint64_t read_errors = 0;
  uint64_t write_errors = 0;
  uint64_t read_nanoseconds = 0;   // sum over reads of submit-to-completion time
  uint64_t write_nanoseconds = 0;
};

using IoCallback = std::function<void(Status)>;

class Tier {
 public:
  virtual ~Tier();
  Tier(const Tier&) = delete;
  Tier& operator=(const Tier&) = delete;

  const std::string& name() const { return name_; }
  TierKind kind() const { return kind_; }
  uint64_t capacity() const { return capacity_; }
  uint64_t granularity() const { return granularity_; }
  uint64_t used() const;
  bool persistent() const { return IsPersistentImpl(); }

  Result<Extent> Allocate(uint64_t bytes);
  Status Free(const Extent& extent);

  // REQUIRES (checked, kInvalidArgument otherwise): `extent` was allocated
  // here and offset + bytes <= extent.length; dst/src non-null when bytes > 0.
  Status Read(const Extent& extent, uint64_t offset, void* dst, uint64_t bytes);
  Status Write(const Extent& extent, uint64_t offset, const void* src, uint64_t bytes);
  void ReadAsync(const Extent& extent, uint64_t offset, void* dst, uint64_t bytes,
                 IoCallback done);
  void WriteAsync(const Extent& extent, uint64_t offset, const void* src, uint64_t bytes,
                  IoCallback done);

  // Makes every completed write durable (PMEM persist, NVMe fdatasync).
  Status Flush();

  // A host pointer to the extent's bytes for byte-addressable tiers (DRAM,
  // PMEM, memory), nullptr otherwise. Valid while the extent is allocated.
  void* HostAddress(const Extent& extent) const;

  // The extent's first `bytes` (<= extent.length) as runs of host memory,
  // back to back, for a tier whose bytes lie in host memory: one run at
  // HostAddress() for byte-addressable tiers; one per piece for a file tier
  // whose files are pinned in the page cache. A run with data == nullptr
  // reads as zeros. kUnavailable when the bytes are not in host memory (read
  // them instead); a file tier fails as Read() would (kCorruption for a
  // changed file). Whether the memory is registered with a device is the
  // caller's knowledge. Valid while the extent is allocated.
  struct HostRun {
    const void* data = nullptr;
    uint64_t bytes = 0;
  };
  Status HostRuns(const Extent& extent, uint64_t bytes, std::vector<HostRun>* runs) const;

  // Lets the tier register a host buffer it will often read into or write
  // from (io_uring fixed buffers). A hint: always safe to skip.
  Status RegisterBuffer(void* buffer, uint64_t bytes) { return RegisterBufferImpl(buffer, bytes); }

  // Persistent index (see the contract above).
  Status Commit(uint64_t key, const Extent& extent, uint32_t flags = 0);
  // `flags` (optional) receives the flags the extent was committed with.
  Result<Extent> Lookup(uint64_t key, uint32_t* flags = nullptr);
  Status Forget(uint64_t key);
  // Persistent tiers: forgets the oldest committed extent that nothing has
  // claimed since the tier opened (an earlier process's, that no Lookup has
  // asked for), freeing its space; false when there is none (and always on
  // other tiers). For a caller short of room: such an entry is a cache line
  // nobody has used, and a later Lookup of its key just misses.
  bool ReclaimStale() { return ReclaimStaleImpl(); }

  TierStats stats() const;

  // Attaches `faults` (nullptr detaches). REQUIRES: it outlives the
  // attachment, and no call is in flight when it is detached and destroyed.
  void SetFaultInjector(FaultInjector* faults) {
    faults_.store(faults, std::memory_order_release);
  }

 protected:
  // REQUIRES: granularity is a power of two, capacity a multiple of it.
  Tier(std::string name, TierKind kind, uint64_t capacity, uint64_t granularity);

  // `address` is tier-absolute and [address, address + bytes) lies inside an
  // allocated extent; bytes > 0.
  virtual Status ReadImpl(uint64_t address, void* dst, uint64_t bytes) = 0;
  virtual Status WriteImpl(uint64_t address, const void* src, uint64_t bytes) = 0;
  // Defaults run the synchronous Impl inline and call `done`.
  virtual void ReadAsyncImpl(uint64_t address, void* dst, uint64_t bytes, IoCallback done);
  virtual void WriteAsyncImpl(uint64_t address, const void* src, uint64_t bytes,
                              IoCallback done);
  virtual Status FlushImpl() { return Status::Ok(); }
  virtual void* HostAddressImpl(uint64_t /*address*/) const { return nullptr; }
  // Default: one run at HostAddressImpl(address), or kUnavailable.
  virtual Status HostRunsImpl(uint64_t address, uint64_t bytes, std::vector<HostRun>* runs) const;
  virtual Status RegisterBufferImpl(void* /*buffer*/, uint64_t /*bytes*/) { return Status::Ok(); }
  virtual bool IsPersistentImpl() const { return false; }
  virtual Status CommitImpl(uint64_t key, const Extent& extent, uint32_t flags);
  virtual Result<Extent> LookupImpl(uint64_t key, uint32_t* flags);
  virtual Status ForgetImpl(uint64_t key);
  virtual bool ReclaimStaleImpl() { return false; }
  // Called with space_mutex_ held after an extent is freed (persistent tiers
  // drop index entries pointing into it).
  virtual void OnFreeLocked(const Extent& /*extent*/) {}

  // For recovery: mark an extent found in a persistent index as allocated.
  Status ReserveExtent(const Extent& extent);

 private:
  Status CheckAccess(const Extent& extent, uint64_t offset, const void* buffer,
                     uint64_t bytes, const char* what) const;
  IoCallback Counted(IoCallback done, bool is_read, uint64_t bytes);
  // Act out an injected fault in place of (or around) the Impl call
  // (tier_faults.cpp). kNone runs the Impl unchanged.
  Status FaultedRead(const InjectedFault& fault, uint64_t address, void* dst, uint64_t bytes);
  Status FaultedWrite(const InjectedFault& fault, uint64_t address, const void* src,
                      uint64_t bytes);
  InjectedFault NextFault(FaultSite site) const {
    FaultInjector* faults = faults_.load(std::memory_order_acquire);
    return faults == nullptr ? InjectedFault{} : faults->Next(site, name_);
  }

  const std::string name_;
  const TierKind kind_;
  const uint64_t capacity_;
  const uint64_t granularity_;

  mutable std::mutex space_mutex_;
  ExtentAllocator space_;  // GUARDED_BY(space_mutex_)

  std::atomic<uint64_t> allocations_{0}, frees_{0}, allocation_failures_{0};
  std::atomic<uint64_t> reads_{0}, writes_{0}, bytes_read_{0}, bytes_written_{0};
  std::atomic<uint64_t> read_errors_{0}, write_errors_{0};
  std::atomic<uint64_t> read_nanoseconds_{0}, write_nanoseconds_{0};
  std::atomic<FaultInjector*> faults_{nullptr};
};

}  // namespace tiercache

#endif  // TIERCACHE_TIERS_TIER_H_
