// Checkpoints registered through the Runtime on the emulated device: blocks
// homed on safetensors files, read in place; errors; warm restart from PMEM.
#include "runtime/checkpoint.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>

#include <gtest/gtest.h>

#include "tiers/pmem_tier.h"

#include "alloc/emulated_device.h"
#include "runtime/json.h"
#include "runtime/runtime.h"
#include "tests/codec/codec_test_util.h"
#include "tests/runtime/safetensors_writer.h"

namespace tiercache {
namespace {

using testing::MakeTensor;
using testing::TestTensor;
using testing::WriteSafetensors;

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/ckpt_" + std::to_string(::getpid()) + "_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::create_directories(dir_);
    device_ = std::make_shared<EmulatedDevice>();
  }
  void TearDown() override {
    runtime_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  void Open(bool with_pmem = false, uint64_t pmem_bytes = 16 * kMiB) {
    RuntimeConfig config;
    config.dram_bytes = 16 * kMiB;
    config.chunk_bytes = 256 * kKiB;
    config.checkpoint_pin_page_cache = pin_page_cache_;
    config.gpu_cache_bytes = gpu_cache_bytes_;
    if (with_pmem) {
      config.pmem_path = dir_ + "/pmem";
      std::filesystem::create_directories(config.pmem_path);
      config.pmem_bytes = pmem_bytes;
    }
    Result<std::unique_ptr<Runtime>> rt = Runtime::Create(config, device_);
    ASSERT_TRUE(rt.ok()) << rt.status().ToString();
    runtime_ = std::move(rt).value();
  }

  // Two shards with an index: three layers (layer 1 split across the shards,
  // layer 2 with an F32 norm stored apart from its BF16 weights), an
  // embedding, a final norm and an empty tensor.
  void WriteSharded() {
    shard1_ = {MakeTensor("model.layers.0.norm.weight", "F32", {300}, 20),
               MakeTensor("model.layers.2.norm.weight", "F32", {77}, 21),
               MakeTensor("model.embed_tokens.weight", "BF16", {64, 100}, 1),
               MakeTensor("model.layers.0.mlp.weight", "BF16", {300, 257}, 2),
               MakeTensor("model.layers.0.attn.weight", "BF16", {100, 100}, 3),
               MakeTensor("model.layers.1.attn.weight", "BF16", {123, 45}, 4)};
    shard2_ = {MakeTensor("model.layers.1.mlp.weight", "BF16", {200, 99}, 5),
               MakeTensor("model.layers.2.mlp.weight", "BF16", {512, 64}, 6),
               MakeTensor("model.norm.weight", "BF16", {100}, 7),
               MakeTensor("model.unused", "BF16", {0}, 8)};
    WriteSafetensors(dir_ + "/model-00001-of-00002.safetensors", shard1_);
    WriteSafetensors(dir_ + "/model-00002-of-00002.safetensors", shard2_);
    std::string map;
    for (const auto* shard : {&shard1_, &shard2_}) {
      for (const TestTensor& t : *shard) {
        map += std::string(map.empty() ? "" : ",") + "\"" + t.name + "\":\"model-0000" +
               (shard == &shard1_ ? "1" : "2") + "-of-00002.safetensors\"";
      }
    }
    std::ofstream(dir_ + "/model.safetensors.index.json")
        << "{\"metadata\":{\"total_size\":1},\"weight_map\":{" << map << "}}";
  }

  // Two shards of bf16 values drawn like trained weights (normal, small
  // sigma: few distinct exponents), an F32 norm of random bytes inside layer
  // 0 and a final norm of random bf16 bytes, large enough that the zeros
  // padding its block (< 4 KiB) do not make it worth encoding.
  void WriteWeightLike() {
    auto weights = [](std::string name, std::vector<uint64_t> shape, uint32_t seed) {
      TestTensor t = MakeTensor(std::move(name), "BF16", std::move(shape), seed);
      t.data = testing::NormalBf16(t.data.size() / 2, 0.02f, seed);
      return t;
    };
    shard1_ = {weights("model.layers.0.mlp.weight", {300, 257}, 31),
               MakeTensor("model.layers.0.norm.weight", "F32", {300}, 32),
               weights("model.layers.1.attn.weight", {123, 45}, 33)};
    shard2_ = {weights("model.layers.1.mlp.weight", {200, 99}, 34),
               MakeTensor("model.norm.weight", "BF16", {32768}, 35)};
    WriteSafetensors(dir_ + "/model-00001-of-00002.safetensors", shard1_);
    WriteSafetensors(dir_ + "/model-00002-of-00002.safetensors", shard2_);
  }

  // The bytes of `block` as an acquire delivers them.
  std::vector<unsigned char> BlockBytes(BlockId block, Status* status = nullptr) {
    Stream stream = device_->CreateStream().value();
    Result<void*> ptr = runtime_->cache().Acquire(block, stream);
    std::vector<unsigned char> out;
    if (status != nullptr) *status = ptr.status();
    if (ptr.ok()) {
      out.resize(runtime_->cache().Info(block)->bytes);
      EXPECT_TRUE(device_->CopyAsync(out.data(), *ptr, out.size(), CopyKind::kDeviceToHost, stream).ok());
      EXPECT_TRUE(device_->StreamSynchronize(stream).ok());
      EXPECT_TRUE(runtime_->cache().Release(block, stream).ok());
    } else {
      EXPECT_NE(status, nullptr) << ptr.status().ToString();
    }
    EXPECT_TRUE(runtime_->cache().Drain().ok());
    EXPECT_TRUE(device_->DestroyStream(stream).ok());
    return out;
  }

  // Every tensor arrives with its own bytes at its offset.
  void ExpectTensorsIntact(const Checkpoint& c) {
    std::map<std::string, const TestTensor*> written;
    for (const auto* shard : {&shard1_, &shard2_}) {
      for (const TestTensor& t : *shard) written[t.name] = &t;
    }
    std::map<BlockId, std::vector<unsigned char>> blocks;
    for (const CheckpointTensor& t : c.tensors()) {
      ASSERT_EQ(written.count(t.name), 1u) << t.name;
      const TestTensor& w = *written[t.name];
      EXPECT_EQ(t.dtype, w.dtype);
      EXPECT_EQ(t.shape, w.shape);
      EXPECT_EQ(t.bytes, w.bytes());
      if (t.bytes == 0) {
        EXPECT_EQ(t.block, kNoBlock);
        continue;
      }
      if (blocks.count(t.block) == 0) blocks[t.block] = BlockBytes(t.block);
      const auto& bytes = blocks[t.block];
      ASSERT_LE(t.offset + t.bytes, bytes.size()) << t.name;
      EXPECT_EQ(0, std::memcmp(bytes.data() + t.offset, w.data.data(), w.bytes())) << t.name;
    }
  }

  // The files a test writes are in the page cache: pinned ("on", or "auto"
  // with a GPU cache smaller than the checkpoint), blocks are copied from
  // it, else read through the staging ring.
  std::string pin_page_cache_ = "auto";
  uint64_t gpu_cache_bytes_ = 0;
  std::string dir_;
  std::shared_ptr<EmulatedDevice> device_;
  std::unique_ptr<Runtime> runtime_;
  std::vector<TestTensor> shard1_, shard2_;
};

// The two ways a resident checkpoint reaches the device: DMA from its pinned
// page cache, or reads through the staging ring.
class CheckpointReadPathTest : public CheckpointTest, public ::testing::WithParamInterface<bool> {
 protected:
  void SetUp() override {
    CheckpointTest::SetUp();
    pin_page_cache_ = GetParam() ? "on" : "off";
  }
};

INSTANTIATE_TEST_SUITE_P(Paths, CheckpointReadPathTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "PinnedPageCache" : "StagingRing";
                         });

