#include "runtime/transfer_engine.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "common/log.h"
#include "runtime/staged_reader.h"
#include "runtime/checksum.h"

namespace tiercache {

// ---- EventPool ------------------------------------------------------------

EventPool::~EventPool() {
  for (Event e : free_) (void)device_->DestroyEvent(e);
}

Result<Event> EventPool::Get() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!free_.empty()) {
      Event e = free_.back();
      free_.pop_back();
      return e;
    }
  }
  return device_->CreateEvent();
}

void EventPool::Put(Event event) {
  if (event == nullptr) return;
  std::lock_guard<std::mutex> lock(mutex_);
  free_.push_back(event);
}

// ---- TransferJob ----------------------------------------------------------

Status TransferJob::WaitEnqueued() {
  std::unique_lock<std::mutex> lock(mutex_);
  cv_.wait(lock, [this] { return enqueued_.load(std::memory_order_acquire); });
  return status_;
}

Status TransferJob::WaitComplete() {
  std::unique_lock<std::mutex> lock(mutex_);
  cv_.wait(lock, [this] { return complete_.load(std::memory_order_acquire); });
  return status_;
}

Status TransferJob::status() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return status_;
}

TransferJob::~TransferJob() {
  // Every holder is gone, so the copies these events mark have run.
  if (pool_ != nullptr) {
    pool_->Put(done_event_);
    pool_->Put(after_event_);
  }
}

void TransferJob::NoteWaiter(uint64_t now_ns) {
  uint64_t expected = 0;
  first_waiter_ns_.compare_exchange_strong(expected, now_ns, std::memory_order_relaxed);
}

void TransferJob::Finish(Status status) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    status_ = std::move(status);
    enqueued_.store(true, std::memory_order_release);
  }
  cv_.notify_all();
}

void TransferJob::MarkComplete(uint64_t now_ns) {
  std::shared_ptr<TransferJob> keep = std::move(self_);  // may free *this on return
  complete_ns_.store(now_ns, std::memory_order_release);
  if (stats_ != nullptr) {
    const bool ok = status().ok();
    const uint64_t waiter = first_waiter_ns_.load(std::memory_order_relaxed);
    for (int slot : {source_slot_, target_slot_}) {
      stats_->TransferEnd(slot, now_ns);
      if (waiter != 0 && now_ns > waiter) stats_->Stall(slot, now_ns - waiter);
    }
    if (ok) {
      stats_->BytesOut(source_slot_, bytes_);
      stats_->BytesIn(target_slot_, bytes_);
    }
  }
  if (on_complete_) on_complete_(status().ok());
  {
    std::lock_guard<std::mutex> lock(mutex_);
    complete_.store(true, std::memory_order_release);
  }
  cv_.notify_all();
}

// ---- TransferEngine ---------------------------------------------------------

TransferEngine::TransferEngine(std::shared_ptr<Device> device, StagingPool* staging,
                               RuntimeStats* stats, int gpu_slot, TransferOptions options)
    : device_(std::move(device)),
      staging_(staging),
      stats_(stats),
      gpu_slot_(gpu_slot),
      options_(options),
      events_(device_) {}

Result<std::unique_ptr<TransferEngine>> TransferEngine::Create(std::shared_ptr<Device> device,
                                                               StagingPool* staging,
                                                               RuntimeStats* stats, int gpu_slot,
                                                               TransferOptions options) {
  if (device == nullptr || staging == nullptr || stats == nullptr) {
    return Status::InvalidArgument("transfer engine: null device, staging pool or stats");
  }
  if (options.chunk_bytes == 0 || options.chunk_bytes > staging->slot_bytes()) {
    return Status::InvalidArgument("transfer engine: chunk_bytes must be in (0, slot bytes]");
  }
  std::unique_ptr<TransferEngine> engine(
      new TransferEngine(std::move(device), staging, stats, gpu_slot, options));
  // Copies run at high priority so they are not queued behind compute
  // (a no-op on devices without priorities).
  TC_ASSIGN_OR_RETURN(engine->upload_stream_, engine->device_->CreateStreamWithPriority(-1));
  TC_ASSIGN_OR_RETURN(engine->download_stream_, engine->device_->CreateStreamWithPriority(-1));
  TC_ASSIGN_OR_RETURN(engine->notify_stream_, engine->device_->CreateStream());
  engine->worker_ = std::thread([e = engine.get()] { e->WorkerLoop(); });
  return engine;
}

