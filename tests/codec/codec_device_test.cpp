// Device::DecodeAsync: the encoding copied to device memory decodes there,
// bit for bit, in stream order. Built twice: against the emulated device
// (the CPU decoder as stream work) and, with TIERCACHE_TEST_CUDA, against
// the real GPU (the CUDA kernel; label gpu, skipped without a GPU).
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "codec/bf16_encoder.h"
#include "codec/bf16_format.h"
#include "tests/alloc/test_device.h"
#include "tests/codec/codec_test_util.h"

namespace tiercache::codec {
namespace {

using tiercache::testing::AsBytes;
using tiercache::testing::NormalBf16;
using tiercache::testing::RandomBytes;

class DeviceDecodeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    device_ = MakeTestDevice(&why);
    if (device_ == nullptr) GTEST_SKIP() << "no device: " << why;
    Result<Stream> stream = device_->CreateStream();
    ASSERT_TRUE(stream.ok());
    stream_ = *stream;
  }
  void TearDown() override {
    if (device_ == nullptr) return;
    for (void* p : allocations_) EXPECT_TRUE(device_->FreeMemory(p).ok());
    EXPECT_TRUE(device_->DestroyStream(stream_).ok());
  }

  uint8_t* Allocate(size_t bytes) {
    Result<void*> p = device_->AllocateMemory(std::max<size_t>(bytes, 1));
    EXPECT_TRUE(p.ok()) << p.status().ToString();
    allocations_.push_back(*p);
    return static_cast<uint8_t*>(*p);
  }
  uint8_t* Upload(const std::vector<uint8_t>& bytes) {
    uint8_t* p = Allocate(bytes.size());
    EXPECT_TRUE(device_->CopyAsync(p, bytes.data(), bytes.size(), CopyKind::kHostToDevice, stream_).ok());
    return p;
  }
  std::vector<uint8_t> Download(const uint8_t* p, size_t bytes) {
    std::vector<uint8_t> out(bytes);
    EXPECT_TRUE(device_->CopyAsync(out.data(), p, bytes, CopyKind::kDeviceToHost, stream_).ok());
    EXPECT_TRUE(device_->StreamSynchronize(stream_).ok());
    return out;
  }
  uint32_t* ErrorWord() {
    auto* e = reinterpret_cast<uint32_t*>(Allocate(4));
    EXPECT_TRUE(device_->MemsetAsync(e, 0, 4, stream_).ok());
    return e;
  }
  uint32_t ReadError(const uint32_t* e) {
    std::vector<uint8_t> bytes = Download(reinterpret_cast<const uint8_t*>(e), 4);
    uint32_t v;
    std::memcpy(&v, bytes.data(), 4);
    return v;
  }

  // Encodes `input`, uploads the encoding, decodes all of it on the device
  // into output + `offset`, and returns the decoded bytes.
  std::vector<uint8_t> DecodeOnDevice(const std::vector<uint8_t>& input, Bf16EncodeOptions options = {},
                                      size_t offset = 0) {
    Result<std::vector<uint8_t>> encoded = EncodeBf16(input.data(), input.size(), options);
    EXPECT_TRUE(encoded.ok());
    Result<Bf16Layout> layout = ParseBf16(encoded->data(), encoded->size());
    EXPECT_TRUE(layout.ok());
    uint8_t* device_encoded = Upload(*encoded);
    uint8_t* output = Allocate(input.size() + offset) + offset;
    uint32_t* error = ErrorWord();
    Result<Bf16DecodeJob> job = MakeBf16DecodeJob(
        *layout, 0, layout->chunk_count(), device_encoded + layout->directory_offset,
        device_encoded + layout->records_offset, layout->header.records_bytes, output, input.size());
    EXPECT_TRUE(job.ok()) << job.status().ToString();
    job->error = error;
    Status launched = device_->DecodeAsync(*job, stream_);
    EXPECT_TRUE(launched.ok()) << launched.ToString();
    EXPECT_EQ(0u, ReadError(error));
    return Download(output, input.size());
  }

  std::shared_ptr<Device> device_;
  Stream stream_ = nullptr;
  std::vector<void*> allocations_;
};

TEST_F(DeviceDecodeTest, WeightLikeBlockIsBitExact) {
  const std::vector<uint8_t> input = NormalBf16(3 << 20, 0.02f, 1);  // 6 MiB, 192 chunks
  EXPECT_TRUE(DecodeOnDevice(input) == input);
}

TEST_F(DeviceDecodeTest, EveryCodeWidthOddSizesAndUnalignedOutput) {
  std::vector<uint8_t> input = NormalBf16(100003, 0.05f, 2);
  input.push_back(0x99);
  for (int bits = 0; bits <= 8; ++bits) {
    for (size_t offset : {0, 2, 1}) {
      SCOPED_TRACE(std::to_string(bits) + " bits, output offset " + std::to_string(offset));
      Bf16EncodeOptions options;
      options.code_bits = bits;
      options.chunk_values = bits == 3 ? 65536 : 4096;
      EXPECT_TRUE(DecodeOnDevice(input, options, offset) == input);
    }
  }
}

