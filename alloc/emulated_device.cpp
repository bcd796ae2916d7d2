#include "alloc/emulated_device.h"

#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <thread>

#include <sys/mman.h>

#include "common/units.h"

namespace tiercache {
namespace {

constexpr size_t kDeviceAlignment = 256;  // what cudaMalloc guarantees
constexpr uint64_t kDefaultMemory = 16 * kGiB;

// One RecordEvent: done once the recording stream's worker reaches it.
struct Marker {
  std::mutex mutex;
  std::condition_variable cv;
  bool done = false;

  void Complete() {
    {
      std::lock_guard<std::mutex> lock(mutex);
      done = true;
    }
    cv.notify_all();
  }
  void Wait() {
    std::unique_lock<std::mutex> lock(mutex);
    cv.wait(lock, [this] { return done; });
  }
  bool Done() {
    std::lock_guard<std::mutex> lock(mutex);
    return done;
  }
};

struct Op {
  enum class Kind { kCopy, kMemset, kHostFunc, kRecord, kWait } kind = Kind::kHostFunc;
  int64_t delay_us = 0;  // copy_delay at enqueue time, so a test can delay one copy only
  void* dst = nullptr;
  const void* src = nullptr;
  size_t bytes = 0;
  int value = 0;
  void (*fn)(void*) = nullptr;
  void* arg = nullptr;
  std::shared_ptr<Marker> marker;
};

uint64_t MemoryFromEnvironment() {
  const char* text = std::getenv("TIERCACHE_EMULATED_MEMORY");
  if (text == nullptr) return kDefaultMemory;
  Result<uint64_t> parsed = ParseBytes(text);
  return parsed.ok() && *parsed > 0 ? *parsed : kDefaultMemory;
}

// The entry of `ranges` containing [pointer, pointer + bytes), or end().
std::map<uintptr_t, size_t>::const_iterator FindContaining(
    const std::map<uintptr_t, size_t>& ranges, const void* pointer, size_t bytes) {
  uintptr_t address = reinterpret_cast<uintptr_t>(pointer);
  auto it = ranges.upper_bound(address);
  if (it == ranges.begin()) return ranges.end();
  --it;
  uintptr_t end = it->first + it->second;
  if (address >= end || bytes > end - address) return ranges.end();
  return it;
}

bool Overlaps(const std::map<uintptr_t, size_t>& ranges, const void* pointer, size_t bytes) {
  uintptr_t address = reinterpret_cast<uintptr_t>(pointer);
  auto it = ranges.lower_bound(address + (bytes == 0 ? 1 : bytes));
  if (it == ranges.begin()) return false;
  --it;
  return address < it->first + it->second;
}

}  // namespace

struct EmulatedDevice::EventState {
  std::mutex mutex;
  std::shared_ptr<Marker> current;  // the latest record; null if never recorded
};

struct EmulatedDevice::StreamState {
  explicit StreamState(EmulatedDevice* owner, int stream_priority)
      : device(owner), priority(stream_priority) {
    worker = std::thread([this] { Run(); });
  }

