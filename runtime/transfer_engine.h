// TransferEngine: moves a block's bytes between a host tier and device
// memory, in chunks, on the runtime's own copy streams.
//
// Paths
// - Direct upload (the source is pinned host memory: a pinned DRAM tier):
//   the calling thread enqueues chunk copies on the upload stream and
//   returns; nothing waits on the host.
// - Staged upload (NVMe, PMEM, any tier whose memory is not registered):
//   the engine's worker keeps as many chunk reads in flight as there are
//   pinned staging slots (StagedReader), so the medium never idles between
//   chunks while the device copies earlier chunks out of their slots; it
//   checks each chunk against its CRC32C when the caller supplies
//   checksums, re-reads a failed chunk up to `io_retries` times, then
//   enqueues the chunk's copy.
// - Direct download (GPU -> pinned DRAM): enqueued by the caller on the
//   download stream, concurrent with uploads.
// - Staged download (GPU -> NVMe/PMEM): the worker copies chunks into
//   staging slots and writes them to the tier as each copy completes.
//
// A TransferJob reports two moments: `enqueued` (every copy is on the
// stream, or the job failed; a waiter can then make its stream wait on
// done_event) and `complete` (the copies have run; for staged downloads,
// the bytes are in the tier). Completion is signalled from a host function
// on a side stream that waits for done_event (so the copy stream never
// stalls on the driver's callback thread); it touches only atomics and leaf locks (the job's
// own, the stats' busy-time lock), so it can never deadlock with a thread
// that holds a runtime lock while calling into the device.
//
// Thread safety: Upload/Download may be called from any thread. A job's
// accessors may be called from any thread.
#ifndef TIERCACHE_RUNTIME_TRANSFER_ENGINE_H_
#define TIERCACHE_RUNTIME_TRANSFER_ENGINE_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "alloc/device.h"
#include "alloc/device_allocator.h"
#include "common/status.h"
#include "runtime/encoded_upload.h"
#include "runtime/staged_reader.h"
#include "runtime/staging_pool.h"
#include "runtime/stats.h"
#include "tiers/tier.h"

namespace tiercache {

// Events are cheap to reuse and not free to create (cudaEventCreate), so
// the runtime keeps a pool. Thread-safe.
class EventPool {
 public:
  explicit EventPool(std::shared_ptr<Device> device) : device_(std::move(device)) {}
  ~EventPool();
  Result<Event> Get();
  // REQUIRES: nothing will wait on `event` any more unless recorded again.
  void Put(Event event);

 private:
  std::shared_ptr<Device> device_;
  std::mutex mutex_;
  std::vector<Event> free_;
};

// One side of a transfer in a host tier.
struct HostLocation {
  Tier* tier = nullptr;
  Extent extent;
  bool direct = false;  // tier memory is registered with the device: DMA from it
  int stats_slot = -1;  // RuntimeStats slot of `tier`
};

// Runs once when a job completes, with whether it succeeded, on a device
// thread: it must only touch atomics or leaf locks.
using CompletionFn = std::function<void(bool ok)>;

class TransferJob {
 public:
  TransferJob() = default;
  ~TransferJob();
  TransferJob(const TransferJob&) = delete;
  TransferJob& operator=(const TransferJob&) = delete;
  bool enqueued() const { return enqueued_.load(std::memory_order_acquire); }
  bool complete() const { return complete_.load(std::memory_order_acquire); }
  // Blocks until enqueued(); returns the job's status.
  Status WaitEnqueued();
  // Blocks (host) until complete(); returns the job's status.
  Status WaitComplete();
  // Valid once enqueued() with an ok status: recorded after the last copy.
  Event done_event() const { return done_event_; }
  Status status() const;
  uint64_t complete_ns() const { return complete_ns_.load(std::memory_order_acquire); }
  // Called by an acquirer that found the job unfinished: stall accounting.
  void NoteWaiter(uint64_t now_ns);