TransferEngine::~TransferEngine() {
  (void)Drain();
  {
    std::lock_guard<std::mutex> lock(queue_mutex_);
    stopping_ = true;
  }
  queue_cv_.notify_all();
  if (worker_.joinable()) worker_.join();
  uploader_.reset();  // waits for its streams
  if (upload_stream_ != nullptr) (void)device_->DestroyStream(upload_stream_);
  if (download_stream_ != nullptr) (void)device_->DestroyStream(download_stream_);
  if (notify_stream_ != nullptr) (void)device_->DestroyStream(notify_stream_);
}

std::shared_ptr<TransferJob> TransferEngine::NewJob(uint64_t bytes, int source_slot,
                                                    int target_slot,
                                                    CompletionFn on_complete) {
  auto job = std::make_shared<TransferJob>();
  job->bytes_ = bytes;
  job->source_slot_ = source_slot;
  job->target_slot_ = target_slot;
  job->stats_ = stats_;
  job->on_complete_ = std::move(on_complete);
  const uint64_t now = MonotonicNanoseconds();
  stats_->TransferBegin(source_slot, now);
  stats_->TransferBegin(target_slot, now);
  job->pool_ = &events_;
  Result<Event> event = events_.Get();
  if (event.ok()) {
    job->done_event_ = *event;  // back to the pool when the last holder drops the job
  } else {
    job->Finish(event.status());
  }
  return job;
}

void TransferEngine::Fail(const std::shared_ptr<TransferJob>& job, Status status) {
  if (stats_ != nullptr) {
    stats_->Error(job->source_slot_);
  }
  job->Finish(std::move(status));
  job->MarkComplete(MonotonicNanoseconds());
}

void TransferEngine::CompleteHostFunc(void* raw) {
  static_cast<TransferJob*>(raw)->MarkComplete(MonotonicNanoseconds());
}

// The completion host function runs on notify_stream_ behind done_event,
// not on the copy stream itself: a host function holds its stream until the
// driver's callback thread has run it, which would leave a gap between one
// block's copies and the next's.
void TransferEngine::Seal(const std::shared_ptr<TransferJob>& job, Stream stream) {
  Status s = device_->RecordEvent(job->done_event_, stream);
  if (!s.ok()) return Fail(job, std::move(s));
  SealRecorded(job);
}

void TransferEngine::SealRecorded(const std::shared_ptr<TransferJob>& job) {
  Status s = device_->StreamWaitEvent(notify_stream_, job->done_event_);
  if (!s.ok()) return Fail(job, std::move(s));
  job->self_ = job;  // dropped by MarkComplete on the device thread
  s = device_->LaunchHostFunc(notify_stream_, &TransferEngine::CompleteHostFunc, job.get());
  if (!s.ok()) {
    job->self_.reset();
    return Fail(job, std::move(s));
  }
  job->Finish(Status::Ok());
}

std::shared_ptr<TransferJob> TransferEngine::Upload(const HostLocation& source, void* device_dst,
                                                    uint64_t bytes, Event wait_event,
                                                    const std::vector<uint32_t>* checksums,
                                                    std::vector<uint32_t>* fill_checksums,
                                                    CompletionFn on_complete) {
  auto job = NewJob(bytes, source.stats_slot, gpu_slot_, std::move(on_complete));
  if (job->enqueued()) return job;  // no event could be had
  if (source.tier == nullptr || device_dst == nullptr || bytes == 0 ||
      bytes > source.extent.length) {
    Fail(job, Status::InvalidArgument("upload: bad source, destination or size"));
    return job;
  }
  auto* dst = static_cast<unsigned char*>(device_dst);
  // A registered home DMAs from its host memory (pinned DRAM: one run; a
  // checkpoint pinned in the page cache: a run per piece, zeros set on the
  // device). Anything else, a changed file included, goes through the
  // staged read, which reports what is wrong.
  // Reused across calls on this thread: no allocation per upload.
  thread_local std::vector<Tier::HostRun> runs;
  if (!source.direct || !source.tier->HostRuns(source.extent, bytes, &runs).ok()) {
    Post([this, job, source, dst, bytes, wait_event, checksums, fill_checksums] {
      StagedUpload(job, source, dst, bytes, wait_event, checksums, fill_checksums);
    });
    return job;
  }
  Status s = Status::Ok();
  if (wait_event != nullptr) s = device_->StreamWaitEvent(upload_stream_, wait_event);
  uint64_t at = 0;
  for (const Tier::HostRun& run : runs) {
    const auto* src = static_cast<const unsigned char*>(run.data);
    for (uint64_t offset = 0; s.ok() && offset < run.bytes; offset += options_.chunk_bytes) {
      const uint64_t n = std::min(options_.chunk_bytes, run.bytes - offset);
      s = src == nullptr ? device_->MemsetAsync(dst + at + offset, 0, n, upload_stream_)
                         : device_->CopyAsync(dst + at + offset, src + offset, n,
                                              CopyKind::kHostToDevice, upload_stream_);
    }
    at += run.bytes;
  }
  if (!s.ok()) {
    Fail(job, std::move(s));
    return job;
  }
  Seal(job, upload_stream_);
  return job;
}

