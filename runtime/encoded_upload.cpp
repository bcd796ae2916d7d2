// EncodedUploader (encoded_upload.h): the staging ring and its two streams.
#include "runtime/encoded_upload.h"

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
    TC_ASSIGN_OR_RETURN(void* memory, device_->AllocateMemory(options_.slot_bytes));
    slot.memory = static_cast<unsigned char*>(memory);
    TC_ASSIGN_OR_RETURN(slot.copied, device_->CreateEvent());
    TC_ASSIGN_OR_RETURN(slot.free, device_->CreateEvent());
  }
  return Status::Ok();
}

EncodedUploader::~EncodedUploader() {
  if (copy_stream_ != nullptr) (void)device_->DestroyStream(copy_stream_);
  if (decode_stream_ != nullptr) (void)device_->DestroyStream(decode_stream_);
  for (Slot& slot : slots_) {
    if (slot.copied != nullptr) (void)device_->DestroyEvent(slot.copied);
    if (slot.free != nullptr) (void)device_->DestroyEvent(slot.free);
    if (slot.memory != nullptr) (void)device_->FreeMemory(slot.memory);
  }
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

Status EncodedUploader::EnqueueRun(const codec::Bf16Layout& layout, const unsigned char* encoded,
                                   uint32_t first, uint32_t count, unsigned char* output,
                                   Slot& slot) {
  const uint64_t directory_bytes = 8 * (uint64_t{count} + 1);
  const uint64_t start = codec::Bf16RecordOffset(layout, encoded, first);
  const uint64_t end = codec::Bf16RecordOffset(layout, encoded, first + count);
  const uint64_t records_at = codec::Bf16Pad8(directory_bytes);
  if (slot.used) TC_RETURN_IF_ERROR(device_->StreamWaitEvent(copy_stream_, slot.free));
  TC_RETURN_IF_ERROR(device_->CopyAsync(slot.memory, encoded + layout.directory_offset + 8 * uint64_t{first},
                                        directory_bytes, CopyKind::kHostToDevice, copy_stream_));
  if (end > start) {
    TC_RETURN_IF_ERROR(device_->CopyAsync(slot.memory + records_at, encoded + start, end - start,
                                          CopyKind::kHostToDevice, copy_stream_));
  }
  TC_RETURN_IF_ERROR(device_->RecordEvent(slot.copied, copy_stream_));
  TC_RETURN_IF_ERROR(device_->StreamWaitEvent(decode_stream_, slot.copied));
  const uint64_t decoded = codec::Bf16DecodedRunBytes(layout, first, count);
  TC_ASSIGN_OR_RETURN(codec::Bf16DecodeJob job,
                      codec::MakeBf16DecodeJob(layout, first, count, slot.memory, slot.memory + records_at,
                                               end - start, output, decoded));
  job.error = error_word_;
  TC_RETURN_IF_ERROR(device_->DecodeAsync(job, decode_stream_));
  TC_RETURN_IF_ERROR(device_->RecordEvent(slot.free, decode_stream_));
  slot.used = true;
  runs_.fetch_add(1, std::memory_order_relaxed);
  encoded_bytes_.fetch_add(directory_bytes + (end - start), std::memory_order_relaxed);
  decoded_bytes_.fetch_add(decoded, std::memory_order_relaxed);
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
  auto* output = static_cast<unsigned char*>(device_dst);
  std::lock_guard<std::mutex> lock(mutex_);
  if (after != nullptr) TC_RETURN_IF_ERROR(device_->StreamWaitEvent(copy_stream_, after));
  const uint32_t chunks = layout.chunk_count();
  uint32_t first = 0;
  do {  // at least one run, so a block without chunks still writes its tail byte
    // The longest run of whole chunks whose directory slice and records fit a slot.
    uint32_t count = 0;
    const uint64_t start = codec::Bf16RecordOffset(layout, encoded, first);
    while (first + count < chunks) {
      const uint64_t end = codec::Bf16RecordOffset(layout, encoded, first + count + 1);
      if (codec::Bf16Pad8(8 * (uint64_t{count} + 2)) + (end - start) > options_.slot_bytes) break;
      ++count;
    }
    if (count == 0 && chunks > 0) {
      return Status::Internal("EncodedUploader: a chunk record larger than a staging slot");
    }
    Slot& slot = slots_[next_slot_];
    next_slot_ = (next_slot_ + 1) % slots_.size();
    TC_RETURN_IF_ERROR(EnqueueRun(layout, encoded, first, count, output, slot));
    output += codec::Bf16DecodedRunBytes(layout, first, count);
    first += count;
  } while (first < chunks);
  TC_RETURN_IF_ERROR(device_->RecordEvent(done, decode_stream_));
  uploads_.fetch_add(1, std::memory_order_relaxed);
  return Status::Ok();
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
