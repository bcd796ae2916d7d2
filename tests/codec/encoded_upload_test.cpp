// EncodedUploader: encoded blocks in host memory arrive decoded, bit for
// bit, in device memory, through a ring smaller than one block, in stream
// order (the emulated device delays every copy and decode so a slot reused
// too early, or a consumer that does not wait, reads wrong bytes).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <vector>

#include "alloc/emulated_device.h"
#include "codec/bf16_encoder.h"
#include "runtime/encoded_upload.h"
#include "tests/codec/codec_test_util.h"

namespace tiercache {
namespace {

using tiercache::testing::NormalBf16;
using tiercache::testing::RandomBytes;

class EncodedUploadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    EmulatedDeviceOptions options;
    options.total_memory = 1ull << 30;
    device_ = std::make_shared<EmulatedDevice>(options);
    EncodedUploadOptions upload;
    upload.slot_bytes = 1 << 20;
    upload.slots = 2;
    Result<std::unique_ptr<EncodedUploader>> uploader = EncodedUploader::Create(device_, upload);
    ASSERT_TRUE(uploader.ok()) << uploader.status().ToString();
    uploader_ = std::move(*uploader);
    consumer_ = *device_->CreateStream();
    done_ = *device_->CreateEvent();
  }
  void TearDown() override {
    uploader_.reset();
    for (void* p : allocations_) EXPECT_TRUE(device_->FreeMemory(p).ok());
    EXPECT_TRUE(device_->DestroyEvent(done_).ok());
    EXPECT_TRUE(device_->DestroyStream(consumer_).ok());
    EXPECT_EQ(0u, device_->stats().unknown_stream_calls);
  }
  uint8_t* Allocate(size_t bytes) {
    void* p = *device_->AllocateMemory(std::max<size_t>(bytes, 1));
    allocations_.push_back(p);
    return static_cast<uint8_t*>(p);
  }
  // What the consumer stream sees in `device` after waiting on done_.
  std::vector<uint8_t> Consume(const uint8_t* device, size_t bytes) {
    std::vector<uint8_t> out(bytes);
    EXPECT_TRUE(device_->StreamWaitEvent(consumer_, done_).ok());
    EXPECT_TRUE(device_->CopyAsync(out.data(), device, bytes, CopyKind::kDeviceToHost, consumer_).ok());
    EXPECT_TRUE(device_->StreamSynchronize(consumer_).ok());
    return out;
  }

  std::shared_ptr<EmulatedDevice> device_;
  std::unique_ptr<EncodedUploader> uploader_;
  Stream consumer_ = nullptr;
  Event done_ = nullptr;
  std::vector<void*> allocations_;
};

TEST_F(EncodedUploadTest, BlocksLargerThanTheRingArriveBitExactInStreamOrder) {
  device_->set_copy_delay(std::chrono::milliseconds(2));
  for (uint32_t seed = 0; seed < 3; ++seed) {
    std::vector<uint8_t> input = NormalBf16((3 << 20) + seed, 0.02f, seed);  // ~6 MiB: a dozen runs
    if (seed == 1) input.push_back(0x42);
    Result<std::vector<uint8_t>> encoded = codec::EncodeBf16(input.data(), input.size());
    ASSERT_TRUE(encoded.ok());
    uint8_t* output = Allocate(input.size());
    ASSERT_TRUE(device_->MemsetAsync(output, 0, input.size(), consumer_).ok());
    ASSERT_TRUE(device_->StreamSynchronize(consumer_).ok());
    Status uploaded = uploader_->Upload(encoded->data(), encoded->size(), output, input.size(), nullptr, done_);
    ASSERT_TRUE(uploaded.ok()) << uploaded.ToString();
    EXPECT_TRUE(Consume(output, input.size()) == input) << "seed " << seed;
  }
  EXPECT_TRUE(uploader_->CheckDecodeErrors().ok());
  const EncodedUploadStats stats = uploader_->stats();
  EXPECT_EQ(3u, stats.uploads);
  EXPECT_GE(stats.runs, 3u * 4);  // about 4.3 MB encoded per block through 1 MiB slots
  EXPECT_LT(stats.encoded_bytes, stats.decoded_bytes * 3 / 4);
  EXPECT_EQ(3u * (6ull << 20) + 2 + 1 + 4, stats.decoded_bytes);  // seeds add 0, 1 and 2 values, seed 1 a tail
}

