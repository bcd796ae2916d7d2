// Compressed blocks in the cache: registered with compression=bf16 (or
// auto), stored encoded in the DRAM home, and acquired decoded, bit for bit,
// in stream order, through the transfer engine's encoded path; their stats
// say what was stored and moved.
#include <gtest/gtest.h>

#include "runtime/block_cache.h"
#include "tests/codec/codec_test_util.h"
#include "tests/runtime/runtime_test_util.h"
#include "tiers/memory_tier.h"

namespace tiercache::testing {
namespace {

RuntimeConfig CompressedConfig(const char* mode) {
  RuntimeConfig config = SmallConfig();
  config.compression = mode;
  config.dram_bytes = 16 * kMiB;
  return config;
}

TEST(CompressedBlock, AcquireDeliversTheBytesDecodedInStreamOrder) {
  CacheRig rig(CompressedConfig("bf16"), 64 * kMiB, std::chrono::microseconds(500));
  const std::vector<uint8_t> weights = NormalBf16(1 << 20, 0.02f, 1);  // 2 MiB
  Result<BlockId> id = rig.cache->RegisterFromBuffer("w", weights.data(), weights.size(), rig.dram.get());
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_EQ(weights.size(), rig.cache->Info(*id)->bytes);
  CodecStats stats = rig.cache->codec_stats();
  EXPECT_EQ(1u, stats.blocks);
  EXPECT_EQ(weights.size(), stats.raw_bytes);
  EXPECT_LT(stats.stored_bytes, weights.size() * 3 / 4);
  EXPECT_LT(rig.dram->used(), weights.size());  // the home holds the encoding
  Result<void*> ptr = rig.cache->Acquire(*id, rig.stream);
  ASSERT_TRUE(ptr.ok()) << ptr.status().ToString();
  EXPECT_TRUE(rig.ReadBack(*ptr, weights.size()) == std::vector<unsigned char>(weights.begin(), weights.end()));
  ASSERT_TRUE(rig.cache->Release(*id, rig.stream).ok());
  stats = rig.cache->codec_stats();
  EXPECT_EQ(1u, stats.uploads);
  EXPECT_EQ(weights.size(), stats.decoded_bytes);
  EXPECT_LT(stats.moved_bytes, weights.size() * 3 / 4);
  EXPECT_GE(stats.runs, 2u);  // 1 MiB staging slots: more than one run
}

TEST(CompressedBlock, EvictedAndReacquiredBlocksStayExact) {
  RuntimeConfig config = CompressedConfig("auto");
  config.gpu_cache_bytes = 5 * kMiB;  // two of the four blocks
  CacheRig rig(config, 64 * kMiB);
  std::vector<std::vector<uint8_t>> blocks;
  std::vector<BlockId> ids;
  for (uint32_t i = 0; i < 4; ++i) {
    blocks.push_back(NormalBf16((1 << 20) + 3 * i, 0.01f * (i + 1), 10 + i));
    ids.push_back(*rig.cache->RegisterFromBuffer("b" + std::to_string(i), blocks[i].data(), blocks[i].size(),
                                                 rig.dram.get()));
  }
  EXPECT_EQ(4u, rig.cache->codec_stats().blocks);
  for (int pass = 0; pass < 3; ++pass) {
    for (uint32_t i = 0; i < 4; ++i) {
      Result<void*> ptr = rig.cache->Acquire(ids[i], rig.stream);
      ASSERT_TRUE(ptr.ok()) << ptr.status().ToString();
      ASSERT_TRUE(rig.ReadBack(*ptr, blocks[i].size()) ==
                  std::vector<unsigned char>(blocks[i].begin(), blocks[i].end()))
          << "pass " << pass << " block " << i;
      ASSERT_TRUE(rig.cache->Release(ids[i], rig.stream).ok());
    }
  }
  EXPECT_GE(rig.cache->codec_stats().uploads, 8u);  // evictions made it re-upload
  ASSERT_TRUE(rig.cache->Unregister(ids[0]).ok());
  EXPECT_EQ(3u, rig.cache->codec_stats().blocks);
}

TEST(CompressedBlock, AutoStoresIncompressibleBytesAsGivenAndOffNeverEncodes) {
  CacheRig rig(CompressedConfig("auto"), 64 * kMiB);
  const std::vector<uint8_t> noise = RandomBytes(1 << 20, 5);
  Result<BlockId> id = rig.cache->RegisterFromBuffer("noise", noise.data(), noise.size(), rig.dram.get());
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(0u, rig.cache->codec_stats().blocks);
  const std::vector<uint8_t> weights = NormalBf16(1 << 19, 0.02f, 6);
  ASSERT_TRUE(rig.cache->RegisterFromBuffer("plain", weights.data(), weights.size(), rig.dram.get(), kNoGroup,
                                            codec::Compression::kOff).ok());
  EXPECT_EQ(0u, rig.cache->codec_stats().blocks);
  Result<void*> ptr = rig.cache->Acquire(*id, rig.stream);
  ASSERT_TRUE(ptr.ok());
  EXPECT_TRUE(rig.ReadBack(*ptr, noise.size()) == std::vector<unsigned char>(noise.begin(), noise.end()));
  ASSERT_TRUE(rig.cache->Release(*id, rig.stream).ok());
  EXPECT_EQ(0u, rig.cache->codec_stats().uploads);
}

TEST(CompressedBlock, Bf16NeedsTheDramHomeAndBadModesAreRefused) {
  CacheRig rig(CompressedConfig("off"), 64 * kMiB);
  MemoryTier* other = rig.Adopt(MemoryTier::Create("other", 8 * kMiB).value());
  const std::vector<uint8_t> weights = NormalBf16(1 << 18, 0.02f, 7);
  EXPECT_EQ(ErrorCode::kUnsupported,
            rig.cache->RegisterFromBuffer("w", weights.data(), weights.size(), other, kNoGroup,
                                          codec::Compression::kBf16).status().code());
  Result<BlockId> fallback = rig.cache->RegisterFromBuffer("w", weights.data(), weights.size(), other, kNoGroup,
                                                           codec::Compression::kAuto);
  ASSERT_TRUE(fallback.ok());
  EXPECT_EQ(0u, rig.cache->codec_stats().blocks);
  RuntimeConfig bad = SmallConfig();
  bad.compression = "zstd";
  EXPECT_EQ(ErrorCode::kInvalidArgument, ValidateConfig(bad).code());
  EXPECT_TRUE(SetConfigField("compression", "auto", &bad).ok());
  EXPECT_TRUE(ValidateConfig(bad).ok());
}

}  // namespace
}  // namespace tiercache::testing