TEST_F(DeviceDecodeTest, SpecialValuesAndTinyBlocks) {
  std::vector<uint16_t> special = {0x0000, 0x8000, 0x7F80, 0xFF80, 0x7FC1, 0x7F81, 0xFFFF,
                                   0x0001, 0x807F, 0x0080, 0x7F7F, 0x3F80, 0xBF80};
  EXPECT_TRUE(DecodeOnDevice(AsBytes(special)) == AsBytes(special));
  for (size_t bytes : {1, 2, 3, 17, 33}) {
    SCOPED_TRACE(bytes);
    const std::vector<uint8_t> input = RandomBytes(bytes, static_cast<uint32_t>(bytes));
    EXPECT_TRUE(DecodeOnDevice(input) == input);
  }
}

// A small ring of device staging slots: each run of chunks is copied into a
// slot (its directory entries, then its records) and decoded from there into
// its place in the block, on one stream; the slot is reused two runs later.
TEST_F(DeviceDecodeTest, RunsDecodeFromAStagingRing) {
  const std::vector<uint8_t> input = NormalBf16(1 << 20, 0.02f, 4);
  Bf16EncodeOptions options;
  options.chunk_values = 8192;
  Result<std::vector<uint8_t>> encoded = EncodeBf16(input.data(), input.size(), options);
  ASSERT_TRUE(encoded.ok());
  const Bf16Layout layout = *ParseBf16(encoded->data(), encoded->size());
  constexpr uint32_t kRun = 16;
  constexpr size_t kSlotBytes = 512 << 10;
  uint8_t* slots[2] = {Allocate(kSlotBytes), Allocate(kSlotBytes)};
  uint8_t* output = Allocate(input.size());
  uint32_t* error = ErrorWord();
  uint64_t output_offset = 0;
  for (uint32_t first = 0, run = 0; first < layout.chunk_count(); first += kRun, ++run) {
    const uint32_t count = std::min(kRun, layout.chunk_count() - first);
    const size_t directory_bytes = 8 * (count + 1);
    const uint64_t start = Bf16RecordOffset(layout, encoded->data(), first);
    const uint64_t end = Bf16RecordOffset(layout, encoded->data(), first + count);
    ASSERT_LE(directory_bytes + (end - start), kSlotBytes);
    uint8_t* slot = slots[run % 2];
    ASSERT_TRUE(device_->CopyAsync(slot, encoded->data() + layout.directory_offset + 8 * first, directory_bytes,
                                   CopyKind::kHostToDevice, stream_).ok());
    ASSERT_TRUE(device_->CopyAsync(slot + directory_bytes, encoded->data() + start, end - start,
                                   CopyKind::kHostToDevice, stream_).ok());
    const uint64_t run_bytes = Bf16DecodedRunBytes(layout, first, count);
    Result<Bf16DecodeJob> job = MakeBf16DecodeJob(layout, first, count, slot, slot + directory_bytes, end - start,
                                                  output + output_offset, run_bytes);
    ASSERT_TRUE(job.ok()) << job.status().ToString();
    job->error = error;
    ASSERT_TRUE(device_->DecodeAsync(*job, stream_).ok());
    output_offset += run_bytes;
  }
  EXPECT_EQ(0u, ReadError(error));
  EXPECT_TRUE(Download(output, input.size()) == input);
}

