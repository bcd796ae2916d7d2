// EncodedUploader (encoded_upload.h): the staging ring and its two streams.
#include "runtime/encoded_upload.h"

#include <algorithm>
#include <cstring>
#include <string>

namespace tiercache {

Result<std::unique_ptr<EncodedUploader>> EncodedUploader::Create(std::shared_ptr<Device> device,
                                                                 EncodedUploadOptions options) {
  if (device == nullptr) return Status::InvalidArgument("EncodedUploader: no device");
  if (options.slots < 2) return Status::InvalidArgument("EncodedUploader: at least 2 slots");
  if (options.slot_bytes < (1ull << 20)) {
    return Status::InvalidArgument("EncodedUploader: slots of at least 1 MiB (the largest chunk record)");
  }
  std::unique_ptr<EncodedUploader> uploader(new EncodedUploader(std::move(device), options));
  TC_RETURN_IF_ERROR(uploader->Init());
  return uploader;
}

Status EncodedUploader::Init() {
  TC_ASSIGN_OR_RETURN(copy_stream_, device_->CreateStream());
  TC_ASSIGN_OR_RETURN(decode_stream_, device_->CreateStream());
  TC_ASSIGN_OR_RETURN(void* word, device_->AllocateMemory(sizeof(uint32_t)));
  error_word_ = static_cast<uint32_t*>(word);
  TC_RETURN_IF_ERROR(device_->MemsetAsync(error_word_, 0, sizeof(uint32_t), decode_stream_));
  slots_.resize(options_.slots);
  for (Slot& slot : slots_) {
    Result<void*> memory = options_.allocator != nullptr
                               ? options_.allocator->Allocate(options_.slot_bytes, decode_stream_)
                               : device_->AllocateMemory(options_.slot_bytes);
    if (!memory.ok()) return memory.status();
    slot.memory = static_cast<unsigned char*>(*memory);
    TC_ASSIGN_OR_RETURN(slot.copied, device_->CreateEvent());
    TC_ASSIGN_OR_RETURN(slot.free, device_->CreateEvent());
  }
  return Status::Ok();
}

EncodedUploader::~EncodedUploader() {
  // Every decode follows the copies into its slot: once the decode stream
  // is idle the ring is unused.
  if (decode_stream_ != nullptr) (void)device_->StreamSynchronize(decode_stream_);
  for (Slot& slot : slots_) {
    if (slot.copied != nullptr) (void)device_->DestroyEvent(slot.copied);
    if (slot.free != nullptr) (void)device_->DestroyEvent(slot.free);
    if (slot.memory == nullptr) continue;
    if (options_.allocator != nullptr) {
      (void)options_.allocator->Free(slot.memory, decode_stream_);
    } else {
      (void)device_->FreeMemory(slot.memory);
    }
  }
  if (copy_stream_ != nullptr) (void)device_->DestroyStream(copy_stream_);
  if (decode_stream_ != nullptr) (void)device_->DestroyStream(decode_stream_);
  if (error_word_ != nullptr) (void)device_->FreeMemory(error_word_);
}

Status EncodedUploader::CheckDecodeErrors() {
  uint32_t word = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    TC_RETURN_IF_ERROR(device_->CopyAsync(&word, error_word_, sizeof(word), CopyKind::kDeviceToHost, decode_stream_));
    TC_RETURN_IF_ERROR(device_->MemsetAsync(error_word_, 0, sizeof(uint32_t), decode_stream_));
    TC_RETURN_IF_ERROR(device_->StreamSynchronize(decode_stream_));
  }
  if (word != 0) return Status::Corruption("EncodedUploader: a decode met a malformed chunk record");
  return Status::Ok();
}

Status EncodedUploader::EnqueueRun(const codec::Bf16Layout& layout, uint32_t first, uint32_t count,
                                   const void* directory, const std::vector<HostSpan>& parts,
                                   uint64_t begin, uint64_t end, unsigned char* output) {
  Slot& slot = slots_[next_slot_];
  next_slot_ = (next_slot_ + 1) % slots_.size();
  const uint64_t directory_bytes = 8 * (uint64_t{count} + 1);
  const uint64_t records_at = codec::Bf16Pad8(directory_bytes);
  if (slot.used) TC_RETURN_IF_ERROR(device_->StreamWaitEvent(copy_stream_, slot.free));
  TC_RETURN_IF_ERROR(device_->CopyAsync(slot.memory, directory, directory_bytes, CopyKind::kHostToDevice,
                                        copy_stream_));
  // Records [begin, end) of the concatenated parts, one copy per part touched.
  uint64_t part_start = 0;
  unsigned char* to = slot.memory + records_at;
  for (const HostSpan& part : parts) {
    const uint64_t lo = std::max(begin, part_start);
    const uint64_t hi = std::min(end, part_start + part.bytes);
    if (lo < hi) {
      TC_RETURN_IF_ERROR(device_->CopyAsync(to, part.data + (lo - part_start), hi - lo,
                                            CopyKind::kHostToDevice, copy_stream_));
      to += hi - lo;
    }
    part_start += part.bytes;
  }
  TC_RETURN_IF_ERROR(device_->RecordEvent(slot.copied, copy_stream_));
  TC_RETURN_IF_ERROR(device_->StreamWaitEvent(decode_stream_, slot.copied));
  const uint64_t decoded = codec::Bf16DecodedRunBytes(layout, first, count);
  TC_ASSIGN_OR_RETURN(codec::Bf16DecodeJob job,
                      codec::MakeBf16DecodeJob(layout, first, count, slot.memory, slot.memory + records_at,
                                               end - begin, output, decoded));
  job.error = error_word_;
  TC_RETURN_IF_ERROR(device_->DecodeAsync(job, decode_stream_));
  TC_RETURN_IF_ERROR(device_->RecordEvent(slot.free, decode_stream_));
  slot.used = true;
  runs_.fetch_add(1, std::memory_order_relaxed);
  encoded_bytes_.fetch_add(directory_bytes + (end - begin), std::memory_order_relaxed);
  decoded_bytes_.fetch_add(decoded, std::memory_order_relaxed);
  return Status::Ok();
}

