// EncodedUploader: brings a block stored in the bf16 codec's encoding
// (codec/, docs/codec.md) from host memory into device memory, decoded,
// moving only the encoded bytes over the host link.
//
// Contract
// - Upload() splits the encoding into runs of whole chunks that fit one
//   slot of a small device staging ring, and per run enqueues: on the copy
//   stream, the copy of the run's directory entries and records into the
//   slot (after the decode that last used the slot); on the decode stream,
//   after that copy, the decode into the run's place in `device_dst`. So the
//   copy of run i+1 overlaps the decode of run i, and the host never waits.
//   `done` is recorded on the decode stream after the last decode: the
//   caller's stream waits on it (StreamWaitEvent) before reading the block.
// - The encoding's header and directory are checked (ParseBf16) on the host
//   before anything is enqueued; a bad one is kCorruption and nothing is
//   enqueued. Records are checked by the decoder itself, which stays in
//   bounds whatever they hold and raises the uploader's error word;
//   CheckDecodeErrors() reads it. (Walking every escape on the host would
//   cost about as long as the block's transfer.) The host bytes must stay
//   unchanged until `done` completes; they should be pinned (registered)
//   memory, or the device's copies are slow.
// - The piecewise form serves encodings that reach host memory a piece at a
//   time (a staged read from NVMe or PMEM into pinned buffers): Order(),
//   then EnqueueChunks() for each stretch of whole chunk records as it
//   arrives (the records may be gathered from several host spans, so a
//   record split across two staging buffers needs no copy on the host),
//   then Finish(). Upload() is exactly that over one host buffer.
// - stats() counts uploads, runs, encoded bytes moved and decoded bytes
//   delivered since creation.
//
// Thread safety: every call may be made from any thread. Each call holds
// the ring for its own duration only, so the runs of two blocks may
// interleave in the ring; that is harmless (every run carries its own
// directory slice and output, and Finish's event follows every decode
// enqueued before it). stats() may be called concurrently with the rest.
#ifndef TIERCACHE_RUNTIME_ENCODED_UPLOAD_H_
#define TIERCACHE_RUNTIME_ENCODED_UPLOAD_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "alloc/device.h"
#include "alloc/device_allocator.h"
#include "codec/bf16_format.h"
#include "common/status.h"

namespace tiercache {

struct EncodedUploadOptions {
  uint64_t slot_bytes = 32ull << 20;  // per slot; at least 1 MiB (the largest record fits)
  int slots = 3;                      // >= 2
  // When set, the ring comes from this pool (inside its budget; freed in
  // the decode stream's order); otherwise straight from the device.
  DeviceAllocator* allocator = nullptr;
};

struct EncodedUploadStats {
  uint64_t uploads = 0;
  uint64_t runs = 0;
  uint64_t encoded_bytes = 0;  // moved over the host link
  uint64_t decoded_bytes = 0;  // delivered into device memory
};

class EncodedUploader {
 public:
  static Result<std::unique_ptr<EncodedUploader>> Create(std::shared_ptr<Device> device,
                                                         EncodedUploadOptions options = {});
  ~EncodedUploader();  // waits for its streams, frees the ring
  EncodedUploader(const EncodedUploader&) = delete;
  EncodedUploader& operator=(const EncodedUploader&) = delete;

  // Decodes `encoded[0, encoded_bytes)` into device_dst[0, decoded size)
  // as described above. `after` (may be null) precedes the copies; `done`
  // (required) is recorded after the last decode. kInvalidArgument when
  // dst_bytes is smaller than the decoded size.
  Status Upload(const void* encoded, uint64_t encoded_bytes, void* device_dst, uint64_t dst_bytes,
                Event after, Event done);

  // The piecewise form (see the contract).
  struct HostSpan {
    const unsigned char* data;
    uint64_t bytes;
  };
  // The copies enqueued from now on follow `after`.
  Status Order(Event after);
  // Decodes chunks [first, first + count) of `layout` into `output`
  // (Bf16DecodedRunBytes(layout, first, count) bytes of device memory).
  // `directory` holds their count + 1 directory entries (the layout's
  // entries from `first` on) in host memory; their records, from chunk
  // `first`'s on, are the concatenation of `parts`, which must hold at
  // least directory[count] - directory[0] bytes. Both should be pinned.
  // Split into runs that fit a ring slot. Each non-null event of `copied`
  // is recorded on the copy stream after the last copy out of these host
  // bytes: they may be reused once it completes. count == 0 only for
  // a block without chunks (its one run writes the tail byte). kInvalidArgument on a range outside the
  // layout or parts too short; kCorruption on a directory slice that
  // disagrees with the layout's sizes.
  Status EnqueueChunks(const codec::Bf16Layout& layout, uint32_t first, uint32_t count,
                       const void* directory, const std::vector<HostSpan>& parts,
                       unsigned char* output, const std::vector<Event>& copied);
  // Records `done` on the decode stream after every decode enqueued so far
  // and counts one upload.
  Status Finish(Event done);

  // Waits for the decodes enqueued so far; kCorruption when any of them met
  // a malformed record since the last call (and clears the word).
  Status CheckDecodeErrors();

  EncodedUploadStats stats() const;
  Stream copy_stream() const { return copy_stream_; }
  Stream decode_stream() const { return decode_stream_; }

 private:
  struct Slot {
    unsigned char* memory = nullptr;
    Event copied = nullptr;  // on the copy stream, after the run's copies
    Event free = nullptr;    // on the decode stream, after the run's decode
    bool used = false;
  };
  EncodedUploader(std::shared_ptr<Device> device, EncodedUploadOptions options)
      : device_(std::move(device)), options_(options) {}
  Status Init();
  // Enqueues chunks [first, first + count) through the next slot: their
  // directory entries at `directory`, their records [begin, end) of the
  // concatenated `parts`. REQUIRES: mutex_ held.
  Status EnqueueRun(const codec::Bf16Layout& layout, uint32_t first, uint32_t count,
                    const void* directory, const std::vector<HostSpan>& parts, uint64_t begin,
                    uint64_t end, unsigned char* output);

  std::shared_ptr<Device> device_;
  const EncodedUploadOptions options_;
  Stream copy_stream_ = nullptr;
  Stream decode_stream_ = nullptr;
  std::mutex mutex_;  // one upload at a time through the ring
  std::vector<Slot> slots_;  // GUARDED_BY(mutex_)
  uint32_t* error_word_ = nullptr;  // device memory, set by a decode that met bad bytes
  size_t next_slot_ = 0;     // GUARDED_BY(mutex_)
  std::atomic<uint64_t> uploads_{0}, runs_{0}, encoded_bytes_{0}, decoded_bytes_{0};
};

}  // namespace tiercache

#endif  // TIERCACHE_RUNTIME_ENCODED_UPLOAD_H_