  // False once the stream is stopping: nothing more may be enqueued.
  bool Enqueue(Op op) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (stopping) return false;
      queue.push_back(std::move(op));
      ++enqueued;
    }
    work_cv.notify_one();
    return true;
  }

  void Synchronize() {
    std::unique_lock<std::mutex> lock(mutex);
    uint64_t target = enqueued;
    done_cv.wait(lock, [&] { return completed >= target; });
  }

  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (stopping) return;
      stopping = true;
    }
    work_cv.notify_one();
    worker.join();
  }

  void Run() {
    for (;;) {
      Op op;
      {
        std::unique_lock<std::mutex> lock(mutex);
        work_cv.wait(lock, [this] { return stopping || !queue.empty(); });
        if (queue.empty()) return;  // stopping and drained
        op = std::move(queue.front());
        queue.pop_front();
      }
      Execute(op);
      {
        std::lock_guard<std::mutex> lock(mutex);
        ++completed;
      }
      done_cv.notify_all();
    }
  }

  void Execute(Op& op) {
    switch (op.kind) {
      case Op::Kind::kCopy:
        Delay(op.delay_us);
        std::memmove(op.dst, op.src, op.bytes);
        break;
      case Op::Kind::kMemset:
        Delay(op.delay_us);
        std::memset(op.dst, op.value, op.bytes);
        break;
      case Op::Kind::kHostFunc:
        op.fn(op.arg);
        break;
      case Op::Kind::kRecord:
        op.marker->Complete();
        break;
      case Op::Kind::kWait:
        op.marker->Wait();
        break;
    }
  }

  static void Delay(int64_t us) {
    if (us > 0) std::this_thread::sleep_for(std::chrono::microseconds(us));
  }

  EmulatedDevice* device;
  int priority;
  std::mutex mutex;
  std::condition_variable work_cv;
  std::condition_variable done_cv;
  std::deque<Op> queue;
  uint64_t enqueued = 0;
  uint64_t completed = 0;
  bool stopping = false;
  std::thread worker;  // last: started once the members above exist
};

EmulatedDevice::EmulatedDevice(EmulatedDeviceOptions options) {
  info_.kind = DeviceKind::kEmulated;
  info_.ordinal = options.ordinal;
  info_.name = "emulated";
  info_.total_memory = options.total_memory != 0 ? options.total_memory : MemoryFromEnvironment();
  copy_delay_us_.store(options.copy_delay.count());
  default_stream_ = std::make_unique<StreamState>(this, 0);
}

EmulatedDevice::~EmulatedDevice() {
  for (StreamState* stream : streams_) stream->Stop();
  default_stream_->Stop();
  for (StreamState* stream : streams_) delete stream;
  for (EventState* event : events_) delete event;
  for (auto& [start, bytes] : allocations_) {
    if (FindContaining(reservations_, reinterpret_cast<void*>(start), bytes) == reservations_.end()) {
      std::free(reinterpret_cast<void*>(start));
    }
  }
  for (auto& [start, bytes] : reservations_) munmap(reinterpret_cast<void*>(start), bytes);
}

// ---- memory ------------------------------------------------------------------

Result<void*> EmulatedDevice::AllocateMemory(size_t bytes) {
  if (bytes == 0) return Status::InvalidArgument("AllocateMemory of 0 bytes");
  if (bytes > info_.total_memory) {
    return Status::OutOfMemory("AllocateMemory of " + FormatBytes(bytes) +
                               " exceeds the emulated device's " + FormatBytes(info_.total_memory));
  }
  size_t rounded = AlignUp(bytes, kDeviceAlignment);
  {
    std::lock_guard<std::shared_mutex> lock(memory_mutex_);
    if (allocated_bytes_ + rounded > info_.total_memory) {
      return Status::OutOfMemory("emulated device memory exhausted: " + FormatBytes(allocated_bytes_) +
                                 " of " + FormatBytes(info_.total_memory) + " in use, asked " +
                                 FormatBytes(bytes));
    }
    allocated_bytes_ += rounded;  // reserved before the host allocation, returned on failure
  }
  void* pointer = std::aligned_alloc(kDeviceAlignment, rounded);
  std::lock_guard<std::shared_mutex> lock(memory_mutex_);
  if (pointer == nullptr) {
    allocated_bytes_ -= rounded;
    return Status::OutOfMemory("host allocation of " + FormatBytes(rounded) + " failed");
  }
  allocations_[reinterpret_cast<uintptr_t>(pointer)] = rounded;
  return pointer;
}