TEST(CheckpointGroupTest, GroupsAtTheFirstNumberedComponent) {
  EXPECT_EQ(CheckpointGroupOf("model.layers.12.mlp.up_proj.weight", ""), "model.layers.12");
  EXPECT_EQ(CheckpointGroupOf("transformer.h.3.attn.c_attn.weight", ""), "transformer.h.3");
  EXPECT_EQ(CheckpointGroupOf("model.embed_tokens.weight", ""), "");
  EXPECT_EQ(CheckpointGroupOf("lm_head.weight", ""), "");
  EXPECT_EQ(CheckpointGroupOf("x.5", ""), "") << "a number that ends the name is no group";
  EXPECT_EQ(CheckpointGroupOf("model.layers.7.experts.3.w1", "model.layers."), "model.layers.7");
  EXPECT_EQ(CheckpointGroupOf("vision.blocks.1.w", "model.layers."), "");
  EXPECT_EQ(CheckpointGroupOf("model.layers.x.w", "model.layers."), "");
}

TEST_P(CheckpointReadPathTest, ShardedCheckpointBecomesOneBlockPerLayerReadInPlace) {
  WriteSharded();
  Open();
  const uint64_t dram_used_before = runtime_->tier("dram")->used();
  Result<uint64_t> id = runtime_->RegisterCheckpoint(dir_, CheckpointOptions());
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  const Checkpoint& c = **runtime_->checkpoint(*id);
  EXPECT_EQ(c.files().size(), 2u);
  EXPECT_EQ(c.tensors().size(), 10u);
  // Three layers, the embedding and the final norm; nothing copied yet.
  std::vector<std::string> names;
  for (const CheckpointBlock& b : c.blocks()) names.push_back(b.name);
  EXPECT_EQ(names, (std::vector<std::string>{"model.layers.0", "model.layers.2",
                                             "model.embed_tokens.weight", "model.layers.1",
                                             "model.norm.weight"}));
  EXPECT_EQ(runtime_->tier("dram")->used(), dram_used_before);
  EXPECT_EQ(c.file_tier().stats().bytes_read, 0u);
  ExpectTensorsIntact(c);
  // Each range starts congruent with its file offset, so O_DIRECT reads go
  // straight into the staging ring.
  for (const CheckpointTensor& t : c.tensors()) {
    const CheckpointTensor* first = &t;
    for (const CheckpointTensor& u : c.tensors()) {
      if (u.block == t.block && u.shard == t.shard && u.offset < first->offset) first = &u;
    }
    if (t.block != kNoBlock && first == &t) {
      EXPECT_EQ(t.offset % 4096, t.file_offset % 4096) << t.name;
    }
  }
  Result<BlockId> layer = runtime_->cache().FindBlock("model.layers.1");
  ASSERT_TRUE(layer.ok());
  EXPECT_EQ(runtime_->cache().Info(*layer)->home_tier, "checkpoint");
  auto stats = ParseJson(runtime_->StatsJson());
  ASSERT_TRUE(stats.ok());
  const JsonValue* checkpoints = stats->Find("checkpoints");
  ASSERT_NE(checkpoints, nullptr);
  ASSERT_EQ(checkpoints->items().size(), 1u);
  const JsonValue& entry = checkpoints->items()[0];
  const uint64_t bytes_read = entry.Find("bytes_read")->AsUint64().value();
  const uint64_t mapped = entry.Find("mapped_bytes")->AsUint64().value();
  const uint64_t pinned = entry.Find("pinned_bytes")->AsUint64().value();
  uint64_t file_bytes = 0;
  for (const std::string& f : c.files()) file_bytes += std::filesystem::file_size(f);
  if (GetParam()) {
    // Every file pinned; every tensor copied from the page cache, none read.
    EXPECT_EQ(pinned, file_bytes);
    EXPECT_GE(mapped, c.tensor_bytes());
    EXPECT_EQ(bytes_read, 0u) << "a pinned checkpoint is not copied on the host";
  } else {
    EXPECT_EQ(pinned, 0u);
    EXPECT_EQ(mapped, 0u);
    EXPECT_GE(bytes_read, c.tensor_bytes());
  }
  ASSERT_TRUE(runtime_->CloseCheckpoint(*id).ok());
  EXPECT_FALSE(runtime_->cache().FindBlock("model.layers.1").ok());
  EXPECT_EQ(runtime_->checkpoint(*id).status().code(), ErrorCode::kNotFound);
}

