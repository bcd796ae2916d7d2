// The bf16 codec is lossless: every input comes back bit for bit, whatever
// its values, size, chunk size or code width, whole or decoded a run of
// chunks at a time. Weight-like data gets smaller; data that cannot, does not
// pretend to.
#include <gtest/gtest.h>

#include <limits>
#include <string>

#include "codec/bf16_decoder.h"
#include "codec/bf16_encoder.h"
#include "codec/bf16_format.h"
#include "codec/compression.h"
#include "tests/codec/codec_test_util.h"

namespace tiercache::codec {
namespace {

using tiercache::testing::AsBytes;
using tiercache::testing::GuardedBuffer;
using tiercache::testing::NormalBf16;
using tiercache::testing::RandomBytes;
using tiercache::testing::ToBf16;

Bf16Layout Layout(const std::vector<uint8_t>& encoded) {
  Result<Bf16Layout> layout = ParseBf16(encoded.data(), encoded.size());
  EXPECT_TRUE(layout.ok()) << layout.status().ToString();
  return layout.ok() ? *layout : Bf16Layout{};
}

// Encodes, validates, decodes into a guarded buffer of exactly the decoded
// size, and compares. Returns the encoding.
std::vector<uint8_t> RoundTrip(const std::vector<uint8_t>& input, Bf16EncodeOptions options = {}) {
  Result<std::vector<uint8_t>> encoded = EncodeBf16(input.data(), input.size(), options);
  EXPECT_TRUE(encoded.ok()) << encoded.status().ToString();
  if (!encoded.ok()) return {};
  EXPECT_TRUE(ValidateBf16(encoded->data(), encoded->size()).ok());
  EXPECT_EQ(input.size(), Layout(*encoded).decoded_bytes());
  GuardedBuffer source(*encoded);
  GuardedBuffer output(input.size());
  Status decoded = DecodeBf16(source.data(), source.size(), output.data(), output.size());
  EXPECT_TRUE(decoded.ok()) << decoded.ToString();
  EXPECT_TRUE(output.contents() == input) << "decoded bytes differ (" << input.size() << " bytes)";
  return *encoded;
}

TEST(Bf16RoundTrip, RandomBytesOfManySizes) {
  for (size_t bytes : {0, 1, 2, 3, 15, 16, 17, 31, 32769, 65535, 65536, 65537, 300001}) {
    SCOPED_TRACE(bytes);
    RoundTrip(RandomBytes(bytes, static_cast<uint32_t>(bytes)));
  }
}

TEST(Bf16RoundTrip, WeightLikeDataShrinksToUnderThreeQuarters) {
  const std::vector<uint8_t> input = NormalBf16(1 << 20, 0.02f, 7);
  const std::vector<uint8_t> encoded = RoundTrip(input);
  const double ratio = static_cast<double>(encoded.size()) / input.size();
  EXPECT_LT(ratio, 0.75) << "ratio " << ratio;
  EXPECT_GT(ratio, 0.6) << "sign and mantissa are stored raw: 8 bits of 16 at least";
  EXPECT_TRUE(KeepEncoding(Compression::kAuto, input.size(), encoded.size()));
}

TEST(Bf16RoundTrip, AllExponentsDistinctIsLosslessButNotSmaller) {
  std::vector<uint16_t> values(70000);
  for (size_t i = 0; i < values.size(); ++i) {
    values[i] = static_cast<uint16_t>(((i % 256) << 7) | ((i * 37) & 0x7F) | ((i & 256) << 7));
  }
  const std::vector<uint8_t> input = AsBytes(values);
  const std::vector<uint8_t> encoded = RoundTrip(input);
  EXPECT_EQ(8, Layout(encoded).header.code_bits);
  EXPECT_GE(encoded.size(), input.size());
  EXPECT_FALSE(KeepEncoding(Compression::kAuto, input.size(), encoded.size()));
  EXPECT_TRUE(KeepEncoding(Compression::kBf16, input.size(), encoded.size()));
}

TEST(Bf16RoundTrip, SpecialValuesSurviveBitForBit) {
  std::vector<uint16_t> values = {
      0x0000, 0x8000,                  // +0, -0
      0x7F80, 0xFF80,                  // +inf, -inf
      0x7FC0, 0xFFC0, 0x7FC1, 0x7F81,  // quiet NaNs, a payload, a signalling NaN
      0xFFFF, 0x7FFF,                  // NaNs with every mantissa bit set
      0x0001, 0x8001, 0x007F, 0x0040,  // denormals
      0x0080, 0x7F7F, 0xFF7F,          // smallest normal, largest finite
  };
  for (int copy = 0; copy < 5; ++copy) {
    for (int i = 0; i < 17; ++i) values.push_back(values[(copy * 7 + i) % 17]);
  }
  for (int bits = -1; bits <= 8; ++bits) {
    SCOPED_TRACE(bits);
    Bf16EncodeOptions options;
    options.code_bits = bits;
    RoundTrip(AsBytes(values), options);
  }
}

TEST(Bf16RoundTrip, RareExponentsTravelAsEscapes) {
  std::vector<uint8_t> input = NormalBf16(100000, 0.02f, 3);
  std::vector<uint16_t> values(input.size() / 2);
  std::memcpy(values.data(), input.data(), input.size());
  values[5] = 0x7F80;          // inf
  values[40000] = 0x7FC3;      // NaN
  values[99999] = ToBf16(1e30f);
  values[65536] = 0x0003;      // denormal
  Bf16EncodeOptions options;
  options.code_bits = 3;
  const std::vector<uint8_t> encoded = RoundTrip(AsBytes(values), options);
  EXPECT_GE(Layout(encoded).header.escape_count, 4u);
}

TEST(Bf16RoundTrip, EveryCodeWidthAndChunkSize) {
  const std::vector<uint8_t> input = NormalBf16(20011, 0.05f, 11);
  for (uint32_t chunk : {8u, 24u, 1000u, 16384u, 65536u}) {
    for (int bits = 0; bits <= 8; ++bits) {
      SCOPED_TRACE(std::to_string(chunk) + " values per chunk, " + std::to_string(bits) + " bits");
      Bf16EncodeOptions options;
      options.chunk_values = chunk;
      options.code_bits = bits;
      RoundTrip(input, options);
    }
  }
}

TEST(Bf16RoundTrip, BlockSmallerThanAChunk) {
  const std::vector<uint8_t> input = NormalBf16(1000, 0.02f, 5);
  const std::vector<uint8_t> encoded = RoundTrip(input);
  EXPECT_EQ(1u, Layout(encoded).chunk_count());
  std::vector<uint8_t> odd = input;
  odd.push_back(0xAB);
  RoundTrip(odd);
}

// Runs of chunks decode independently into their part of the output: what
// the transfer engine does with one staging slot at a time.
TEST(Bf16RoundTrip, RunsOfChunksDecodeIndependently) {
  std::vector<uint8_t> input = NormalBf16(50003, 0.02f, 9);
  input.push_back(0x5A);
  Bf16EncodeOptions options;
  options.chunk_values = 1024;
  Result<std::vector<uint8_t>> encoded = EncodeBf16(input.data(), input.size(), options);
  ASSERT_TRUE(encoded.ok());
  const Bf16Layout layout = Layout(*encoded);
  ASSERT_EQ(49u, layout.chunk_count());
  std::vector<uint8_t> output(input.size(), 0);
  uint64_t output_offset = 0;
  for (uint32_t first = 0; first < layout.chunk_count(); first += 5) {
    const uint32_t count = std::min(5u, layout.chunk_count() - first);
    // The run's directory entries and records, copied out as a staging slot would hold them.
    std::vector<uint64_t> directory(count + 1);
    std::memcpy(directory.data(), encoded->data() + layout.directory_offset + 8 * first, 8 * (count + 1));
    const uint64_t start = Bf16RecordOffset(layout, encoded->data(), first);
    const uint64_t end = Bf16RecordOffset(layout, encoded->data(), first + count);
    std::vector<uint64_t> records((end - start) / 8);
    std::memcpy(records.data(), encoded->data() + start, end - start);
    const uint64_t run_bytes = Bf16DecodedRunBytes(layout, first, count);
    Result<Bf16DecodeJob> job = MakeBf16DecodeJob(layout, first, count, directory.data(), records.data(),
                                                  end - start, output.data() + output_offset, run_bytes);
    ASSERT_TRUE(job.ok()) << job.status().ToString();
    ASSERT_TRUE(DecodeBf16Chunks(*job).ok());
    output_offset += run_bytes;
  }
  EXPECT_EQ(input.size(), output_offset);
  EXPECT_TRUE(output == input);
}

TEST(Bf16RoundTrip, BadArgumentsAreErrors) {
  const std::vector<uint8_t> input = NormalBf16(100, 0.02f, 1);
  Bf16EncodeOptions options;
  for (uint32_t chunk : {0u, 7u, 12u, 65544u}) {
    options.chunk_values = chunk;
    EXPECT_EQ(ErrorCode::kInvalidArgument, EncodeBf16(input.data(), input.size(), options).status().code());
  }
  options = {};
  options.code_bits = 9;
  EXPECT_EQ(ErrorCode::kInvalidArgument, EncodeBf16(input.data(), input.size(), options).status().code());
  EXPECT_EQ(ErrorCode::kInvalidArgument, EncodeBf16(nullptr, 10).status().code());
  Result<std::vector<uint8_t>> encoded = EncodeBf16(input.data(), input.size());
  ASSERT_TRUE(encoded.ok());
  std::vector<uint8_t> small(input.size() - 1);
  EXPECT_EQ(ErrorCode::kInvalidArgument,
            DecodeBf16(encoded->data(), encoded->size(), small.data(), small.size()).code());
  const Bf16Layout layout = Layout(*encoded);
  std::vector<uint64_t> aligned(encoded->size() / 8 + 2);
  auto* bytes = reinterpret_cast<uint8_t*>(aligned.data());
  std::vector<uint8_t> out(input.size());
  EXPECT_EQ(ErrorCode::kInvalidArgument,
            MakeBf16DecodeJob(layout, 0, 1, bytes + 4, bytes, 64, out.data(), out.size()).status().code());
  EXPECT_EQ(ErrorCode::kInvalidArgument,
            MakeBf16DecodeJob(layout, 0, 2, bytes, bytes, 64, out.data(), out.size()).status().code());
  EXPECT_EQ(ErrorCode::kInvalidArgument,
            MakeBf16DecodeJob(layout, 0, 1, bytes, bytes + 3, 64, out.data(), out.size()).status().code());
}

TEST(Compression, ParsesItsThreeModesAndAutoKeepsOnlyATenthSaved) {
  EXPECT_EQ(Compression::kOff, *ParseCompression("off"));
  EXPECT_EQ(Compression::kBf16, *ParseCompression("bf16"));
  EXPECT_EQ(Compression::kAuto, *ParseCompression("auto"));
  EXPECT_EQ(ErrorCode::kInvalidArgument, ParseCompression("zstd").status().code());
  EXPECT_STREQ("auto", CompressionName(Compression::kAuto));
  EXPECT_TRUE(KeepEncoding(Compression::kAuto, 1000, 900));
  EXPECT_FALSE(KeepEncoding(Compression::kAuto, 1000, 901));
  EXPECT_FALSE(KeepEncoding(Compression::kOff, 1000, 1));
  EXPECT_TRUE(KeepEncoding(Compression::kBf16, 1000, 2000));
}

}  // namespace
}  // namespace tiercache::codec
