// Malformed encodings: whatever the bytes, the parser, the validator and the
// decoder return an error or succeed; they never read or write outside their
// buffers (each sits right before an inaccessible page, and the ASan preset
// runs these tests too). Two threat models:
// - host bytes nobody checked yet: ValidateBf16 either refuses them
//   (kCorruption) or DecodeBf16 decodes them without error;
// - a job made from a good layout over device bytes that went bad after
//   validation (the kernel's situation): DecodeBf16Chunks stays in bounds
//   and reports the damage through its status and job.error.
#include <gtest/gtest.h>

#include <random>

#include "codec/bf16_decoder.h"
#include "codec/bf16_encoder.h"
#include "codec/bf16_format.h"
#include "tests/codec/codec_test_util.h"

namespace tiercache::codec {
namespace {

using tiercache::testing::GuardedBuffer;
using tiercache::testing::NormalBf16;

constexpr int kIterations = 4000;

std::vector<uint8_t> Sample(uint32_t seed) {
  std::vector<uint8_t> input = NormalBf16(3001 + seed % 7, 0.02f, seed);
  std::mt19937 rng(seed);
  auto* values = reinterpret_cast<uint16_t*>(input.data());
  for (int i = 0; i < 20; ++i) values[rng() % (input.size() / 2)] = static_cast<uint16_t>(rng());
  if (seed & 1) input.push_back(0x33);
  return input;
}

// One random damage: flipped bytes, a stored field set to an extreme, or a
// truncation/extension. Biased towards the header and directory, where the
// sizes live.
void Damage(std::vector<uint8_t>* bytes, const Bf16Layout& layout, std::mt19937& rng) {
  const int kind = rng() % 5;
  const size_t size = bytes->size();
  auto pick = [&](size_t lo, size_t hi) { return lo + rng() % std::max<size_t>(1, hi - lo); };
  switch (kind) {
    case 0:  // header
      (*bytes)[pick(0, kBf16HeaderBytes)] ^= static_cast<uint8_t>(1u << (rng() % 8));
      break;
    case 1: {  // a directory entry, or a record header word, set to an extreme
      const uint64_t values[] = {0, 1, 7, 8, UINT64_MAX, UINT64_MAX - 7, 1ull << 40,
                                 layout.header.records_bytes, layout.header.records_bytes + 8};
      const uint64_t v = values[rng() % 9];
      const size_t at = pick(layout.directory_offset, size - 8) & ~size_t{3};
      std::memcpy(bytes->data() + at, &v, (rng() & 1) ? 8 : 4);
      break;
    }
    case 2:  // anywhere, a few bytes
      for (int i = 0, n = 1 + rng() % 4; i < n; ++i) (*bytes)[pick(0, size)] = static_cast<uint8_t>(rng());
      break;
    case 3:  // truncated or extended
      bytes->resize((rng() & 1) ? pick(0, size) : size + 1 + rng() % 16, 0);
      break;
    default: {  // an escape's position pushed past its chunk
      const uint32_t v = 0xFFFFu | ((rng() % 256) << 16);
      const size_t at = pick(layout.records_offset, size - 4) & ~size_t{3};
      std::memcpy(bytes->data() + at, &v, 4);
      break;
    }
  }
}

TEST(Bf16Fuzz, DamagedHostBytesAreRefusedOrDecodeCleanly) {
  int refused = 0, accepted = 0;
  for (int iteration = 0; iteration < kIterations; ++iteration) {
    std::mt19937 rng(iteration);
    const std::vector<uint8_t> input = Sample(iteration);
    Bf16EncodeOptions options;
    options.chunk_values = 8 * (1 + rng() % 200);
    options.code_bits = static_cast<int>(rng() % 10) - 1;
    Result<std::vector<uint8_t>> encoded = EncodeBf16(input.data(), input.size(), options);
    ASSERT_TRUE(encoded.ok());
    const Bf16Layout layout = *ParseBf16(encoded->data(), encoded->size());
    std::vector<uint8_t> damaged = *encoded;
    Damage(&damaged, layout, rng);
    GuardedBuffer source(damaged);
    Status valid = ValidateBf16(source.data(), source.size());
    if (!valid.ok()) {
      ASSERT_EQ(ErrorCode::kCorruption, valid.code()) << valid.ToString();
      ++refused;
      continue;
    }
    ++accepted;
    Result<Bf16Layout> parsed = ParseBf16(source.data(), source.size());
    ASSERT_TRUE(parsed.ok());
    GuardedBuffer output(parsed->decoded_bytes());
    Status decoded = DecodeBf16(source.data(), source.size(), output.data(), output.size());
    ASSERT_TRUE(decoded.ok()) << "validated bytes failed to decode: " << decoded.ToString();
  }
  EXPECT_GT(refused, kIterations / 4);
  EXPECT_GT(accepted, 0);  // damage to values only: still a well-formed encoding
}

TEST(Bf16Fuzz, DamagedRecordsUnderAGoodJobStayInBounds) {
  int reported = 0;
  for (int iteration = 0; iteration < kIterations; ++iteration) {
    std::mt19937 rng(iteration + 1000000);
    const std::vector<uint8_t> input = Sample(iteration);
    Bf16EncodeOptions options;
    options.chunk_values = 8 * (1 + rng() % 100);
    Result<std::vector<uint8_t>> encoded = EncodeBf16(input.data(), input.size(), options);
    ASSERT_TRUE(encoded.ok());
    const Bf16Layout layout = *ParseBf16(encoded->data(), encoded->size());
    std::vector<uint8_t> damaged = *encoded;
    // Damage only what the device holds (directory and records), size kept.
    for (int i = 0, n = 1 + rng() % 3; i < n; ++i) {
      const size_t at = layout.directory_offset + rng() % (damaged.size() - layout.directory_offset - 4);
      uint32_t v = (rng() & 1) ? static_cast<uint32_t>(rng()) : 0xFFFFFFFFu;
      std::memcpy(damaged.data() + (at & ~size_t{3}), &v, 4);
    }
    // The encoding's size is a multiple of 8, so the guarded copy stays aligned.
    ASSERT_EQ(0u, damaged.size() % 8);
    GuardedBuffer device(damaged);
    GuardedBuffer output(layout.decoded_bytes());
    uint32_t error = 0;
    Result<Bf16DecodeJob> job =
        MakeBf16DecodeJob(layout, 0, layout.chunk_count(), device.data() + layout.directory_offset,
                          device.data() + layout.records_offset, layout.header.records_bytes,
                          output.data(), output.size());
    ASSERT_TRUE(job.ok()) << job.status().ToString();
    job->error = &error;
    Status decoded = DecodeBf16Chunks(*job);
    ASSERT_EQ(decoded.ok(), error == 0) << decoded.ToString();
    if (!decoded.ok()) {
      ASSERT_EQ(ErrorCode::kCorruption, decoded.code());
      ++reported;
    }
  }
  EXPECT_GT(reported, kIterations / 10);
}

TEST(Bf16Fuzz, GarbageIsRefused) {
  std::mt19937 rng(42);
  for (int iteration = 0; iteration < kIterations; ++iteration) {
    std::vector<uint8_t> bytes = tiercache::testing::RandomBytes(rng() % 300, iteration);
    if (bytes.size() >= 4 && (iteration & 1)) std::memcpy(bytes.data(), &kBf16Magic, 4);
    GuardedBuffer source(bytes);
    Status valid = ValidateBf16(source.data(), source.size());
    ASSERT_FALSE(valid.ok());
    ASSERT_EQ(ErrorCode::kCorruption, valid.code());
    std::vector<uint8_t> out(1024);
    ASSERT_FALSE(DecodeBf16(source.data(), source.size(), out.data(), out.size()).ok());
  }
  EXPECT_EQ(ErrorCode::kInvalidArgument, ParseBf16(nullptr, 10).status().code());
}

}  // namespace
}  // namespace tiercache::codec