TEST_F(EncodedUploadTest, TinyAndEmptyBlocks) {
  for (size_t bytes : {0, 1, 2, 5, 1000}) {
    SCOPED_TRACE(bytes);
    const std::vector<uint8_t> input = RandomBytes(bytes, static_cast<uint32_t>(bytes));
    Result<std::vector<uint8_t>> encoded = codec::EncodeBf16(input.data(), input.size());
    ASSERT_TRUE(encoded.ok());
    uint8_t* output = Allocate(bytes);
    ASSERT_TRUE(uploader_->Upload(encoded->data(), encoded->size(), output, bytes, nullptr, done_).ok());
    EXPECT_TRUE(Consume(output, bytes) == input);
  }
}

TEST_F(EncodedUploadTest, BadInputIsRefusedBeforeAnythingIsEnqueued) {
  const std::vector<uint8_t> input = NormalBf16(100000, 0.02f, 1);
  Result<std::vector<uint8_t>> encoded = codec::EncodeBf16(input.data(), input.size());
  ASSERT_TRUE(encoded.ok());
  uint8_t* output = Allocate(input.size());
  const uint64_t copies = device_->stats().copies;
  std::vector<uint8_t> damaged = *encoded;
  damaged[30] ^= 0x10;  // chunk count
  EXPECT_EQ(ErrorCode::kCorruption,
            uploader_->Upload(damaged.data(), damaged.size(), output, input.size(), nullptr, done_).code());
  EXPECT_EQ(ErrorCode::kInvalidArgument,
            uploader_->Upload(encoded->data(), encoded->size(), output, input.size() - 1, nullptr, done_).code());
  EXPECT_EQ(ErrorCode::kInvalidArgument,
            uploader_->Upload(encoded->data(), encoded->size(), output, input.size(), nullptr, nullptr).code());
  EXPECT_EQ(copies, device_->stats().copies);
  // A record's damage passes the host's check; the decoder reports it.
  damaged = *encoded;
  const codec::Bf16Layout layout = *codec::ParseBf16(encoded->data(), encoded->size());
  const uint32_t far = 0xFFFFFFu;  // an escape at position 65535 of a 16384-value chunk
  std::memcpy(damaged.data() + layout.records_offset + 8 + 16384 + 16384 * layout.header.code_bits / 8, &far, 4);
  ASSERT_GT(codec::Bf16RecordOffset(layout, encoded->data(), 1),
            layout.records_offset + 8 + 16384 + 16384 * layout.header.code_bits / 8)
      << "chunk 0 has at least one escape";
  ASSERT_TRUE(uploader_->Upload(damaged.data(), damaged.size(), output, input.size(), nullptr, done_).ok());
  EXPECT_EQ(ErrorCode::kCorruption, uploader_->CheckDecodeErrors().code());
  EXPECT_TRUE(uploader_->CheckDecodeErrors().ok()) << "the word is cleared";
  EncodedUploadOptions options;
  options.slots = 1;
  EXPECT_EQ(ErrorCode::kInvalidArgument, EncodedUploader::Create(device_, options).status().code());
  options.slots = 2;
  options.slot_bytes = 4096;
  EXPECT_EQ(ErrorCode::kInvalidArgument, EncodedUploader::Create(device_, options).status().code());
}