Result<EncodedUploader*> TransferEngine::Uploader() {
  {
    std::lock_guard<std::mutex> lock(uploader_mutex_);
    if (uploader_ != nullptr) return uploader_.get();
  }
  // Made without the lock: its ring comes from the allocator, whose
  // pressure callback takes the cache's lock (which may be held by a
  // thread that then asks for the uploader). Two racing callers each make
  // one; the second is dropped.
  EncodedUploadOptions options;
  options.slot_bytes = std::max<uint64_t>(options_.chunk_bytes, 1ull << 20);
  options.allocator = options_.allocator;
  TC_ASSIGN_OR_RETURN(std::unique_ptr<EncodedUploader> made, EncodedUploader::Create(device_, options));
  std::lock_guard<std::mutex> lock(uploader_mutex_);
  if (uploader_ == nullptr) uploader_ = std::move(made);
  return uploader_.get();
}

std::shared_ptr<TransferJob> TransferEngine::UploadEncoded(const HostLocation& source, void* device_dst,
                                                           uint64_t decoded_bytes, Event wait_event,
                                                           const std::vector<uint32_t>* checksums,
                                                           std::vector<uint32_t>* fill_checksums,
                                                           CompletionFn on_complete) {
  auto job = NewJob(source.extent.length, source.stats_slot, gpu_slot_, std::move(on_complete));
  if (job->enqueued()) return job;  // no event could be had
  if (source.tier == nullptr || source.extent.length == 0) {
    Fail(job, Status::InvalidArgument("upload: bad encoded source"));
    return job;
  }
  auto* dst = static_cast<unsigned char*>(device_dst);
  const void* src = source.tier->HostAddress(source.extent);
  if (!source.direct || src == nullptr) {
    Post([this, job, source, dst, decoded_bytes, wait_event, checksums, fill_checksums] {
      StagedEncodedUpload(job, source, dst, decoded_bytes, wait_event, checksums, fill_checksums);
    });
    return job;
  }
  Result<EncodedUploader*> uploader = Uploader();
  if (!uploader.ok()) {
    Fail(job, uploader.status());
    return job;
  }
  // The decodes write device_dst after what upload_stream() holds so far:
  // the allocator handed the memory out in that stream's order.
  Result<Event> order = events_.Get();
  Status s = order.status();
  if (s.ok() && wait_event != nullptr) s = device_->StreamWaitEvent(upload_stream_, wait_event);
  if (s.ok()) s = device_->RecordEvent(*order, upload_stream_);
  if (s.ok()) {
    s = (*uploader)->Upload(src, source.extent.length, device_dst, decoded_bytes, *order, job->done_event_);
  }
  if (order.ok()) events_.Put(*order);  // the waits on it are enqueued
  if (!s.ok()) {
    // Some runs may be enqueued: let them finish before the caller frees device_dst.
    (void)device_->StreamSynchronize((*uploader)->decode_stream());
    Fail(job, std::move(s));
    return job;
  }
  SealRecorded(job);
  return job;
}

namespace {

// Each staging slot's side area holds the directory entries of one piece's
// records (8 bytes a chunk record; encoder-made records are at least 8 KiB,
// so a thirty-second of a piece is plenty), then the carry: the start of a
// record split across two pieces (at most one record; encoder-made records
// stay below 40 KiB, 64 KiB allowed).
constexpr uint64_t kMaxCarryBytes = 64 * 1024;

uint64_t DirectoryAreaBytes(uint64_t chunk_bytes) {
  return std::max<uint64_t>(4096, (chunk_bytes / 32 + 4095) & ~uint64_t{4095});
}

}  // namespace