 private:
  friend class TransferEngine;
  void Finish(Status status);          // enqueued (and complete if failed)
  void MarkComplete(uint64_t now_ns);  // from the host function, atomics only

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  Status status_;                      // GUARDED_BY(mutex_)
  std::atomic<bool> enqueued_{false};
  std::atomic<bool> complete_{false};
  std::atomic<uint64_t> complete_ns_{0};
  std::atomic<uint64_t> first_waiter_ns_{0};
  Event done_event_ = nullptr;
  Event after_event_ = nullptr;  // downloads: the order point on the caller's stream
  EventPool* pool_ = nullptr;
  // Filled by the engine: what completion credits in the stats.
  uint64_t bytes_ = 0;
  int source_slot_ = -1;
  int target_slot_ = -1;
  RuntimeStats* stats_ = nullptr;
  CompletionFn on_complete_;  // atomics only; runs on a device thread
  std::shared_ptr<TransferJob> self_;  // keeps the job alive until completion
};

struct TransferOptions {
  uint64_t chunk_bytes = 16ull << 20;
  int io_retries = 1;
  // Where the encoded uploads' device ring comes from (null: the device).
  DeviceAllocator* allocator = nullptr;
};

class TransferEngine {
 public:
  // `staging` and `stats` must outlive the engine; `gpu_slot` is the GPU's
  // stats slot.
  static Result<std::unique_ptr<TransferEngine>> Create(std::shared_ptr<Device> device,
                                                        StagingPool* staging, RuntimeStats* stats,
                                                        int gpu_slot, TransferOptions options);
  ~TransferEngine();  // drains the worker and the copy streams

  // Copies source[0, bytes) to `device_dst`. `wait_event` (may be null) is
  // made to precede the copies (a demotion still writing the source).
  // `checksums` (may be empty) hold one CRC32C per chunk_bytes of the
  // source; staged reads are verified against them. `fill_checksums`, when
  // non-null and `checksums` is empty, receives the checksums computed from
  // the bytes read (trust on first read). `on_complete` runs on a device
  // thread and must only touch atomics or leaf locks.
  std::shared_ptr<TransferJob> Upload(const HostLocation& source, void* device_dst, uint64_t bytes,
                                      Event wait_event, const std::vector<uint32_t>* checksums,
                                      std::vector<uint32_t>* fill_checksums,
                                      CompletionFn on_complete = {});
  // Copies device_src[0, bytes) to target, after the work enqueued on
  // `after_stream` so far. Fills `checksums_out` (may be null) per chunk of
  // a staged download. `on_enqueued` runs once every copy reading
  // device_src is on download_stream() (inline, or on the worker), whatever
  // the outcome: the place to free device_src in that stream's order.
  std::shared_ptr<TransferJob> Download(const void* device_src, uint64_t bytes,
                                        const HostLocation& target, Stream after_stream,
                                        std::vector<uint32_t>* checksums_out,
                                        std::function<void()> on_enqueued = {},
                                        CompletionFn on_complete = {});

  // A block stored in the bf16 codec's encoding (codec/, docs/codec.md):
  // source.extent holds the encoding; it arrives decoded in
  // device_dst[0, decoded_bytes). The engine's EncodedUploader (made at the
  // first call: a small device staging ring and two streams) moves only the
  // encoded bytes and decodes on the GPU, after the work on upload_stream()
  // so far and `wait_event`; done_event follows the last decode.
  // - A direct source (pinned DRAM) is copied from in place by the calling
  //   thread.
  // - Any other (NVMe, PMEM, unpinned DRAM) is read by the worker, one
  //   chunk_bytes piece of the encoding at a time, into the pinned staging
  //   ring, each piece checked against `checksums` (per chunk_bytes of the
  //   encoding, as for raw blocks; `fill_checksums` as for Upload) and
  //   re-read on a mismatch; each piece's whole chunk records go to the
  //   uploader as soon as they are in, a record split across two pieces
  //   straight from both staging slots. A layout whose records are larger
  //   than chunk_bytes, or so small that a piece's directory slice overflows
  //   a slot's directory area, is kUnsupported (the encoder never makes
  //   one).
  // The job's bytes, credited to the tiers' traffic, are the encoded bytes.
  std::shared_ptr<TransferJob> UploadEncoded(const HostLocation& source, void* device_dst,
                                             uint64_t decoded_bytes, Event wait_event,
                                             const std::vector<uint32_t>* checksums = nullptr,
                                             std::vector<uint32_t>* fill_checksums = nullptr,
                                             CompletionFn on_complete = {});
  // The side area each staging slot needs (StagingPool) for the staged
  // encoded path over chunks of `chunk_bytes`: room for the directory
  // entries of one piece's records.
  static uint64_t StagingSideBytes(uint64_t chunk_bytes);
  // What encoded uploads moved so far (zeros before the first).
  EncodedUploadStats encoded_stats() const;
  // Makes the encoded uploads' uploader (its device ring, from the
  // allocator when one is set) now rather than at the first encoded
  // upload, so that a shortage shows where blocks are registered.
  Status PrepareEncodedUploads() { return Uploader().status(); }

