#include "tiers/pmem_checksum.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace tiercache {
namespace {

// Published CRC32C check values (RFC 3720 appendix B.4 and the usual
// "123456789" check), run through both implementations.
TEST(Crc32c, MatchesPublishedCheckValues) {
  const std::string digits = "123456789";
  std::vector<unsigned char> zeros(32, 0x00), ones(32, 0xFF), ascending(32);
  for (int i = 0; i < 32; ++i) ascending[i] = static_cast<unsigned char>(i);
  for (auto* crc : {&Crc32c, &Crc32cPortable}) {
    EXPECT_EQ(0xE3069283u, crc(digits.data(), digits.size(), 0));
    EXPECT_EQ(0x8A9136AAu, crc(zeros.data(), zeros.size(), 0));
    EXPECT_EQ(0x62A8AB43u, crc(ones.data(), ones.size(), 0));
    EXPECT_EQ(0x46DD794Eu, crc(ascending.data(), ascending.size(), 0));
    EXPECT_EQ(0u, crc(nullptr, 0, 0));
  }
}

TEST(Crc32c, ChainsAcrossSplits) {
  std::vector<unsigned char> data(10000);
  std::mt19937 rng(7);
  for (auto& b : data) b = static_cast<unsigned char>(rng());
  const uint32_t whole = Crc32c(data.data(), data.size());
  for (size_t split : {0ul, 1ul, 7ul, 8ul, 9ul, 4095ul, 9999ul, 10000ul}) {
    EXPECT_EQ(whole, Crc32c(data.data() + split, data.size() - split, Crc32c(data.data(), split)))
        << "split at " << split;
  }
}

TEST(Crc32c, AcceleratedPathAgreesWithTheTableAtEveryAlignment) {
  std::vector<unsigned char> data(70000);
  std::mt19937 rng(11);
  for (auto& b : data) b = static_cast<unsigned char>(rng());
  for (size_t start = 0; start < 16; ++start) {
    // Lengths around the three-stream block sizes (3 x 256 and 3 x 8192).
    for (size_t length : {0ul, 1ul, 3ul, 8ul, 15ul, 64ul, 767ul, 768ul, 775ul, 1000ul, 24575ul,
                          24576ul, 24583ul, 49152ul + 768ul + 9ul, 65536ul}) {
      ASSERT_EQ(Crc32cPortable(data.data() + start, length),
                Crc32c(data.data() + start, length))
          << "start " << start << " length " << length;
    }
  }
  SUCCEED() << "hardware crc32: " << (Crc32cIsHardwareAccelerated() ? "yes" : "no");
}

TEST(Crc32c, DetectsEverySingleBitFlip) {
  std::vector<unsigned char> data(512);
  std::mt19937 rng(3);
  for (auto& b : data) b = static_cast<unsigned char>(rng());
  const uint32_t clean = Crc32c(data.data(), data.size());
  for (size_t bit = 0; bit < data.size() * 8; ++bit) {
    data[bit / 8] ^= static_cast<unsigned char>(1u << (bit % 8));
    ASSERT_NE(clean, Crc32c(data.data(), data.size())) << "bit " << bit;
    data[bit / 8] ^= static_cast<unsigned char>(1u << (bit % 8));
  }
}

}  // namespace
}  // namespace tiercache