uint64_t TransferEngine::StagingSideBytes(uint64_t chunk_bytes) {
  return DirectoryAreaBytes(chunk_bytes) + kMaxCarryBytes;
}

void TransferEngine::StagedEncodedUpload(std::shared_ptr<TransferJob> job, HostLocation source,
                                         unsigned char* dst, uint64_t decoded_bytes, Event wait_event,
                                         const std::vector<uint32_t>* checksums,
                                         std::vector<uint32_t>* fill_checksums) {
  Result<EncodedUploader*> uploader = Uploader();
  if (!uploader.ok()) return Fail(job, uploader.status());
  if (wait_event != nullptr) {
    Status s = device_->EventSynchronize(wait_event);  // worker thread, not an acquirer
    if (!s.ok()) return Fail(job, std::move(s));
  }
  // The decodes write dst after what upload_stream() held when the
  // allocator handed it out, which this order point follows.
  Result<Event> order = events_.Get();
  Status s = order.status();
  if (s.ok()) s = device_->RecordEvent(*order, upload_stream_);
  if (s.ok()) s = (*uploader)->Order(*order);
  if (order.ok()) events_.Put(*order);
  if (s.ok()) s = StagedEncodedPieces(source, dst, decoded_bytes, *uploader, checksums, fill_checksums);
  if (s.ok()) s = (*uploader)->Finish(job->done_event_);
  if (!s.ok()) {
    // Some runs may be enqueued: let them finish before the caller frees dst.
    (void)device_->StreamSynchronize((*uploader)->decode_stream());
    return Fail(job, std::move(s));
  }
  SealRecorded(job);
}

StagedReader TransferEngine::Reader(const HostLocation& source, uint64_t bytes,
                                    const std::vector<uint32_t>* checksums,
                                    std::vector<uint32_t>* fill_checksums) {
  // Every slot may be reading: the caller hands its piece back before it
  // asks for the next one.
  return StagedReader(staging_, source.tier, source.extent, bytes, options_.chunk_bytes, staging_->slots(),
                      checksums, fill_checksums,
                      [this, source, checksums](uint64_t offset, unsigned char* dst, uint64_t n, uint64_t index) {
                        return ReadChunk(source, offset, dst, n, checksums, index, options_.io_retries);
                      });
}