// The piecewise form, as the staged reads use it: the records arrive in
// parts cut anywhere (mid-record), handed over a few chunks at a time, each
// call's directory slice from an unaligned host copy; the block decodes
// exactly as a one-piece upload would. Ranges outside the layout or parts
// shorter than the records are refused before anything is enqueued.
TEST_F(EncodedUploadTest, PiecewiseChunksGatheredFromSplitPartsArriveBitExact) {
  device_->set_copy_delay(std::chrono::microseconds(300));
  const std::vector<uint8_t> input = NormalBf16(20 * 16384 + 999, 0.02f, 77);  // 20 chunks and a tail
  Result<std::vector<uint8_t>> encoded = codec::EncodeBf16(input.data(), input.size());
  ASSERT_TRUE(encoded.ok());
  const codec::Bf16Layout layout = *codec::ParseBf16(encoded->data(), encoded->size());
  ASSERT_EQ(21u, layout.chunk_count());  // the tail is a short chunk
  const uint8_t* e = encoded->data();
  auto entry = [&](uint32_t c) {
    uint64_t v;
    std::memcpy(&v, e + layout.directory_offset + 8 * uint64_t{c}, 8);
    return v;
  };
  uint8_t* output = Allocate(input.size());
  ASSERT_TRUE(device_->MemsetAsync(output, 0, input.size(), consumer_).ok());
  ASSERT_TRUE(device_->StreamSynchronize(consumer_).ok());
  ASSERT_TRUE(uploader_->Order(nullptr).ok());
  Event copied = *device_->CreateEvent();
  std::vector<std::vector<uint8_t>> keep;  // host copies live until `done`
  uint8_t* out = output;
  for (uint32_t first = 0; first < layout.chunk_count();) {
    const uint32_t count = std::min<uint32_t>(first % 2 == 0 ? 3 : 4, layout.chunk_count() - first);
    // Directory slice at an odd address.
    keep.emplace_back(8 * (count + 1) + 1);
    std::memcpy(keep.back().data() + 1, e + layout.directory_offset + 8 * uint64_t{first}, 8 * (count + 1));
    const uint8_t* directory = keep.back().data() + 1;
    // Records cut into three parts at arbitrary points.
    const uint8_t* records = e + layout.records_offset + entry(first);
    const uint64_t bytes = entry(first + count) - entry(first);
    const uint64_t cut1 = bytes / 3 + 17, cut2 = bytes - 5;
    std::vector<EncodedUploader::HostSpan> parts = {
        {records, cut1}, {records + cut1, cut2 - cut1}, {records + cut2, bytes - cut2}};
    Status s = uploader_->EnqueueChunks(layout, first, count, directory, parts, out, {copied});
    ASSERT_TRUE(s.ok()) << s.ToString();
    out += codec::Bf16DecodedRunBytes(layout, first, count);
    first += count;
  }
  EXPECT_EQ(output + input.size(), out);
  ASSERT_TRUE(uploader_->Finish(done_).ok());
  EXPECT_TRUE(Consume(output, input.size()) == input);
  EXPECT_TRUE(uploader_->CheckDecodeErrors().ok());

  const uint64_t copies = device_->stats().copies;
  const uint8_t* directory = e + layout.directory_offset;
  std::vector<EncodedUploader::HostSpan> all = {{e + layout.records_offset, entry(21) - entry(0)}};
  EXPECT_EQ(ErrorCode::kInvalidArgument,
            uploader_->EnqueueChunks(layout, 20, 2, directory, all, output, {}).code());
  EXPECT_EQ(ErrorCode::kInvalidArgument,
            uploader_->EnqueueChunks(layout, 3, 0, directory, all, output, {}).code());
  std::vector<EncodedUploader::HostSpan> short_parts = {{e + layout.records_offset, entry(2) - entry(0) - 1}};
  EXPECT_EQ(ErrorCode::kInvalidArgument,
            uploader_->EnqueueChunks(layout, 0, 2, directory, short_parts, output, {}).code());
  EXPECT_EQ(ErrorCode::kInvalidArgument,
            uploader_->EnqueueChunks(layout, 0, 2, nullptr, all, output, {}).code());
  EXPECT_EQ(copies, device_->stats().copies);
  EXPECT_TRUE(device_->DestroyEvent(copied).ok());
}

}  // namespace
}  // namespace tiercache
