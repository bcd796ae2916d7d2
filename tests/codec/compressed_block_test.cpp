// Compressed blocks in the cache: registered with compression=bf16 (or
// auto), stored encoded in their home (DRAM, NVMe, PMEM), and acquired
// decoded, bit for bit, in stream order, through the transfer engine's
// encoded paths (in place from pinned DRAM, piece by piece through the
// staging ring from any other home); their stats say what was stored and
// moved.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <memory>
#include <string>
#include <vector>

#include "codec/bf16_encoder.h"
#include "codec/bf16_format.h"
#include "runtime/block_cache.h"
#include "tests/codec/codec_test_util.h"
#include "tests/runtime/runtime_test_util.h"
#include "tiers/memory_tier.h"

namespace tiercache::testing {
namespace {

// Acquires `id`, compares the device bytes with `want`, releases it.
::testing::AssertionResult AcquireHolds(CacheRig& rig, BlockId id, const std::vector<uint8_t>& want) {
  Result<void*> ptr = rig.cache->Acquire(id, rig.stream);
  if (!ptr.ok()) return ::testing::AssertionFailure() << "acquire: " << ptr.status().ToString();
  const bool same = rig.ReadBack(*ptr, want.size()) == std::vector<unsigned char>(want.begin(), want.end());
  Status released = rig.cache->Release(id, rig.stream);
  if (!released.ok()) return ::testing::AssertionFailure() << "release: " << released.ToString();
  if (!same) return ::testing::AssertionFailure() << "the bytes differ";
  return ::testing::AssertionSuccess();
}

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
      ASSERT_TRUE(AcquireHolds(rig, ids[i], blocks[i])) << "pass " << pass << " block " << i;
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

TEST(CompressedBlock, BadModesAreRefused) {
  RuntimeConfig bad = SmallConfig();
  bad.compression = "zstd";
  EXPECT_EQ(ErrorCode::kInvalidArgument, ValidateConfig(bad).code());
  EXPECT_TRUE(SetConfigField("compression", "auto", &bad).ok());
  EXPECT_TRUE(ValidateConfig(bad).ok());
}

// Sizes that put the staged path through its corners with 64 KiB pieces
// (records of about 22.5 KiB, so records straddle pieces): a block with no
// whole chunk (tail only), exactly one chunk, one chunk and a tail, a
// prefix longer than a piece is not possible at these sizes but records
// split across pieces are, and an odd byte at the end.
const std::vector<size_t> kStagedSizes = {1, 1000, 32768, 32768 + 7, 100001, (1u << 20) + 5, (2u << 20) + 3};

// Registers kStagedSizes blocks of trained-like bf16 on `home` with
// compression=bf16, acquires each `passes` times through a GPU cache too
// small for all (so they are evicted and re-read), checking every byte.
void ServeEncodedBlocks(CacheRig& rig, Tier* home, int passes) {
  std::vector<std::vector<uint8_t>> blocks;
  std::vector<BlockId> ids;
  uint64_t raw = 0;
  for (size_t i = 0; i < kStagedSizes.size(); ++i) {
    blocks.push_back(NormalBf16(kStagedSizes[i] / 2, 0.02f, 40 + static_cast<uint32_t>(i)));
    if (kStagedSizes[i] % 2 != 0) blocks.back().push_back(0x5A);
    Result<BlockId> id = rig.cache->RegisterFromBuffer("s" + std::to_string(i), blocks[i].data(),
                                                       blocks[i].size(), home, kNoGroup,
                                                       codec::Compression::kBf16);
    ASSERT_TRUE(id.ok()) << id.status().ToString();
    ids.push_back(*id);
    raw += blocks[i].size();
  }
  const CodecStats registered = rig.cache->codec_stats();
  EXPECT_EQ(kStagedSizes.size(), registered.blocks);
  EXPECT_LT(registered.stored_bytes, raw * 3 / 4) << "the home holds the encodings";
  for (int pass = 0; pass < passes; ++pass) {
    for (size_t i = 0; i < ids.size(); ++i) {
      ASSERT_TRUE(AcquireHolds(rig, ids[i], blocks[i])) << "pass " << pass << " block " << i;
    }
  }
  ASSERT_TRUE(rig.cache->Drain().ok());
  const CodecStats served = rig.cache->codec_stats();
  EXPECT_GT(served.uploads, ids.size()) << "evictions made blocks come back from home";
  EXPECT_LT(served.moved_bytes, served.decoded_bytes * 3 / 4);
  // The home link carried encodings only.
  const TierTraffic home_stats = rig.cache->stats().Snapshot(rig.cache->StatsSlotOf(home));
  EXPECT_EQ(0u, home_stats.errors);
  EXPECT_LT(home_stats.bytes_out, served.decoded_bytes * 3 / 4);
  // Per tier: the uploads and bytes add up, the home's entry is its traffic.
  uint64_t uploads = 0, decoded = 0;
  const CodecTierStats* from_home = nullptr;
  for (const CodecTierStats& t : served.tiers) {
    uploads += t.uploads;
    decoded += t.decoded_bytes;
    EXPECT_GT(t.upload_ns, 0u) << t.tier;
    EXPECT_GT(t.decoded_gbps(), 0.0) << t.tier;
    if (t.tier == home->name()) from_home = &t;
  }
  EXPECT_EQ(served.uploads, uploads);
  EXPECT_EQ(served.decoded_bytes, decoded);
  ASSERT_NE(nullptr, from_home);
  EXPECT_EQ(home_stats.bytes_out, from_home->moved_bytes);
  EXPECT_EQ(1u, served.tiers.size()) << "no DRAM copies here";
}

RuntimeConfig SmallGpuConfig() {
  RuntimeConfig config = CompressedConfig("off");
  config.gpu_cache_bytes = 3 * kMiB;  // less than the 3.2 MiB of kStagedSizes: evictions every pass
  // Every upload from the home itself (DRAM copies have their own test), so
  // the home's traffic is exactly the uploads' encodings.
  config.dram_prefetch_lookahead = 0;
  return config;
}

TEST(CompressedBlock, NvmeHomedBlocksArriveExactThroughStagedPieces) {
  CacheRig rig(SmallGpuConfig(), 64 * kMiB, std::chrono::microseconds(200));
  FaultyTier* nvme = rig.Adopt(std::make_unique<FaultyTier>("nvme", 16 * kMiB));
  ServeEncodedBlocks(rig, nvme, 3);
}

TEST(CompressedBlock, PmemLikeHomesWithHostAddressesAreStagedToo) {
  // Host-addressable but not registered with the device: not direct, so
  // read through the staging ring like NVMe.
  CacheRig rig(SmallGpuConfig(), 64 * kMiB);
  MemoryTier* pmem = rig.Adopt(MemoryTier::Create("pmem", 16 * kMiB).value());
  ServeEncodedBlocks(rig, pmem, 2);
}

TEST(CompressedBlock, CorruptedPiecesAreRereadOrReportedNeverDecoded) {
  CacheRig rig(SmallGpuConfig(), 64 * kMiB);
  FaultyTier* nvme = rig.Adopt(std::make_unique<FaultyTier>("nvme", 16 * kMiB));
  const std::vector<uint8_t> weights = NormalBf16(600000, 0.02f, 9);  // 1.2 MB: 13 pieces
  std::vector<BlockId> ids;
  for (int i = 0; i < 2; ++i) {
    ids.push_back(*rig.cache->RegisterFromBuffer("c" + std::to_string(i), weights.data(), weights.size(), nvme,
                                                 kNoGroup, codec::Compression::kBf16));
  }
  const std::vector<unsigned char> expect(weights.begin(), weights.end());
  // Registration took the encoding's checksums: a corrupted piece is
  // caught and read again.
  nvme->FailNextReads(1, FaultAction::kCorruptRead);
  Result<void*> ptr = rig.cache->Acquire(ids[0], rig.stream);
  ASSERT_TRUE(ptr.ok()) << ptr.status().ToString();
  EXPECT_TRUE(rig.ReadBack(*ptr, weights.size()) == expect);
  EXPECT_EQ(1u, nvme->faults_injected());
  ASSERT_TRUE(rig.cache->Release(ids[0], rig.stream).ok());
  // Every read corrupted: the acquire fails, nothing is left held or on the GPU.
  nvme->FailNextReads(-1, FaultAction::kCorruptRead);
  EXPECT_EQ(ErrorCode::kCorruption, rig.cache->Acquire(ids[1], rig.stream).status().code());
  EXPECT_FALSE(rig.cache->Info(ids[1])->on_gpu);
  EXPECT_EQ(0u, rig.cache->Info(ids[1])->pins);
  nvme->Heal();
  EXPECT_TRUE(AcquireHolds(rig, ids[1], weights));
}

TEST(CompressedBlock, DramCopiesOfSlowHomedBlocksHoldTheEncoding) {
  RuntimeConfig config = SmallGpuConfig();
  config.gpu_policy = "next-use";
  config.prefetch_lookahead = 0;
  config.dram_prefetch_lookahead = 8;
  CacheRig rig(config, 64 * kMiB);
  FaultyTier* nvme = rig.Adopt(std::make_unique<FaultyTier>("nvme", 32 * kMiB));
  std::vector<std::vector<uint8_t>> blocks;
  std::vector<BlockId> ids;
  for (uint32_t i = 0; i < 4; ++i) {
    blocks.push_back(NormalBf16(1 << 19, 0.02f, 60 + i));  // 1 MiB each
    ids.push_back(*rig.cache->RegisterFromBuffer("d" + std::to_string(i), blocks[i].data(), blocks[i].size(),
                                                 nvme, kNoGroup, codec::Compression::kBf16));
  }
  const uint64_t dram_before = rig.dram->used();  // the staging ring's slots
  CyclePredictor predictor(ids, /*depth=*/0);  // only DRAM staging reads ahead
  rig.cache->SetPredictor(&predictor);
  auto serve = [&](int pass) {
    for (size_t i = 0; i < ids.size(); ++i) {
      ASSERT_TRUE(AcquireHolds(rig, ids[i], blocks[i])) << "pass " << pass << " block " << i;
      ASSERT_TRUE(rig.cache->Drain().ok());
    }
  };
  serve(0);
  serve(1);
  int staged = 0;
  for (BlockId id : ids) staged += rig.cache->Info(id)->in_dram ? 1 : 0;
  EXPECT_GE(staged, 2) << "the predicted next blocks were staged into DRAM";
  // The DRAM copies are the encodings: far less than the blocks' size.
  EXPECT_LT(rig.dram->used() - dram_before, staged * (1u << 20) * 3 / 4);
  const uint64_t dram_hits = rig.cache->stats().Snapshot(rig.cache->StatsSlotOf(rig.dram.get())).hits;
  serve(2);
  serve(3);
  EXPECT_GT(rig.cache->stats().Snapshot(rig.cache->StatsSlotOf(rig.dram.get())).hits, dram_hits)
      << "acquires were served (decoded) from the DRAM copies";
  std::vector<std::string> tiers;
  for (const CodecTierStats& t : rig.cache->codec_stats().tiers) tiers.push_back(t.tier);
  EXPECT_NE(tiers.end(), std::find(tiers.begin(), tiers.end(), rig.dram->name()));
  EXPECT_NE(tiers.end(), std::find(tiers.begin(), tiers.end(), "nvme"));
  rig.cache->SetPredictor(nullptr);
}

// With checksums off, damaged encodings on the home reach the staged parser
// and the uploader as they are: each acquire either delivers (the decoder
// stays in bounds whatever the records hold) or fails with a clear error,
// never a crash or an out-of-bounds access (the sanitizer builds run this),
// and the block comes back intact once its home is repaired.
TEST(CompressedBlock, DamagedEncodingsOnAHomeWithoutChecksumsNeverCrash) {
  RuntimeConfig config = SmallGpuConfig();
  config.verify_checksums = false;
  CacheRig rig(config, 64 * kMiB);
  auto* nvme = rig.Adopt(std::make_unique<FaultyTier>("nvme", 16 * kMiB));
  const std::vector<uint8_t> weights = NormalBf16(150000, 0.02f, 21);  // 300 KB: 5 pieces
  Result<std::vector<uint8_t>> encoded = codec::EncodeBf16(weights.data(), weights.size());
  ASSERT_TRUE(encoded.ok());
  const codec::Bf16Layout layout = *codec::ParseBf16(encoded->data(), encoded->size());
  Result<BlockId> id = rig.cache->RegisterFromBuffer("w", weights.data(), weights.size(), nvme, kNoGroup,
                                                     codec::Compression::kBf16);
  ASSERT_TRUE(id.ok());
  // Find the block's encoding on the tier: it is the only extent there.
  const Extent extent{0, encoded->size()};
  std::vector<uint8_t> check(encoded->size());
  ASSERT_TRUE(nvme->Read(extent, 0, check.data(), check.size()).ok());
  ASSERT_TRUE(check == *encoded);
  std::mt19937 rng(5);
  int delivered = 0, refused = 0;
  for (int trial = 0; trial < 150; ++trial) {
    std::vector<uint8_t> damaged = *encoded;
    // Mostly the header, table and directory (what the host parses), some records.
    const uint64_t span = trial % 3 == 0 ? damaged.size() : layout.records_offset + 64;
    for (int k = 0; k < 1 + trial % 4; ++k) damaged[rng() % span] ^= static_cast<uint8_t>(1 + rng() % 255);
    ASSERT_TRUE(nvme->Write(extent, 0, damaged.data(), damaged.size()).ok());
    ASSERT_TRUE(rig.cache->Evict(*id).ok());
    Result<void*> ptr = rig.cache->Acquire(*id, rig.stream);
    if (ptr.ok()) {
      ++delivered;
      (void)rig.ReadBack(*ptr, weights.size());
      ASSERT_TRUE(rig.cache->Release(*id, rig.stream).ok());
    } else {
      ++refused;
      const ErrorCode code = ptr.status().code();
      EXPECT_TRUE(code == ErrorCode::kCorruption || code == ErrorCode::kUnsupported ||
                  code == ErrorCode::kInvalidArgument)
          << ptr.status().ToString();
      EXPECT_EQ(0u, rig.cache->Info(*id)->pins);
    }
    ASSERT_TRUE(rig.cache->Drain().ok());
  }
  EXPECT_GT(refused, 0) << "damaged headers and directories are refused";
  ASSERT_TRUE(nvme->Write(extent, 0, encoded->data(), encoded->size()).ok());
  ASSERT_TRUE(rig.cache->Evict(*id).ok());
  EXPECT_TRUE(AcquireHolds(rig, *id, weights));
  std::printf("damaged encodings: %d delivered, %d refused\n", delivered, refused);
}

// The uploader's device ring is taken from the pool when the first encoded
// block is registered, inside the budget: a budget without room for it
// refuses the registration with the allocator's error, and nothing is kept.
TEST(CompressedBlock, TheUploadRingIsInsideTheBudget) {
  CacheRig rig(CompressedConfig("bf16"), 64 * kMiB);
  const uint64_t before = rig.allocator->GetStats().allocated_bytes;
  const std::vector<uint8_t> weights = NormalBf16(1 << 16, 0.02f, 3);
  ASSERT_TRUE(rig.cache->RegisterFromBuffer("w", weights.data(), weights.size(), rig.dram.get()).ok());
  // 3 slots of max(chunk_bytes = 64 KiB, 1 MiB).
  EXPECT_GE(rig.allocator->GetStats().allocated_bytes, before + 3 * kMiB);

  CacheRig tight(CompressedConfig("bf16"), 2 * kMiB);
  const uint64_t used = tight.dram->used();
  Result<BlockId> refused = tight.cache->RegisterFromBuffer("w", weights.data(), weights.size(), tight.dram.get());
  EXPECT_FALSE(refused.ok());
  EXPECT_EQ(used, tight.dram->used()) << "nothing was stored";
  EXPECT_EQ(0u, tight.cache->codec_stats().blocks);
  // Raw blocks still register in that budget.
  EXPECT_TRUE(tight.cache->RegisterFromBuffer("raw", weights.data(), weights.size(), tight.dram.get(), kNoGroup,
                                              codec::Compression::kOff).ok());
}

}  // namespace
}  // namespace tiercache::testing