Status TransferEngine::StagedEncodedPieces(HostLocation source, unsigned char* dst, uint64_t decoded_bytes,
                                           EncodedUploader* uploader,
                                           const std::vector<uint32_t>* checksums,
                                           std::vector<uint32_t>* fill_checksums) {
  const uint64_t chunk = options_.chunk_bytes;
  const uint64_t area = DirectoryAreaBytes(chunk);
  const uint64_t side = staging_->side_bytes();
  if (staging_->slot_bytes() < chunk || side < area + kMaxCarryBytes) {
    return Status::Internal("upload: staging slots too small for encoded blocks");
  }
  const uint64_t stored = source.extent.length;
  std::vector<unsigned char> prefix;  // header, table, directory: read once, kept on the host
  uint64_t prefix_bytes = codec::kBf16HeaderBytes;  // until the header says more
  codec::Bf16Layout layout;
  bool parsed = false;
  auto entry = [&](uint32_t c) {  // directory entry c, relative to records_offset
    uint64_t v;
    std::memcpy(&v, prefix.data() + layout.directory_offset + 8 * uint64_t{c}, sizeof(v));
    return v;
  };
  uint32_t next_chunk = 0;  // the first chunk not yet handed to the uploader
  unsigned char* output = dst;
  // The start of a record that ends in the next piece, copied out of its
  // slot so the slot can go back at once; it travels from the next slot's
  // side area, after the directory slice.
  std::vector<unsigned char> carry;
  StagedReader reader = Reader(source, stored, checksums, fill_checksums);
  while (!reader.finished()) {
    Result<StagedReader::Piece> got = reader.Next();
    if (!got.ok()) return got.status();
    const StagedReader::Piece piece = *got;
    const uint64_t offset = piece.offset, n = piece.bytes;
    const unsigned char* bytes = piece.slot->data;
    Status status;
    bool recorded = false;
    // The prefix, gathered across as many pieces as it spans.
    while (status.ok() && !parsed && offset + n > prefix.size()) {
      const uint64_t take = std::min(prefix_bytes, offset + n) - prefix.size();
      prefix.insert(prefix.end(), bytes + (prefix.size() - offset), bytes + (prefix.size() - offset) + take);
      if (prefix.size() < prefix_bytes) break;  // the rest is in later pieces
      if (prefix_bytes == codec::kBf16HeaderBytes) {
        Result<uint64_t> full = codec::Bf16PrefixBytes(prefix.data(), prefix.size());
        if (!full.ok()) {
          status = full.status();
        } else if (*full > stored) {
          status = Status::Corruption("upload: encoded block's directory runs past its " +
                                      std::to_string(stored) + " bytes");
        } else if (*full > prefix_bytes) {
          prefix_bytes = *full;
          continue;
        }
      }
      if (!status.ok()) break;
      Result<codec::Bf16Layout> parsed_layout = codec::ParseBf16Prefix(prefix.data(), prefix.size(), stored);
      if (!parsed_layout.ok()) {
        status = parsed_layout.status();
        break;
      }
      layout = *parsed_layout;
      parsed = true;
      if (layout.decoded_bytes() > decoded_bytes) {
        status = Status::InvalidArgument("upload: the block decodes to " +
                                         std::to_string(layout.decoded_bytes()) + " bytes, its memory holds " +
                                         std::to_string(decoded_bytes));
        break;
      }
      // What the piecewise hand-over relies on: a record fits the carry
      // area, and a piece's directory slice fits the directory area.
      uint64_t min_step = UINT64_MAX, max_step = 0;
      for (uint32_t c = 0; c < layout.chunk_count(); ++c) {
        const uint64_t step = entry(c + 1) - entry(c);
        max_step = std::max(max_step, step);
        if (c + 1 < layout.chunk_count()) min_step = std::min(min_step, step);
      }
      const uint64_t most = min_step == UINT64_MAX ? 1 : (kMaxCarryBytes + chunk) / std::max<uint64_t>(min_step, 1) + 2;
      if (max_step > kMaxCarryBytes || max_step > chunk || 8 * (most + 1) > area) {
        status = Status::Unsupported("upload: encoded block's chunk records (" + std::to_string(min_step) +
                                     " to " + std::to_string(max_step) +
                                     " bytes) do not suit staged reads of " + std::to_string(chunk) +
                                     "-byte pieces");
      }
    }
    if (status.ok() && parsed) {
      // The records at hand: the carry, then this piece's bytes past the prefix.
      const uint64_t records_from = std::max(layout.records_offset, offset);
      const uint64_t window_end = offset + n;  // in encoding offsets
      uint32_t count = 0;
      while (next_chunk + count < layout.chunk_count() &&
             layout.records_offset + entry(next_chunk + count + 1) <= window_end) {
        ++count;
      }
      const bool last = window_end == stored;
      if (count > 0 || (last && layout.chunk_count() == 0)) {
        unsigned char* directory = piece.slot->side;
        std::memcpy(directory, prefix.data() + layout.directory_offset + 8 * uint64_t{next_chunk},
                    8 * (uint64_t{count} + 1));
        std::vector<EncodedUploader::HostSpan> parts;
        if (!carry.empty()) {
          std::memcpy(piece.slot->side + area, carry.data(), carry.size());
          parts.push_back({piece.slot->side + area, carry.size()});
        }
        parts.push_back({bytes + (records_from - offset), window_end - records_from});
        status = uploader->EnqueueChunks(layout, next_chunk, count, directory, parts, output, {piece.slot->event});
        recorded = status.ok();
        output += codec::Bf16DecodedRunBytes(layout, next_chunk, count);
        next_chunk += count;
        carry.clear();
      }
      // Whatever follows the last whole record is carried into the next piece.
      const uint64_t carried_from = next_chunk < layout.chunk_count()
                                        ? layout.records_offset + entry(next_chunk)
                                        : window_end;
      if (status.ok() && carried_from < window_end) {
        if (carried_from < offset || !carry.empty()) {
          status = Status::Internal("upload: an encoded record spans more than two pieces");
        } else {
          carry.assign(bytes + (carried_from - offset), bytes + n);
        }
      }
    }
    reader.Done(piece, recorded);
    if (!status.ok()) return status;
  }
  if (!parsed || next_chunk != layout.chunk_count()) {
    return Status::Corruption("upload: encoded block of " + std::to_string(stored) +
                              " bytes ends inside its records");
  }
  return Status::Ok();
}

