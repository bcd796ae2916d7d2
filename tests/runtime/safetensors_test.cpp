// The safetensors header and index readers, on files written here.
#include "runtime/safetensors.h"

#include <unistd.h>

#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "tests/runtime/safetensors_writer.h"

namespace tiercache {
namespace {

using testing::HeaderJson;
using testing::MakeTensor;
using testing::TestTensor;
using testing::WriteSafetensors;

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = ::testing::TempDir() + "/st_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".safetensors";
    tensors_ = {MakeTensor("b.weight", "BF16", {4, 3}, 1), MakeTensor("a.bias", "F32", {5}, 2),
                MakeTensor("scalar", "F32", {}, 3), MakeTensor("empty", "BF16", {0, 7}, 4)};
  }
  void TearDown() override { std::remove(path_.c_str()); }

  // Parses a file holding `header` over the usual data.
  Status ParseWith(const std::string& header) {
    WriteSafetensors(path_, tensors_, header);
    return ReadSafetensorsHeader(path_).status();
  }

  std::string path_;
  std::vector<TestTensor> tensors_;
};

TEST_F(SafetensorsTest, ReadsNamesDtypesShapesAndAbsoluteOffsetsInFileOrder) {
  const uint64_t data = WriteSafetensors(path_, tensors_);
  Result<SafetensorsHeader> h = ReadSafetensorsHeader(path_);
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  EXPECT_EQ(h->data_offset, data);
  ASSERT_EQ(h->tensors.size(), 4u);
  EXPECT_EQ(h->tensors[0].name, "b.weight");
  EXPECT_EQ(h->tensors[0].dtype, "BF16");
  EXPECT_EQ(h->tensors[0].shape, (std::vector<uint64_t>{4, 3}));
  EXPECT_EQ(h->tensors[0].begin, data);
  EXPECT_EQ(h->tensors[0].bytes(), 24u);
  EXPECT_EQ(h->tensors[1].name, "a.bias");
  EXPECT_EQ(h->tensors[1].begin, data + 24);
  EXPECT_TRUE(h->tensors[2].shape.empty());
  EXPECT_EQ(h->tensors[2].bytes(), 4u);
  EXPECT_EQ(h->tensors[3].bytes(), 0u);
  ASSERT_EQ(h->metadata.size(), 1u);
  EXPECT_EQ(h->metadata[0].second, "pt");
}

TEST_F(SafetensorsTest, AFileShorterThanItsHeaderIsRefused) {
  std::ofstream(path_, std::ios::binary) << "abc";
  EXPECT_EQ(ReadSafetensorsHeader(path_).status().code(), ErrorCode::kInvalidArgument);
  {
    std::ofstream out(path_, std::ios::binary | std::ios::trunc);
    const char length[8] = {static_cast<char>(0xff), 0x7f, 0, 0, 0, 0, 0, 0};  // 32 KiB
    out.write(length, 8);
    out << "{}";
  }
  Status s = ReadSafetensorsHeader(path_).status();
  EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(s.message().find("past the end"), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find(path_), std::string::npos) << "names the file";
  EXPECT_EQ(ReadSafetensorsHeader(path_ + ".missing").status().code(), ErrorCode::kNotFound);
}

TEST_F(SafetensorsTest, MalformedHeadersAreClearErrors) {
  const std::string good = HeaderJson(tensors_);
  auto replaced = [&](const std::string& from, const std::string& to) {
    std::string h = good;
    const size_t at = h.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return h.replace(at, from.size(), to);
  };
  struct Case {
    std::string header;
    std::string expect;  // in the message
  };
  const Case cases[] = {
      {"[1,2,3]", "not a JSON object"},
      {"{\"a\": ", "header"},
      {replaced("\"BF16\"", "\"Q4\""), "unknown dtype"},
      {replaced("\"shape\":[4,3]", "\"shape\":[4,4]"), "b.weight"},       // size mismatch
      {replaced("\"shape\":[4,3]", "\"shape\":[4,-3]"), "dimension"},
      {replaced("\"shape\":[4,3]", "\"shape\":[4294967296,4294967296,4]"), "overflows"},
      {replaced("[0,24]", "[24,0]"), "begin after"},
      {replaced("[24,44]", "[20,40]"), "overlap"},                        // a.bias into b.weight
      {replaced("[24,44]", "[2400,2420]"), "past the"},                   // offsets past the file
      {replaced("\"format\":\"pt\"", "\"format\":3"), "__metadata__"},
      {replaced("\"dtype\":\"BF16\",", ""), "no dtype"},
      {replaced("\"data_offsets\":[0,24]", "\"data_offsets\":[0]"), "data_offsets"},
      {replaced("\"b.weight\"", "\"a.bias\""), "twice"},
      {replaced("\"b.weight\"", "\"\""), "empty name"},
  };
  for (const Case& c : cases) {
    Status s = ParseWith(c.header);
    EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument) << c.header;
    EXPECT_NE(s.message().find(c.expect), std::string::npos) << c.header << " -> " << s.ToString();
  }
  EXPECT_TRUE(ParseWith(good).ok());
}

TEST_F(SafetensorsTest, ParsesFromBytesWithoutAFile) {
  const std::string header = HeaderJson(tensors_);
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  bytes += header;
  EXPECT_TRUE(ParseSafetensorsFile(bytes, bytes.size() + 52, "mem").ok());
  EXPECT_FALSE(ParseSafetensorsFile(bytes, bytes.size(), "mem").ok()) << "data past the file";
  EXPECT_FALSE(ParseSafetensorsFile(bytes.substr(0, 20), bytes.size() + 52, "mem").ok());
}

TEST(SafetensorsIndexTest, MapsTensorsToShardsAndRefusesEscapes) {
  Result<SafetensorsIndex> index = ParseSafetensorsIndex(
      R"({"metadata":{"total_size":10},"weight_map":{"a":"m-1.safetensors","b":"m-2.safetensors","c":"m-1.safetensors"}})",
      "idx");
  ASSERT_TRUE(index.ok()) << index.status().ToString();
  EXPECT_EQ(index->shards, (std::vector<std::string>{"m-1.safetensors", "m-2.safetensors"}));
  ASSERT_EQ(index->weight_map.size(), 3u);
  EXPECT_EQ(index->weight_map[1].second, 1u);
  EXPECT_EQ(index->weight_map[2].second, 0u);
  for (const char* bad : {R"({"weight_map":{"a":"../x.safetensors"}})", R"({"weight_map":{}})",
                          R"({"weight_map":{"a":3}})", R"({"metadata":{}})", "[]",
                          R"({"weight_map":{"a":"/etc/passwd"}})"}) {
    EXPECT_EQ(ParseSafetensorsIndex(bad, "idx").status().code(), ErrorCode::kInvalidArgument) << bad;
  }
}

TEST(SafetensorsDtypeTest, KnowsTheFormatsDtypes) {
  EXPECT_EQ(*SafetensorsDtypeBytes("BF16"), 2u);
  EXPECT_EQ(*SafetensorsDtypeBytes("F8_E4M3"), 1u);
  EXPECT_EQ(*SafetensorsDtypeBytes("I64"), 8u);
  EXPECT_FALSE(SafetensorsDtypeBytes("bf16").ok());
}

}  // namespace
}  // namespace tiercache