TEST_F(CheckpointTest, AutoPinsOnlyACheckpointLargerThanTheGpuCache) {
  WriteSharded();
  for (const bool streamed : {false, true}) {
    SCOPED_TRACE(streamed ? "larger than the cache" : "fits the cache");
    // The largest block is ~151 KiB, the tensors ~298 KiB in all.
    gpu_cache_bytes_ = streamed ? 200 * kKiB : 0;
    Open();
    Result<uint64_t> id = runtime_->RegisterCheckpoint(dir_, CheckpointOptions());
    ASSERT_TRUE(id.ok()) << id.status().ToString();
    const Checkpoint& c = **runtime_->checkpoint(*id);
    EXPECT_EQ(c.file_tier().pinned(), streamed);
    ExpectTensorsIntact(c);
    const FileTierStats f = c.file_tier().file_stats();
    if (streamed) {
      EXPECT_GE(f.mapped_bytes, c.tensor_bytes());
      EXPECT_EQ(c.file_tier().stats().bytes_read, 0u);
    } else {
      EXPECT_GE(c.file_tier().stats().bytes_read, c.tensor_bytes());
    }
    runtime_.reset();
  }
}

TEST_F(CheckpointTest, OneFileAndAGroupPrefixAndABlockPrefix) {
  shard1_ = {MakeTensor("enc.blocks.0.w", "BF16", {10, 10}, 1),
             MakeTensor("enc.blocks.1.w", "BF16", {10, 10}, 2),
             MakeTensor("dec.layers.0.w", "F32", {9}, 3)};
  WriteSafetensors(dir_ + "/one.safetensors", shard1_);
  Open();
  CheckpointOptions options;
  options.group_prefix = "enc.blocks.";
  options.block_prefix = "m1/";
  Result<uint64_t> id = runtime_->RegisterCheckpoint(dir_ + "/one.safetensors", options);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  const Checkpoint& c = **runtime_->checkpoint(*id);
  ASSERT_EQ(c.blocks().size(), 3u);
  EXPECT_EQ(c.blocks()[0].name, "m1/enc.blocks.0");
  EXPECT_EQ(c.blocks()[2].name, "m1/dec.layers.0.w");
  ExpectTensorsIntact(c);
  // The same names again collide; with another prefix they do not.
  Result<uint64_t> again = runtime_->RegisterCheckpoint(dir_ + "/one.safetensors", options);
  EXPECT_EQ(again.status().code(), ErrorCode::kAlreadyExists);
  options.block_prefix = "m2/";
  EXPECT_TRUE(runtime_->RegisterCheckpoint(dir_ + "/one.safetensors", options).ok());
}

