// ChecksumBytes / ChecksumCombine: the standard CRC32C, the same value
// whether a range is checksummed serially, in chained pieces, or (8 MiB and
// more) in parallel pieces combined.
#include "runtime/checksum.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

namespace tiercache {
namespace {

std::vector<unsigned char> Random(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<unsigned char> v(n);
  for (auto& b : v) b = static_cast<unsigned char>(rng());
  return v;
}

// CRC32C chained over pieces below the parallel threshold.
uint32_t Chained(const unsigned char* p, size_t n, size_t piece, uint32_t crc = 0) {
  for (size_t at = 0; at < n; at += piece) crc = ChecksumBytes(p + at, std::min(piece, n - at), crc);
  return crc;
}

TEST(ChecksumTest, StandardCheckValue) {
  EXPECT_EQ(0xE3069283u, ChecksumBytes("123456789", 9));
  EXPECT_EQ(0u, ChecksumBytes("", 0));
}

TEST(ChecksumTest, CombineJoinsAnySplit) {
  const std::vector<unsigned char> data = Random(100000, 1);
  const uint32_t whole = ChecksumBytes(data.data(), data.size());
  std::mt19937 rng(2);
  for (int i = 0; i < 50; ++i) {
    const size_t split = rng() % (data.size() + 1);
    const uint32_t a = ChecksumBytes(data.data(), split);
    const uint32_t b = ChecksumBytes(data.data() + split, data.size() - split);
    EXPECT_EQ(whole, ChecksumCombine(a, b, data.size() - split)) << split;
  }
  EXPECT_EQ(whole, ChecksumCombine(0, whole, data.size()));  // an empty A
}

TEST(ChecksumTest, LargeRangesGiveTheSerialValue) {
  for (size_t n : {size_t{8} << 20, (size_t{8} << 20) + 1, (size_t{37} << 20) + 12345}) {
    const std::vector<unsigned char> data = Random(n, static_cast<uint32_t>(n));
    EXPECT_EQ(Chained(data.data(), n, 1 << 20), ChecksumBytes(data.data(), n)) << n;
    EXPECT_EQ(Chained(data.data(), n, 1 << 20, 0x12345678u), ChecksumBytes(data.data(), n, 0x12345678u)) << n;
  }
  std::vector<unsigned char> data = Random(16 << 20, 9);
  const uint32_t before = ChecksumBytes(data.data(), data.size());
  data[(9 << 20) + 3] ^= 1;  // one bit in a later piece
  EXPECT_NE(before, ChecksumBytes(data.data(), data.size()));
}

}  // namespace
}  // namespace tiercache