  // Reads [offset, offset + bytes) of `source` into host memory `dst`,
  // checks it against (*checksums)[chunk_index] when there is one, and
  // re-reads a failed or mismatching chunk up to io_retries times. The
  // worker's staged uploads use it, and so does the cache's DRAM staging.
  // Thread-safe (touches no engine state).
  // `attempts` < 0: 1 + io_retries.
  Status ReadChunk(const HostLocation& source, uint64_t offset, unsigned char* dst,
                   uint64_t bytes, const std::vector<uint32_t>* checksums,
                   uint64_t chunk_index, int attempts = -1) const;

  Device& device() const { return *device_; }
  Stream upload_stream() const { return upload_stream_; }
  Stream download_stream() const { return download_stream_; }
  uint64_t chunk_bytes() const { return options_.chunk_bytes; }
  EventPool& events() { return events_; }
  // Waits until the worker queue is empty and every copy has run.
  Status Drain();

 private:
  TransferEngine(std::shared_ptr<Device> device, StagingPool* staging, RuntimeStats* stats,
                 int gpu_slot, TransferOptions options);
  std::shared_ptr<TransferJob> NewJob(uint64_t bytes, int source_slot, int target_slot,
                                      CompletionFn on_complete);
  // Records done_event on `stream`, queues the completion host function
  // behind it on notify_stream_ and marks the job enqueued.
  void Seal(const std::shared_ptr<TransferJob>& job, Stream stream);
  // Seal for a job whose done_event is already recorded.
  void SealRecorded(const std::shared_ptr<TransferJob>& job);
  Result<EncodedUploader*> Uploader();
  void Fail(const std::shared_ptr<TransferJob>& job, Status status);
  void StagedUpload(std::shared_ptr<TransferJob> job, HostLocation source, unsigned char* dst,
                    uint64_t bytes, Event wait_event, const std::vector<uint32_t>* checksums,
                    std::vector<uint32_t>* fill_checksums);
  void StagedEncodedUpload(std::shared_ptr<TransferJob> job, HostLocation source, unsigned char* dst,
                           uint64_t decoded_bytes, Event wait_event,
                           const std::vector<uint32_t>* checksums,
                           std::vector<uint32_t>* fill_checksums);
  // A reader of [0, bytes) of `source` through the staging ring, as many
  // pieces in flight as there are slots, re-reading through ReadChunk.
  StagedReader Reader(const HostLocation& source, uint64_t bytes, const std::vector<uint32_t>* checksums,
                      std::vector<uint32_t>* fill_checksums);
  Status StagedEncodedPieces(HostLocation source, unsigned char* dst, uint64_t decoded_bytes,
                             EncodedUploader* uploader, const std::vector<uint32_t>* checksums,
                             std::vector<uint32_t>* fill_checksums);
  void StagedDownload(std::shared_ptr<TransferJob> job, const unsigned char* src, uint64_t bytes,
                      HostLocation target, Event after, std::vector<uint32_t>* checksums_out,
                      std::function<void()> on_enqueued);
  void Post(std::function<void()> work);
  void WorkerLoop();
  static void CompleteHostFunc(void* job);

  std::shared_ptr<Device> device_;
  StagingPool* staging_;
  RuntimeStats* stats_;
  const int gpu_slot_;
  const TransferOptions options_;
  EventPool events_;
  Stream upload_stream_ = nullptr;
  Stream download_stream_ = nullptr;
  Stream notify_stream_ = nullptr;  // completion host functions, behind done events

  std::mutex queue_mutex_;
  std::condition_variable queue_cv_;
  std::condition_variable idle_cv_;
  std::deque<std::function<void()>> queue_;  // GUARDED_BY(queue_mutex_)
  bool busy_ = false;                         // GUARDED_BY(queue_mutex_)
  bool stopping_ = false;                     // GUARDED_BY(queue_mutex_)
  std::thread worker_;

  mutable std::mutex uploader_mutex_;
  std::unique_ptr<EncodedUploader> uploader_;  // GUARDED_BY(uploader_mutex_); made at first use
};

}  // namespace tiercache

#endif  // TIERCACHE_RUNTIME_TRANSFER_ENGINE_H_