EncodedUploadStats TransferEngine::encoded_stats() const {
  std::lock_guard<std::mutex> lock(uploader_mutex_);
  return uploader_ != nullptr ? uploader_->stats() : EncodedUploadStats{};
}

Status TransferEngine::ReadChunk(const HostLocation& source, uint64_t offset, unsigned char* dst,
                                 uint64_t bytes, const std::vector<uint32_t>* checksums,
                                 uint64_t chunk_index, int attempts) const {
  Status status = Status::IoError(source.tier->name() + ": no read attempted");
  if (attempts < 0) attempts = options_.io_retries + 1;
  for (int attempt = 0; attempt < attempts; ++attempt) {
    status = source.tier->Read(source.extent, offset, dst, bytes);
    if (status.ok() && checksums != nullptr && chunk_index < checksums->size() &&
        ChecksumBytes(dst, bytes) != (*checksums)[chunk_index]) {
      status = Status::Corruption(source.tier->name() + ": checksum mismatch in chunk " +
                                  std::to_string(chunk_index) + " at offset " +
                                  std::to_string(offset));
    }
    if (status.ok()) return status;
    TC_LOG_WARN("read of %llu bytes from %s failed (attempt %d): %s",
                static_cast<unsigned long long>(bytes), source.tier->name().c_str(), attempt + 1,
                status.ToString().c_str());
  }
  return status;
}

void TransferEngine::StagedUpload(std::shared_ptr<TransferJob> job, HostLocation source,
                                  unsigned char* dst, uint64_t bytes, Event wait_event,
                                  const std::vector<uint32_t>* checksums,
                                  std::vector<uint32_t>* fill_checksums) {
  if (wait_event != nullptr) {
    Status s = device_->EventSynchronize(wait_event);  // worker thread, not an acquirer
    if (!s.ok()) return Fail(job, std::move(s));
  }
  StagedReader reader = Reader(source, bytes, checksums, fill_checksums);
  while (!reader.finished()) {
    Result<StagedReader::Piece> piece = reader.Next();
    if (!piece.ok()) return Fail(job, piece.status());
    Status s = device_->CopyAsync(dst + piece->offset, piece->slot->data, piece->bytes,
                                  CopyKind::kHostToDevice, upload_stream_);
    bool recorded = false;
    if (s.ok()) {
      s = device_->RecordEvent(piece->slot->event, upload_stream_);
      recorded = s.ok();
    }
    reader.Done(*piece, recorded);
    if (!s.ok()) return Fail(job, std::move(s));
  }
  Seal(job, upload_stream_);
}

std::shared_ptr<TransferJob> TransferEngine::Download(const void* device_src, uint64_t bytes,
                                                      const HostLocation& target,
                                                      Stream after_stream,
                                                      std::vector<uint32_t>* checksums_out,
                                                      std::function<void()> on_enqueued,
                                                      CompletionFn on_complete) {
  auto job = NewJob(bytes, gpu_slot_, target.stats_slot, std::move(on_complete));
  auto fail = [&](Status s) {
    Fail(job, std::move(s));
    if (on_enqueued) on_enqueued();
    return job;
  };
  if (job->enqueued()) {
    if (on_enqueued) on_enqueued();
    return job;
  }
  if (target.tier == nullptr || device_src == nullptr || bytes == 0 ||
      bytes > target.extent.length) {
    return fail(Status::InvalidArgument("download: bad source, target or size"));
  }
  // The order point is taken now, on the caller's thread: the copies follow
  // whatever the caller enqueued on `after_stream` before this call.
  Result<Event> after = events_.Get();
  if (!after.ok()) return fail(after.status());
  Event after_event = *after;
  job->after_event_ = after_event;
  Status s = device_->RecordEvent(after_event, after_stream);
  if (!s.ok()) return fail(std::move(s));
  const auto* src = static_cast<const unsigned char*>(device_src);
  auto* dst = static_cast<unsigned char*>(target.tier->HostAddress(target.extent));
  if (!target.direct || dst == nullptr) {
    Post([this, job, src, bytes, target, after_event, checksums_out,
          on_enqueued = std::move(on_enqueued)]() mutable {
      StagedDownload(job, src, bytes, target, after_event, checksums_out,
                     std::move(on_enqueued));
    });
    return job;
  }
  s = device_->StreamWaitEvent(download_stream_, after_event);
  for (uint64_t offset = 0; s.ok() && offset < bytes; offset += options_.chunk_bytes) {
    const uint64_t n = std::min(options_.chunk_bytes, bytes - offset);
    s = device_->CopyAsync(dst + offset, src + offset, n, CopyKind::kDeviceToHost,
                           download_stream_);
  }
  if (!s.ok()) return fail(std::move(s));
  if (checksums_out != nullptr) checksums_out->clear();  // direct copies are not checksummed
  Seal(job, download_stream_);
  if (on_enqueued) on_enqueued();
  return job;
}