Status EmulatedDevice::FreeMemory(void* pointer) {
  size_t bytes = 0;
  {
    std::lock_guard<std::shared_mutex> lock(memory_mutex_);
    auto it = allocations_.find(reinterpret_cast<uintptr_t>(pointer));
    if (it == allocations_.end() ||
        FindContaining(reservations_, pointer, 1) != reservations_.end()) {
      return Status::InvalidArgument("FreeMemory of a pointer that is not a live device allocation");
    }
    bytes = it->second;
    allocations_.erase(it);  // later enqueues touching it now fail
  }
  // Work enqueued before the erase may still use the memory: drain it.
  Status synced = SynchronizeAll();
  std::free(pointer);
  std::lock_guard<std::shared_mutex> lock(memory_mutex_);
  allocated_bytes_ -= bytes;
  return synced;
}

// ---- virtual memory -------------------------------------------------------------

Result<void*> EmulatedDevice::ReserveAddressRange(size_t bytes) {
  if (bytes == 0 || bytes % kMappingGranularity != 0) {
    return Status::InvalidArgument("ReserveAddressRange of " + FormatBytes(bytes) +
                                   ": need a positive multiple of the granularity");
  }
  // One extra granule so the range can start on a granule boundary.
  size_t span = bytes + kMappingGranularity;
  void* raw = mmap(nullptr, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (raw == MAP_FAILED) return Status::OutOfMemory("cannot reserve " + FormatBytes(bytes) + " of addresses");
  uintptr_t start = AlignUp(reinterpret_cast<uintptr_t>(raw), kMappingGranularity);
  uintptr_t end = start + bytes;
  if (start > reinterpret_cast<uintptr_t>(raw)) munmap(raw, start - reinterpret_cast<uintptr_t>(raw));
  uintptr_t raw_end = reinterpret_cast<uintptr_t>(raw) + span;
  if (raw_end > end) munmap(reinterpret_cast<void*>(end), raw_end - end);
  std::lock_guard<std::shared_mutex> lock(memory_mutex_);
  reservations_[start] = bytes;
  return reinterpret_cast<void*>(start);
}

Status EmulatedDevice::FreeAddressRange(void* base) {
  size_t bytes = 0;
  {
    std::lock_guard<std::shared_mutex> lock(memory_mutex_);
    auto it = reservations_.find(reinterpret_cast<uintptr_t>(base));
    if (it == reservations_.end()) return Status::InvalidArgument("FreeAddressRange of an unreserved address");
    bytes = it->second;
  }
  // Whatever is still mapped goes first (UnmapMemory drains the streams).
  for (;;) {
    uintptr_t start = 0;
    size_t mapped = 0;
    {
      std::shared_lock<std::shared_mutex> lock(memory_mutex_);
      auto it = allocations_.lower_bound(reinterpret_cast<uintptr_t>(base));
      if (it != allocations_.end() && it->first < reinterpret_cast<uintptr_t>(base) + bytes) {
        start = it->first;
        mapped = it->second;
      }
    }
    if (mapped == 0) break;
    TC_RETURN_IF_ERROR(UnmapMemory(reinterpret_cast<void*>(start), mapped));
  }
  std::lock_guard<std::shared_mutex> lock(memory_mutex_);
  reservations_.erase(reinterpret_cast<uintptr_t>(base));
  munmap(base, bytes);
  return Status::Ok();
}

Status EmulatedDevice::MapMemory(void* address, size_t bytes) {
  uintptr_t start = reinterpret_cast<uintptr_t>(address);
  if (bytes == 0 || bytes % kMappingGranularity != 0 || start % kMappingGranularity != 0) {
    return Status::InvalidArgument("MapMemory: address and size must be multiples of the granularity");
  }
  std::lock_guard<std::shared_mutex> lock(memory_mutex_);
  if (FindContaining(reservations_, address, bytes) == reservations_.end()) {
    return Status::InvalidArgument("MapMemory outside a reserved address range");
  }
  if (Overlaps(allocations_, address, bytes)) return Status::InvalidArgument("MapMemory over mapped memory");
  if (allocated_bytes_ + bytes > info_.total_memory) {
    return Status::OutOfMemory("emulated device memory exhausted: " + FormatBytes(allocated_bytes_) +
                               " of " + FormatBytes(info_.total_memory) + " in use, asked " +
                               FormatBytes(bytes));
  }
  if (mprotect(address, bytes, PROT_READ | PROT_WRITE) != 0) {
    return Status::OutOfMemory("mprotect of " + FormatBytes(bytes) + " failed");
  }
  allocated_bytes_ += bytes;
  // Adjacent mappings join, so a block spanning two of them is one range.
  uintptr_t end = start + bytes;
  auto reservation = FindContaining(reservations_, address, bytes);
  if (auto next = allocations_.find(end);
      next != allocations_.end() && end < reservation->first + reservation->second) {
    end += next->second;
    allocations_.erase(next);
  }
  auto after = allocations_.lower_bound(start);
  if (after != allocations_.begin()) {
    auto before = std::prev(after);
    if (before->first + before->second == start && before->first >= reservation->first) {
      start = before->first;
      allocations_.erase(before);
    }
  }
  allocations_[start] = end - start;
  return Status::Ok();
}

Status EmulatedDevice::UnmapMemory(void* address, size_t bytes) {
  uintptr_t start = reinterpret_cast<uintptr_t>(address);
  if (bytes == 0 || bytes % kMappingGranularity != 0 || start % kMappingGranularity != 0) {
    return Status::InvalidArgument("UnmapMemory: address and size must be multiples of the granularity");
  }
  {
    std::lock_guard<std::shared_mutex> lock(memory_mutex_);
    if (FindContaining(reservations_, address, bytes) == reservations_.end()) {
      return Status::InvalidArgument("UnmapMemory outside a reserved address range");
    }
    auto it = FindContaining(allocations_, address, bytes);
    if (it == allocations_.end()) return Status::InvalidArgument("UnmapMemory of memory not mapped");
    uintptr_t range = it->first;
    size_t range_bytes = it->second;
    allocations_.erase(it);  // later enqueues touching it now fail
    if (start > range) allocations_[range] = start - range;
    if (start + bytes < range + range_bytes) allocations_[start + bytes] = range + range_bytes - start - bytes;
  }
  Status synced = SynchronizeAll();  // work enqueued before may still use it
  madvise(address, bytes, MADV_DONTNEED);
  mprotect(address, bytes, PROT_NONE);
  std::lock_guard<std::shared_mutex> lock(memory_mutex_);
  allocated_bytes_ -= bytes;
  return synced;
}

Result<uint64_t> EmulatedDevice::FreeMemoryBytes() {
  std::shared_lock<std::shared_mutex> lock(memory_mutex_);
  return info_.total_memory - allocated_bytes_;
}

Status EmulatedDevice::RegisterHost(void* pointer, size_t bytes) {
  if (pointer == nullptr || bytes == 0) return Status::InvalidArgument("RegisterHost of an empty range");
  std::lock_guard<std::shared_mutex> lock(memory_mutex_);
  if (Overlaps(allocations_, pointer, bytes)) {
    return Status::InvalidArgument("RegisterHost of device memory");
  }
  if (Overlaps(registered_, pointer, bytes)) {
    return Status::AlreadyExists("RegisterHost: range overlaps a registered range");
  }
  registered_[reinterpret_cast<uintptr_t>(pointer)] = bytes;
  return Status::Ok();
}

Status EmulatedDevice::UnregisterHost(void* pointer) {
  std::lock_guard<std::shared_mutex> lock(memory_mutex_);
  if (registered_.erase(reinterpret_cast<uintptr_t>(pointer)) == 0) {
    return Status::InvalidArgument("UnregisterHost of a pointer that was not registered");
  }
  return Status::Ok();
}

bool EmulatedDevice::IsDeviceRange(const void* pointer, size_t bytes) const {
  std::shared_lock<std::shared_mutex> lock(memory_mutex_);
  return FindContaining(allocations_, pointer, bytes) != allocations_.end();
}

bool EmulatedDevice::IsHostRegistered(const void* pointer, size_t bytes) const {
  std::shared_lock<std::shared_mutex> lock(memory_mutex_);
  return FindContaining(registered_, pointer, bytes) != registered_.end();
}

// REQUIRES: memory_mutex_ held (shared is enough).
Status EmulatedDevice::CheckDeviceRange(const void* pointer, size_t bytes, const char* what) const {
  if (FindContaining(allocations_, pointer, bytes) == allocations_.end()) {
    return Status::InvalidArgument(std::string(what) +
                                   " is not inside a live device allocation (foreign pointer, "
                                   "overrun or use after free)");
  }
  return Status::Ok();
}

// REQUIRES: memory_mutex_ held (shared is enough).
Status EmulatedDevice::CheckHostRange(const void* pointer, size_t bytes, const char* what) {
  if (pointer == nullptr) return Status::InvalidArgument(std::string(what) + " is null");
  if (Overlaps(allocations_, pointer, bytes)) {
    return Status::InvalidArgument(std::string(what) + " is device memory, not host memory");
  }
  if (FindContaining(registered_, pointer, bytes) != registered_.end()) {
    pinned_copies_.fetch_add(1, std::memory_order_relaxed);
  } else {
    pageable_copies_.fetch_add(1, std::memory_order_relaxed);
  }
  return Status::Ok();
}

// ---- streams and events ------------------------------------------------------

Result<Stream> EmulatedDevice::CreateStream() { return CreateStreamWithPriority(0); }

Result<Stream> EmulatedDevice::CreateStreamWithPriority(int priority) {
  auto* stream = new StreamState(this, priority);
  std::lock_guard<std::shared_mutex> lock(handles_mutex_);
  streams_.insert(stream);
  return static_cast<Stream>(stream);
}

Status EmulatedDevice::DestroyStream(Stream handle) {
  if (handle == nullptr) return Status::InvalidArgument("the default stream cannot be destroyed");
  StreamState* stream = static_cast<StreamState*>(handle);
  {
    std::lock_guard<std::shared_mutex> lock(handles_mutex_);
    if (streams_.erase(stream) == 0) {
      return Status::InvalidArgument("DestroyStream of an unknown or destroyed stream");
    }
    retired_streams_.emplace_back(stream);  // the address is never handed out again
    destroyed_streams_.fetch_add(1, std::memory_order_release);
  }
  stream->Stop();  // drains the queue, then joins
  return Status::Ok();
}

uint64_t EmulatedDevice::DestroyedStreamCount() const {
  return destroyed_streams_.load(std::memory_order_acquire);
}

bool EmulatedDevice::IsStreamLive(Stream handle) const {
  if (handle == nullptr) return true;
  std::shared_lock<std::shared_mutex> lock(handles_mutex_);
  return streams_.count(static_cast<StreamState*>(handle)) != 0;
}

Result<EmulatedDevice::StreamState*> EmulatedDevice::FindStream(Stream handle) const {
  if (handle == nullptr) return default_stream_.get();
  std::shared_lock<std::shared_mutex> lock(handles_mutex_);
  auto it = streams_.find(static_cast<StreamState*>(handle));
  if (it == streams_.end()) return Status::InvalidArgument("unknown or destroyed stream");
  return *it;
}

Result<Event> EmulatedDevice::CreateEvent() {
  auto* event = new EventState();
  std::lock_guard<std::shared_mutex> lock(handles_mutex_);
  events_.insert(event);
  return static_cast<Event>(event);
}

Status EmulatedDevice::DestroyEvent(Event handle) {
  EventState* event = static_cast<EventState*>(handle);
  {
    std::lock_guard<std::shared_mutex> lock(handles_mutex_);
    if (events_.erase(event) == 0) {
      return Status::InvalidArgument("DestroyEvent of an unknown or destroyed event");
    }
  }
  delete event;  // pending records and waits hold their markers, not the event
  return Status::Ok();
}

Result<EmulatedDevice::EventState*> EmulatedDevice::FindEvent(Event handle) const {
  std::shared_lock<std::shared_mutex> lock(handles_mutex_);
  auto it = events_.find(static_cast<EventState*>(handle));
  if (it == events_.end()) return Status::InvalidArgument("unknown or destroyed event");
  return *it;
}

// ---- work --------------------------------------------------------------------

Status EmulatedDevice::CopyAsync(void* dst, const void* src, size_t bytes, CopyKind kind,
                                 Stream handle) {
  TC_ASSIGN_OR_RETURN(StreamState * stream, FindStream(handle));
  if (bytes == 0) return Status::Ok();
  if (dst == nullptr || src == nullptr) return Status::InvalidArgument("CopyAsync with a null pointer");
  // Held across the enqueue so FreeMemory cannot slip between check and use.
  std::shared_lock<std::shared_mutex> lock(memory_mutex_);
  switch (kind) {
    case CopyKind::kHostToDevice:
      TC_RETURN_IF_ERROR(CheckDeviceRange(dst, bytes, "destination"));
      TC_RETURN_IF_ERROR(CheckHostRange(src, bytes, "source"));
      break;
    case CopyKind::kDeviceToHost:
      TC_RETURN_IF_ERROR(CheckDeviceRange(src, bytes, "source"));
      TC_RETURN_IF_ERROR(CheckHostRange(dst, bytes, "destination"));
      break;
    case CopyKind::kDeviceToDevice:
      TC_RETURN_IF_ERROR(CheckDeviceRange(dst, bytes, "destination"));
      TC_RETURN_IF_ERROR(CheckDeviceRange(src, bytes, "source"));
      break;
    case CopyKind::kHostToHost:
      TC_RETURN_IF_ERROR(CheckHostRange(dst, bytes, "destination"));
      TC_RETURN_IF_ERROR(CheckHostRange(src, bytes, "source"));
      break;
  }
  Op op;
  op.kind = Op::Kind::kCopy;
  op.dst = dst;
  op.src = src;
  op.bytes = bytes;
  op.delay_us = copy_delay_us_.load(std::memory_order_relaxed);
  if (!stream->Enqueue(std::move(op))) return Status::InvalidArgument("stream is being destroyed");
  copies_.fetch_add(1, std::memory_order_relaxed);
  return Status::Ok();
}

Status EmulatedDevice::MemsetAsync(void* dst, int value, size_t bytes, Stream handle) {
  TC_ASSIGN_OR_RETURN(StreamState * stream, FindStream(handle));
  if (bytes == 0) return Status::Ok();
  std::shared_lock<std::shared_mutex> lock(memory_mutex_);
  TC_RETURN_IF_ERROR(CheckDeviceRange(dst, bytes, "memset destination"));
  Op op;
  op.kind = Op::Kind::kMemset;
  op.dst = dst;
  op.value = value;
  op.bytes = bytes;
  op.delay_us = copy_delay_us_.load(std::memory_order_relaxed);
  if (!stream->Enqueue(std::move(op))) return Status::InvalidArgument("stream is being destroyed");
  memsets_.fetch_add(1, std::memory_order_relaxed);
  return Status::Ok();
}

Status EmulatedDevice::LaunchHostFunc(Stream handle, void (*fn)(void*), void* arg) {
  if (fn == nullptr) return Status::InvalidArgument("LaunchHostFunc with a null function");
  TC_ASSIGN_OR_RETURN(StreamState * stream, FindStream(handle));
  Op op;
  op.kind = Op::Kind::kHostFunc;
  op.fn = fn;
  op.arg = arg;
  if (!stream->Enqueue(std::move(op))) return Status::InvalidArgument("stream is being destroyed");
  host_funcs_.fetch_add(1, std::memory_order_relaxed);
  return Status::Ok();
}

Status EmulatedDevice::RecordEvent(Event event_handle, Stream stream_handle) {
  TC_ASSIGN_OR_RETURN(StreamState * stream, FindStream(stream_handle));
  // Looked up under the handle lock so a concurrent DestroyEvent cannot free it.
  std::shared_lock<std::shared_mutex> handles(handles_mutex_);
  auto it = events_.find(static_cast<EventState*>(event_handle));
  if (it == events_.end()) return Status::InvalidArgument("unknown or destroyed event");
  auto marker = std::make_shared<Marker>();
  std::lock_guard<std::mutex> lock((*it)->mutex);
  Op op;
  op.kind = Op::Kind::kRecord;
  op.marker = marker;
  if (!stream->Enqueue(std::move(op))) return Status::InvalidArgument("stream is being destroyed");
  (*it)->current = std::move(marker);
  return Status::Ok();
}

Status EmulatedDevice::StreamWaitEvent(Stream stream_handle, Event event_handle) {
  TC_ASSIGN_OR_RETURN(StreamState * stream, FindStream(stream_handle));
  std::shared_ptr<Marker> marker;
  {
    std::shared_lock<std::shared_mutex> handles(handles_mutex_);
    auto it = events_.find(static_cast<EventState*>(event_handle));
    if (it == events_.end()) return Status::InvalidArgument("unknown or destroyed event");
    std::lock_guard<std::mutex> lock((*it)->mutex);
    marker = (*it)->current;  // the record in force now; later records do not count
  }
  if (marker == nullptr) return Status::Ok();  // never recorded: nothing to wait for
  Op op;
  op.kind = Op::Kind::kWait;
  op.marker = std::move(marker);
  if (!stream->Enqueue(std::move(op))) return Status::InvalidArgument("stream is being destroyed");
  return Status::Ok();
}

Result<bool> EmulatedDevice::EventQuery(Event event_handle) {
  std::shared_ptr<Marker> marker;
  {
    std::shared_lock<std::shared_mutex> handles(handles_mutex_);
    auto it = events_.find(static_cast<EventState*>(event_handle));
    if (it == events_.end()) return Status::InvalidArgument("unknown or destroyed event");
    std::lock_guard<std::mutex> lock((*it)->mutex);
    marker = (*it)->current;
  }
  return marker == nullptr || marker->Done();
}

Status EmulatedDevice::EventSynchronize(Event event_handle) {
  std::shared_ptr<Marker> marker;
  {
    std::shared_lock<std::shared_mutex> handles(handles_mutex_);
    auto it = events_.find(static_cast<EventState*>(event_handle));
    if (it == events_.end()) return Status::InvalidArgument("unknown or destroyed event");
    std::lock_guard<std::mutex> lock((*it)->mutex);
    marker = (*it)->current;
  }
  if (marker != nullptr) marker->Wait();
  return Status::Ok();
}

Status EmulatedDevice::StreamSynchronize(Stream handle) {
  TC_ASSIGN_OR_RETURN(StreamState * stream, FindStream(handle));
  stream->Synchronize();
  return Status::Ok();
}

Status EmulatedDevice::SynchronizeAll() {
  std::vector<StreamState*> all;
  {
    std::shared_lock<std::shared_mutex> lock(handles_mutex_);
    all.assign(streams_.begin(), streams_.end());
    all.push_back(default_stream_.get());
  }
  // A stream destroyed meanwhile is retired, not freed, so the pointer stays valid.
  for (StreamState* stream : all) stream->Synchronize();
  return Status::Ok();
}

EmulatedDeviceStats EmulatedDevice::stats() const {
  EmulatedDeviceStats out;
  {
    std::shared_lock<std::shared_mutex> lock(memory_mutex_);
    out.live_allocations = allocations_.size();
    out.allocated_bytes = allocated_bytes_;
  }
  {
    std::shared_lock<std::shared_mutex> lock(handles_mutex_);
    out.live_streams = streams_.size();
    out.live_events = events_.size();
  }
  out.copies = copies_.load();
  out.memsets = memsets_.load();
  out.host_funcs = host_funcs_.load();
  out.pinned_host_copies = pinned_copies_.load();
  out.pageable_host_copies = pageable_copies_.load();
  return out;
}

}  // namespace tiercache