// The consumer's stream waits on the decode's event, not the host.
TEST_F(DeviceDecodeTest, AnotherStreamSeesTheDecodeThroughAnEvent) {
  if (auto* emulated = dynamic_cast<EmulatedDevice*>(device_.get())) {
    emulated->set_copy_delay(std::chrono::milliseconds(20));  // a missing wait reads stale bytes
  }
  const std::vector<uint8_t> input = NormalBf16(1 << 18, 0.02f, 5);
  Result<std::vector<uint8_t>> encoded = EncodeBf16(input.data(), input.size());
  ASSERT_TRUE(encoded.ok());
  const Bf16Layout layout = *ParseBf16(encoded->data(), encoded->size());
  uint8_t* device_encoded = Upload(*encoded);
  uint8_t* output = Allocate(input.size());
  ASSERT_TRUE(device_->MemsetAsync(output, 0, input.size(), stream_).ok());
  Result<Bf16DecodeJob> job = MakeBf16DecodeJob(
      layout, 0, layout.chunk_count(), device_encoded + layout.directory_offset,
      device_encoded + layout.records_offset, layout.header.records_bytes, output, input.size());
  ASSERT_TRUE(job.ok());
  ASSERT_TRUE(device_->DecodeAsync(*job, stream_).ok());
  Result<Event> event = device_->CreateEvent();
  Result<Stream> consumer = device_->CreateStream();
  ASSERT_TRUE(event.ok() && consumer.ok());
  ASSERT_TRUE(device_->RecordEvent(*event, stream_).ok());
  ASSERT_TRUE(device_->StreamWaitEvent(*consumer, *event).ok());
  std::vector<uint8_t> seen(input.size());
  ASSERT_TRUE(device_->CopyAsync(seen.data(), output, input.size(), CopyKind::kDeviceToHost, *consumer).ok());
  ASSERT_TRUE(device_->StreamSynchronize(*consumer).ok());
  EXPECT_TRUE(seen == input);
  if (auto* emulated = dynamic_cast<EmulatedDevice*>(device_.get())) {
    emulated->set_copy_delay(std::chrono::microseconds(0));
    EXPECT_GE(emulated->stats().decodes, 1u);
  }
  EXPECT_TRUE(device_->DestroyStream(*consumer).ok());
  EXPECT_TRUE(device_->DestroyEvent(*event).ok());
}

TEST_F(DeviceDecodeTest, DamagedDeviceBytesSetTheErrorWord) {
  const std::vector<uint8_t> input = NormalBf16(50000, 0.02f, 6);
  Result<std::vector<uint8_t>> encoded = EncodeBf16(input.data(), input.size());
  ASSERT_TRUE(encoded.ok());
  const Bf16Layout layout = *ParseBf16(encoded->data(), encoded->size());
  std::vector<uint8_t> damaged = *encoded;
  const uint64_t huge = 1ull << 50;
  ASSERT_EQ(4u, layout.chunk_count());
  std::memcpy(damaged.data() + layout.directory_offset + 8, &huge, 8);  // chunks 0 and 1 out of range
  const uint32_t escapes = 0xFFFF;
  const uint64_t third = Bf16RecordOffset(layout, encoded->data(), 2);
  std::memcpy(damaged.data() + third, &escapes, 4);  // chunk 2 claims 65535 escapes
  uint8_t* device_encoded = Upload(damaged);
  uint8_t* output = Allocate(input.size());
  uint32_t* error = ErrorWord();
  Result<Bf16DecodeJob> job = MakeBf16DecodeJob(
      layout, 0, layout.chunk_count(), device_encoded + layout.directory_offset,
      device_encoded + layout.records_offset, layout.header.records_bytes, output, input.size());
  ASSERT_TRUE(job.ok());
  job->error = error;
  ASSERT_TRUE(device_->DecodeAsync(*job, stream_).ok());
  EXPECT_NE(0u, ReadError(error));
  // The chunk after the damaged ones still decodes.
  const std::vector<uint8_t> out = Download(output, input.size());
  const size_t chunk_bytes = 2 * size_t{layout.header.chunk_values};
  EXPECT_TRUE(std::equal(out.begin() + 3 * chunk_bytes, out.end(), input.begin() + 3 * chunk_bytes));
}

TEST_F(DeviceDecodeTest, BadJobsAreRefusedBeforeLaunch) {
  uint8_t* memory = Allocate(4096);
  Bf16DecodeJob job;
  job.directory = reinterpret_cast<const uint64_t*>(memory + 4);  // misaligned
  job.records = memory + 64;
  job.records_bytes = 1024;
  job.output = memory + 2048;
  job.output_bytes = 1024;
  job.value_count = 512;
  job.chunk_values = 512;
  job.chunk_count = 1;
  EXPECT_EQ(ErrorCode::kInvalidArgument, device_->DecodeAsync(job, stream_).code());
  job.directory = reinterpret_cast<const uint64_t*>(memory);
  job.output_bytes = 1023;  // 512 values need 1024 bytes
  EXPECT_EQ(ErrorCode::kInvalidArgument, device_->DecodeAsync(job, stream_).code());
  job.output_bytes = 1024;
  job.code_bits = 9;
  EXPECT_EQ(ErrorCode::kInvalidArgument, device_->DecodeAsync(job, stream_).code());
  job.code_bits = 0;
  job.chunk_count = 2;  // the block has one chunk
  EXPECT_EQ(ErrorCode::kInvalidArgument, device_->DecodeAsync(job, stream_).code());
  job.chunk_count = 1;
  if (dynamic_cast<EmulatedDevice*>(device_.get()) != nullptr) {
    std::vector<uint64_t> host(512);  // not device memory
    job.output = reinterpret_cast<uint8_t*>(host.data());
    EXPECT_EQ(ErrorCode::kInvalidArgument, device_->DecodeAsync(job, stream_).code());
  }
}

}  // namespace
}  // namespace tiercache::codec