void TransferEngine::StagedDownload(std::shared_ptr<TransferJob> job, const unsigned char* src,
                                    uint64_t bytes, HostLocation target, Event after,
                                    std::vector<uint32_t>* checksums_out,
                                    std::function<void()> on_enqueued) {
  struct InFlight {
    StagingPool::Slot* slot;
    uint64_t offset;
    uint64_t bytes;
  };
  if (checksums_out != nullptr) checksums_out->clear();
  Status s = device_->StreamWaitEvent(download_stream_, after);
  std::deque<InFlight> in_flight;
  const size_t depth = static_cast<size_t>(std::max(1, staging_->slots() - 1));
  auto drain_one = [&]() -> Status {
    InFlight f = in_flight.front();
    in_flight.pop_front();
    Status st = device_->EventSynchronize(f.slot->event);
    if (st.ok()) st = target.tier->Write(target.extent, f.offset, f.slot->data, f.bytes);
    if (st.ok() && checksums_out != nullptr) {
      checksums_out->push_back(ChecksumBytes(f.slot->data, f.bytes));
    }
    staging_->Release(f.slot, false);
    return st;
  };
  for (uint64_t offset = 0; s.ok() && offset < bytes; offset += options_.chunk_bytes) {
    if (in_flight.size() >= depth) s = drain_one();
    if (!s.ok()) break;
    const uint64_t n = std::min(options_.chunk_bytes, bytes - offset);
    Result<StagingPool::Slot*> slot = staging_->Acquire();
    if (!slot.ok()) {
      s = slot.status();
      break;
    }
    s = device_->CopyAsync((*slot)->data, src + offset, n, CopyKind::kDeviceToHost,
                           download_stream_);
    if (s.ok()) s = device_->RecordEvent((*slot)->event, download_stream_);
    if (!s.ok()) {
      staging_->Release(*slot, false);
      break;
    }
    in_flight.push_back({*slot, offset, n});
  }
  if (s.ok()) s = device_->RecordEvent(job->done_event_, download_stream_);
  if (on_enqueued) on_enqueued();  // every copy out of device memory is on the stream
  while (!in_flight.empty()) {
    Status st = drain_one();
    if (s.ok()) s = st;
  }
  if (!s.ok()) return Fail(job, std::move(s));
  job->Finish(Status::Ok());
  job->MarkComplete(MonotonicNanoseconds());  // the bytes are in the tier now
}

void TransferEngine::Post(std::function<void()> work) {
  {
    std::lock_guard<std::mutex> lock(queue_mutex_);
    queue_.push_back(std::move(work));
  }
  queue_cv_.notify_one();
}

void TransferEngine::WorkerLoop() {
  std::unique_lock<std::mutex> lock(queue_mutex_);
  while (true) {
    queue_cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping and drained
    std::function<void()> work = std::move(queue_.front());
    queue_.pop_front();
    busy_ = true;
    lock.unlock();
    work();
    lock.lock();
    busy_ = false;
    if (queue_.empty()) idle_cv_.notify_all();
  }
}

Status TransferEngine::Drain() {
  {
    std::unique_lock<std::mutex> lock(queue_mutex_);
    idle_cv_.wait(lock, [this] { return queue_.empty() && !busy_; });
  }
  Status a = upload_stream_ ? device_->StreamSynchronize(upload_stream_) : Status::Ok();
  Status b = download_stream_ ? device_->StreamSynchronize(download_stream_) : Status::Ok();
  {
    std::lock_guard<std::mutex> lock(uploader_mutex_);
    if (uploader_ != nullptr) (void)device_->StreamSynchronize(uploader_->decode_stream());
  }
  Status c = notify_stream_ ? device_->StreamSynchronize(notify_stream_) : Status::Ok();
  if (!a.ok()) return a;
  return b.ok() ? c : b;
}

}  // namespace tiercache
