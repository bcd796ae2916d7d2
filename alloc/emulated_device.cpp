// EmulatedDevice: streams (one worker thread each), events, and the work
// they run in order: copies, memsets, host functions, records and waits.
// Memory and its checks are in emulated_device_memory.cpp.
#include "alloc/emulated_device.h"

#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <thread>

#include <sys/mman.h>

#include "codec/bf16_decoder.h"
#include "codec/bf16_format.h"
#include "common/units.h"

namespace tiercache {
namespace {

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
  enum class Kind { kCopy, kMemset, kHostFunc, kRecord, kWait, kDecode } kind = Kind::kHostFunc;
  int64_t delay_us = 0;  // copy_delay at enqueue time, so a test can delay one copy only
  void* dst = nullptr;
  const void* src = nullptr;
  size_t bytes = 0;
  int value = 0;
  void (*fn)(void*) = nullptr;
  void* arg = nullptr;
  std::shared_ptr<Marker> marker;
  std::shared_ptr<const codec::Bf16DecodeJob> job;
};

uint64_t MemoryFromEnvironment() {
  const char* text = std::getenv("TIERCACHE_EMULATED_MEMORY");
  if (text == nullptr) return kDefaultMemory;
  Result<uint64_t> parsed = ParseBytes(text);
  return parsed.ok() && *parsed > 0 ? *parsed : kDefaultMemory;
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
      case Op::Kind::kDecode:
        Delay(op.delay_us);
        (void)codec::DecodeBf16Chunks(*op.job);  // damage is reported through job.error
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
    if (EmulatedDevice::FindContaining(reservations_, reinterpret_cast<void*>(start), bytes) == reservations_.end()) {
      std::free(reinterpret_cast<void*>(start));
    }
  }
  for (auto& [start, bytes] : reservations_) munmap(reinterpret_cast<void*>(start), bytes);
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
  if (it == streams_.end()) {
    unknown_stream_calls_.fetch_add(1, std::memory_order_relaxed);
    return Status::InvalidArgument("unknown or destroyed stream");
  }
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

Status EmulatedDevice::DecodeAsync(const codec::Bf16DecodeJob& job, Stream handle) {
  TC_ASSIGN_OR_RETURN(StreamState * stream, FindStream(handle));
  TC_RETURN_IF_ERROR(codec::CheckBf16DecodeJob(job));
  {
    std::shared_lock<std::shared_mutex> lock(memory_mutex_);
    TC_RETURN_IF_ERROR(CheckDeviceRange(job.directory, 8 * (size_t{job.chunk_count} + 1), "decode directory"));
    if (job.chunk_count > 0) TC_RETURN_IF_ERROR(CheckDeviceRange(job.records, job.records_bytes, "decode records"));
    const uint64_t output = codec::Bf16JobOutputBytes(job);
    if (output > 0) TC_RETURN_IF_ERROR(CheckDeviceRange(job.output, output, "decode output"));
    if (job.error != nullptr) TC_RETURN_IF_ERROR(CheckDeviceRange(job.error, 4, "decode error word"));
  }
  Op op;
  op.kind = Op::Kind::kDecode;
  op.job = std::make_shared<const codec::Bf16DecodeJob>(job);
  op.delay_us = copy_delay_us_.load(std::memory_order_relaxed);
  if (!stream->Enqueue(std::move(op))) return Status::InvalidArgument("stream is being destroyed");
  decodes_.fetch_add(1, std::memory_order_relaxed);
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
  out.decodes = decodes_.load();
  out.unknown_stream_calls = unknown_stream_calls_.load();
  out.pinned_host_copies = pinned_copies_.load();
  out.pageable_host_copies = pageable_copies_.load();
  return out;
}

}  // namespace tiercache