Status EncodedUploader::Order(Event after) {
  if (after == nullptr) return Status::Ok();
  std::lock_guard<std::mutex> lock(mutex_);
  return device_->StreamWaitEvent(copy_stream_, after);
}

Status EncodedUploader::EnqueueChunks(const codec::Bf16Layout& layout, uint32_t first, uint32_t count,
                                      const void* directory_in, const std::vector<HostSpan>& parts,
                                      unsigned char* output, const std::vector<Event>& copied) {
  const uint32_t chunks = layout.chunk_count();
  if (directory_in == nullptr || first > chunks || count > chunks - first ||
      (count == 0 && chunks != 0)) {
    return Status::InvalidArgument("EncodedUploader: chunks [" + std::to_string(first) + ", +" +
                                   std::to_string(count) + ") outside the block's " +
                                   std::to_string(chunks));
  }
  const auto* directory = static_cast<const unsigned char*>(directory_in);
  auto entry = [directory](uint32_t i) {  // the caller's slice may be unaligned
    uint64_t v;
    std::memcpy(&v, directory + 8 * uint64_t{i}, sizeof(v));
    return v;
  };
  uint64_t available = 0;
  for (const HostSpan& part : parts) available += part.bytes;
  const uint64_t base = entry(0);
  if (entry(count) < base || entry(count) - base > available) {
    return Status::InvalidArgument("EncodedUploader: the records given are shorter than the chunks' records");
  }
  std::lock_guard<std::mutex> lock(mutex_);
  uint32_t done = 0;
  do {  // at least one run, so a block without chunks still writes its tail byte
    // The longest run of whole chunks whose directory slice and records fit a slot.
    uint32_t n = 0;
    const uint64_t start = entry(done) - base;
    while (done + n < count) {
      const uint64_t next = entry(done + n + 1);
      if (next < entry(done + n) || next - base > available) {
        return Status::Corruption("EncodedUploader: directory slice out of order");
      }
      if (codec::Bf16Pad8(8 * (uint64_t{n} + 2)) + (next - base - start) > options_.slot_bytes) break;
      ++n;
    }
    if (n == 0 && count > 0) {
      return Status::Internal("EncodedUploader: a chunk record larger than a staging slot");
    }
    // The directory entries must reach the device 8-byte aligned, and the
    // caller's slice need not be: the slot takes them at its start, which is.
    TC_RETURN_IF_ERROR(EnqueueRun(layout, first + done, n,
                                  reinterpret_cast<const unsigned char*>(directory) + 8 * uint64_t{done},
                                  parts, start, entry(done + n) - base, output));
    output += codec::Bf16DecodedRunBytes(layout, first + done, n);
    done += n;
  } while (done < count);
  for (Event e : copied) {
    if (e != nullptr) TC_RETURN_IF_ERROR(device_->RecordEvent(e, copy_stream_));
  }
  return Status::Ok();
}

Status EncodedUploader::Finish(Event done) {
  if (done == nullptr) return Status::InvalidArgument("EncodedUploader::Finish: no done event");
  std::lock_guard<std::mutex> lock(mutex_);
  TC_RETURN_IF_ERROR(device_->RecordEvent(done, decode_stream_));
  uploads_.fetch_add(1, std::memory_order_relaxed);
  return Status::Ok();
}

Status EncodedUploader::Upload(const void* encoded_bytes_in, uint64_t encoded_bytes, void* device_dst,
                               uint64_t dst_bytes, Event after, Event done) {
  if (done == nullptr) return Status::InvalidArgument("EncodedUploader::Upload: no done event");
  TC_ASSIGN_OR_RETURN(codec::Bf16Layout layout, codec::ParseBf16(encoded_bytes_in, encoded_bytes));
  if (dst_bytes < layout.decoded_bytes() || (device_dst == nullptr && layout.decoded_bytes() > 0)) {
    return Status::InvalidArgument("EncodedUploader::Upload: the destination holds " +
                                   std::to_string(dst_bytes) + " bytes, the block decodes to " +
                                   std::to_string(layout.decoded_bytes()));
  }
  const auto* encoded = static_cast<const unsigned char*>(encoded_bytes_in);
  TC_RETURN_IF_ERROR(Order(after));
  TC_RETURN_IF_ERROR(EnqueueChunks(layout, 0, layout.chunk_count(), encoded + layout.directory_offset,
                                   {{encoded + layout.records_offset, layout.header.records_bytes}},
                                   static_cast<unsigned char*>(device_dst), {}));
  return Finish(done);
}

EncodedUploadStats EncodedUploader::stats() const {
  EncodedUploadStats s;
  s.uploads = uploads_.load();
  s.runs = runs_.load();
  s.encoded_bytes = encoded_bytes_.load();
  s.decoded_bytes = decoded_bytes_.load();
  return s;
}

}  // namespace tiercache