TEST_F(CheckpointTest, MalformedCheckpointsRegisterNothing) {
  WriteSharded();
  Open();
  // A header whose shape disagrees with its data size.
  std::string header = testing::HeaderJson(shard2_);
  header.replace(header.find("[200,99]"), 8, "[200,98]");
  WriteSafetensors(dir_ + "/model-00002-of-00002.safetensors", shard2_, header);
  Result<uint64_t> id = runtime_->RegisterCheckpoint(dir_, CheckpointOptions());
  EXPECT_EQ(id.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(id.status().message().find("model.layers.1.mlp.weight"), std::string::npos)
      << id.status().ToString();
  EXPECT_FALSE(runtime_->cache().FindBlock("model.layers.0").ok()) << "nothing registered";
  // An index naming a tensor its shard lacks.
  WriteSafetensors(dir_ + "/model-00002-of-00002.safetensors", shard2_);
  std::ofstream(dir_ + "/model.safetensors.index.json")
      << R"({"weight_map":{"model.ghost":"model-00001-of-00002.safetensors"}})";
  id = runtime_->RegisterCheckpoint(dir_, CheckpointOptions());
  EXPECT_EQ(id.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(id.status().message().find("model.ghost"), std::string::npos);
  // A missing shard.
  std::ofstream(dir_ + "/model.safetensors.index.json")
      << R"({"weight_map":{"a":"model-00009-of-00009.safetensors"}})";
  EXPECT_EQ(runtime_->RegisterCheckpoint(dir_, CheckpointOptions()).status().code(),
            ErrorCode::kNotFound);
  EXPECT_EQ(runtime_->RegisterCheckpoint(dir_ + "/nothing-here", CheckpointOptions()).status().code(),
            ErrorCode::kNotFound);
}

TEST_P(CheckpointReadPathTest, AFileChangedAfterRegistrationFailsItsBlocksOnly) {
  WriteSharded();
  Open();
  Result<uint64_t> id = runtime_->RegisterCheckpoint(dir_, CheckpointOptions());
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  // Rewritten in place with the same size: a new modification time.
  struct timespec times[2] = {{0, UTIME_OMIT}, {1000, 0}};
  const std::string shard2 = dir_ + "/model-00002-of-00002.safetensors";
  ASSERT_EQ(::utimensat(AT_FDCWD, shard2.c_str(), times, 0), 0);
  Status status;
  (void)BlockBytes(runtime_->cache().FindBlock("model.norm.weight").value(), &status);
  EXPECT_EQ(status.code(), ErrorCode::kCorruption);
  EXPECT_NE(status.message().find("model-00002-of-00002.safetensors"), std::string::npos)
      << status.ToString();
  // Layer 1 spans both shards: it fails too. Layer 0 lives in shard 1 only.
  (void)BlockBytes(runtime_->cache().FindBlock("model.layers.1").value(), &status);
  EXPECT_EQ(status.code(), ErrorCode::kCorruption);
  std::vector<unsigned char> layer0 =
      BlockBytes(runtime_->cache().FindBlock("model.layers.0").value(), &status);
  EXPECT_TRUE(status.ok()) << status.ToString();
  EXPECT_FALSE(layer0.empty());
  EXPECT_TRUE(runtime_->CloseCheckpoint(*id).ok()) << "still closes";
}

TEST_F(CheckpointTest, WarmRestartFindsTheBlocksInPmem) {
  WriteSharded();
  CheckpointOptions options;
  uint64_t read_first = 0;
  {
    Open(/*with_pmem=*/true);
    options.persist = runtime_->tier("pmem");
    Result<uint64_t> id = runtime_->RegisterCheckpoint(dir_, options);
    ASSERT_TRUE(id.ok()) << id.status().ToString();
    const Checkpoint& c = **runtime_->checkpoint(*id);
    for (const CheckpointBlock& b : c.blocks()) EXPECT_FALSE(b.persisted);
    ExpectTensorsIntact(c);  // first loads: file -> PMEM -> GPU
    read_first = c.file_tier().stats().bytes_read;
    EXPECT_EQ(runtime_->cache().Info(runtime_->cache().FindBlock("model.layers.0").value())->home_tier,
              "pmem");
    runtime_.reset();  // the process ends
  }
  EXPECT_GT(read_first, 0u);
  Open(/*with_pmem=*/true);
  options.persist = runtime_->tier("pmem");
  Result<uint64_t> id = runtime_->RegisterCheckpoint(dir_, options);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  const Checkpoint& c = **runtime_->checkpoint(*id);
  for (const CheckpointBlock& b : c.blocks()) EXPECT_TRUE(b.persisted) << b.name;
  ExpectTensorsIntact(c);
  EXPECT_EQ(c.file_tier().stats().bytes_read, 0u) << "every block came from PMEM";
  ASSERT_TRUE(runtime_->CloseCheckpoint(*id).ok());
  // A touched file is a different file: its blocks are read from it again.
  struct timespec times[2] = {{0, UTIME_OMIT}, {2000, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, (dir_ + "/model-00001-of-00002.safetensors").c_str(), times, 0), 0);
  id = runtime_->RegisterCheckpoint(dir_, options);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  const Checkpoint& again = **runtime_->checkpoint(*id);
  for (const CheckpointBlock& b : again.blocks()) {
    EXPECT_EQ(b.persisted, b.name == "model.norm.weight") << b.name;  // the only block of shard 2 alone
  }
}

// With compression, the PMEM copies hold the codec's encoding (committed as
// such): the first loads already upload from them encoded, and a later
// process finds them encoded whatever compression it asks for, delivering
// every tensor bit-exact without reading the files.
TEST_F(CheckpointTest, PmemCopiesKeepTheEncodingAcrossARestart) {
  WriteWeightLike();
  CheckpointOptions options;
  options.compression = codec::Compression::kAuto;
  CodecStats first;
  {
    Open(/*with_pmem=*/true);
    options.persist = runtime_->tier("pmem");
    Result<uint64_t> id = runtime_->RegisterCheckpoint(dir_, options);
    ASSERT_TRUE(id.ok()) << id.status().ToString();
    const Checkpoint& c = **runtime_->checkpoint(*id);
    EXPECT_EQ(0u, runtime_->cache().codec_stats().blocks) << "nothing is encoded at registration";
    ExpectTensorsIntact(c);  // file -> PMEM (encoded) -> GPU (decoded)
    first = runtime_->cache().codec_stats();
    EXPECT_EQ(2u, first.blocks) << "the two weight-like layers; the random final norm stays raw";
    EXPECT_LT(static_cast<double>(first.stored_bytes), 0.85 * static_cast<double>(first.raw_bytes));
    EXPECT_EQ(2u, first.uploads) << "the first loads came from the encoded copies";
    for (const CheckpointBlock& b : c.blocks()) {
      EXPECT_EQ("pmem", runtime_->cache().Info(b.id)->home_tier) << b.name;
    }
    runtime_.reset();
  }
  Open(/*with_pmem=*/true);
  options.persist = runtime_->tier("pmem");
  options.compression = codec::Compression::kOff;  // the copies are what they are
  Result<uint64_t> id = runtime_->RegisterCheckpoint(dir_, options);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  const Checkpoint& c = **runtime_->checkpoint(*id);
  for (const CheckpointBlock& b : c.blocks()) EXPECT_TRUE(b.persisted) << b.name;
  CodecStats found = runtime_->cache().codec_stats();
  EXPECT_EQ(first.blocks, found.blocks);
  EXPECT_EQ(first.raw_bytes, found.raw_bytes);
  EXPECT_EQ(first.stored_bytes, found.stored_bytes);
  ExpectTensorsIntact(c);
  EXPECT_EQ(0u, c.file_tier().stats().bytes_read) << "every block came from PMEM";
  found = runtime_->cache().codec_stats();
  EXPECT_EQ(2u, found.uploads);
  EXPECT_EQ(first.moved_bytes, found.moved_bytes) << "the same encodings moved";
  EXPECT_LT(static_cast<double>(found.moved_bytes), 0.85 * static_cast<double>(found.raw_bytes));
}

// A PMEM tier with room for one generation of the checkpoint: after both
// shards are replaced (new identities), the new blocks' mirrors find the
// tier full of the old ones, which nobody has asked for; those give way,
// and the next process finds every new block in PMEM.
TEST_F(CheckpointTest, StaleBlocksOfAReplacedCheckpointGiveWayInAFullPmem) {
  WriteSharded();
  constexpr uint64_t kPmem = 512 * kKiB;  // the blocks take about 330 KB
  auto generation = [&](bool expect_found) {
    Open(/*with_pmem=*/true, kPmem);
    CheckpointOptions options;
    options.persist = runtime_->tier("pmem");
    Result<uint64_t> id = runtime_->RegisterCheckpoint(dir_, options);
    ASSERT_TRUE(id.ok()) << id.status().ToString();
    const Checkpoint& c = **runtime_->checkpoint(*id);
    for (const CheckpointBlock& b : c.blocks()) EXPECT_EQ(expect_found, b.persisted) << b.name;
    ExpectTensorsIntact(c);
    for (const CheckpointBlock& b : c.blocks()) {
      EXPECT_EQ("pmem", runtime_->cache().Info(runtime_->cache().FindBlock(b.name).value())->home_tier)
          << b.name << " was kept in PMEM";
    }
  };
  generation(false);
  const uint64_t reclaimed_first = dynamic_cast<PmemTier*>(runtime_->tier("pmem"))->index_stats().reclaimed;
  EXPECT_EQ(0u, reclaimed_first);
  runtime_.reset();
  for (const char* shard : {"/model-00001-of-00002.safetensors", "/model-00002-of-00002.safetensors"}) {
    struct timespec times[2] = {{0, UTIME_OMIT}, {3000, 0}};
    ASSERT_EQ(::utimensat(AT_FDCWD, (dir_ + shard).c_str(), times, 0), 0);
  }
  generation(false);  // a new checkpoint as far as the index knows
  EXPECT_GT(dynamic_cast<PmemTier*>(runtime_->tier("pmem"))->index_stats().reclaimed, 0u)
      << "the old generation gave way";
  runtime_.reset();
  generation(true);
}

}  // namespace
}  // namespace tiercache
