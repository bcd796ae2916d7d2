#include "runtime/config.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdio>
#include <fstream>
#include <random>
#include <string>

#include "runtime/json.h"

namespace tiercache {
namespace {

// Sets an environment variable for the scope of one test.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = getenv(name)) old_ = old, had_ = true;
    setenv(name, value, 1);
  }
  ~ScopedEnv() { had_ ? setenv(name_, old_.c_str(), 1) : unsetenv(name_); }

 private:
  const char* name_;
  std::string old_;
  bool had_ = false;
};

TEST(ConfigTest, DefaultsAreValid) {
  RuntimeConfig c;
  EXPECT_TRUE(ValidateConfig(c).ok());
  EXPECT_GE(c.chunk_bytes, 16 * kMiB);
}

TEST(ConfigTest, JsonSetsFieldsWithUnits) {
  RuntimeConfig c;
  Status s = ApplyConfigJson(R"({"gpu_cache_bytes": "8GiB", "chunk_bytes": 33554432,
      "gpu_policy": "next-use", "verify_checksums": false, "io_retries": 3,
      "nvme_path": "/tmp/x", "nvme_bytes": "1GiB"})", &c);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(c.gpu_cache_bytes, 8 * kGiB);
  EXPECT_EQ(c.chunk_bytes, 32 * kMiB);
  EXPECT_EQ(c.gpu_policy, "next-use");
  EXPECT_FALSE(c.verify_checksums);
  EXPECT_EQ(c.io_retries, 3);
  EXPECT_EQ(c.nvme_bytes, kGiB);
  EXPECT_TRUE(ValidateConfig(c).ok());
}

TEST(ConfigTest, JsonErrorsNameTheKeyAndChangeNothing) {
  RuntimeConfig c;
  const RuntimeConfig before = c;
  Status s = ApplyConfigJson(R"({"chunk_bytes": "32MiB", "no_such_knob": 1})", &c);
  EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(s.message().find("no_such_knob"), std::string::npos);
  EXPECT_EQ(c.chunk_bytes, before.chunk_bytes);  // all or nothing

  s = ApplyConfigJson(R"({"io_retries": "many"})", &c);
  EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(s.message().find("io_retries"), std::string::npos);
  EXPECT_EQ(ApplyConfigJson(R"({"verify_checksums": 1})", &c).code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(ApplyConfigJson(R"({"gpu_policy": 7})", &c).code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(ApplyConfigJson("[1]", &c).code(), ErrorCode::kInvalidArgument);
}

TEST(ConfigTest, ValidationRejectsNonsense) {
  RuntimeConfig c;
  c.gpu_policy = "mru";
  EXPECT_EQ(ValidateConfig(c).code(), ErrorCode::kInvalidArgument);
  c = RuntimeConfig();
  c.chunk_bytes = 100;
  EXPECT_EQ(ValidateConfig(c).code(), ErrorCode::kInvalidArgument);
  c = RuntimeConfig();
  c.staging_buffers = 1;
  EXPECT_EQ(ValidateConfig(c).code(), ErrorCode::kInvalidArgument);
  c = RuntimeConfig();
  c.nvme_path = "/tmp/x";  // without a size
  EXPECT_EQ(ValidateConfig(c).code(), ErrorCode::kInvalidArgument);
  c = RuntimeConfig();
  c.dram_prefetch_lookahead = -1;
  EXPECT_EQ(ValidateConfig(c).code(), ErrorCode::kInvalidArgument);
  c.dram_prefetch_lookahead = 1025;
  EXPECT_EQ(ValidateConfig(c).code(), ErrorCode::kInvalidArgument);
  c.dram_prefetch_lookahead = 0;  // off
  EXPECT_TRUE(ValidateConfig(c).ok());
}

TEST(ConfigTest, DramPrefetchLookaheadFromFileAndEnvironment) {
  const std::string path = ::testing::TempDir() + "/tiercache_config_dram_lookahead.json";
  {
    std::ofstream out(path);
    out << R"({"dram_prefetch_lookahead": 40, "prefetch_lookahead": 3})";
  }
  {
    ScopedEnv file("TIERCACHE_CONFIG", path.c_str());
    auto c = ConfigFromEnvironment();
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    EXPECT_EQ(c->dram_prefetch_lookahead, 40);
    EXPECT_EQ(c->prefetch_lookahead, 3);
    ScopedEnv env("TIERCACHE_DRAM_PREFETCH_LOOKAHEAD", "7");
    c = ConfigFromEnvironment();
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    EXPECT_EQ(c->dram_prefetch_lookahead, 7);  // the environment wins
  }
  ScopedEnv bad("TIERCACHE_DRAM_PREFETCH_LOOKAHEAD", "2000");
  EXPECT_EQ(ConfigFromEnvironment().status().code(), ErrorCode::kInvalidArgument);
  std::remove(path.c_str());
}

TEST(ConfigTest, EnvironmentOverridesFile) {
  const std::string path = ::testing::TempDir() + "/tiercache_config_test.json";
  {
    std::ofstream out(path);
    out << R"({"dram_bytes": "2GiB", "staging_buffers": 8, "gpu_policy": "arc"})";
  }
  ScopedEnv file("TIERCACHE_CONFIG", path.c_str());
  ScopedEnv policy("TIERCACHE_GPU_POLICY", "s3fifo");
  ScopedEnv chunk("TIERCACHE_CHUNK_BYTES", "64MiB");
  auto c = ConfigFromEnvironment();
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->dram_bytes, 2 * kGiB);       // from the file
  EXPECT_EQ(c->staging_buffers, 8);         // from the file
  EXPECT_EQ(c->gpu_policy, "s3fifo");       // the environment wins
  EXPECT_EQ(c->chunk_bytes, 64 * kMiB);
  std::remove(path.c_str());
}

TEST(ConfigTest, BadEnvironmentValueIsAnError) {
  ScopedEnv bad("TIERCACHE_STAGING_BUFFERS", "lots");
  auto c = ConfigFromEnvironment();
  EXPECT_EQ(c.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(c.status().message().find("TIERCACHE_STAGING_BUFFERS"), std::string::npos);
}

TEST(ConfigTest, MissingFileIsNotFound) {
  RuntimeConfig c;
  EXPECT_EQ(LoadConfigFile("/nonexistent/tiercache.json", &c).code(), ErrorCode::kNotFound);
}

TEST(ConfigTest, PrintedConfigParsesBackToTheSameConfig) {
  RuntimeConfig c;
  c.gpu_cache_bytes = 123 * kMiB;
  c.pmem_path = "/mnt/pmem \"quoted\"";
  c.pmem_bytes = kGiB;
  c.demote_on_evict = false;
  c.numa_node = 1;
  const std::string json = ConfigToJson(c);
  auto parsed = ParseJson(json);
  ASSERT_TRUE(parsed.ok()) << json;
  EXPECT_EQ(parsed->members().size(), ConfigFieldNames().size());
  RuntimeConfig back;
  ASSERT_TRUE(ApplyConfigJson(json, &back).ok());
  EXPECT_EQ(ConfigToJson(back), json);
  EXPECT_EQ(back.pmem_path, c.pmem_path);
}

TEST(ConfigTest, SetConfigFieldByName) {
  RuntimeConfig c;
  EXPECT_TRUE(SetConfigField("gpu_budget_bytes", "1.5GiB", &c).ok());
  EXPECT_EQ(c.gpu_budget_bytes, kGiB + kGiB / 2);
  EXPECT_EQ(SetConfigField("nope", "1", &c).code(), ErrorCode::kNotFound);
  EXPECT_EQ(SetConfigField("demote_on_evict", "maybe", &c).code(), ErrorCode::kInvalidArgument);
}

// Fuzz-style: random key/value documents never crash; a document either
// applies or is rejected with kInvalidArgument, leaving the config as it was.
TEST(ConfigTest, RandomDocumentsNeverCrash) {
  const auto names = ConfigFieldNames();
  const char* values[] = {"1", "-1", "\"64MiB\"", "true", "\"x\"", "null", "[]", "{}",
                          "1e9", "\"-5\"", "18446744073709551615", "\"\"", "0"};
  std::mt19937 rng(7);
  for (int i = 0; i < 3000; ++i) {
    std::string doc = "{";
    const int n = static_cast<int>(rng() % 4);
    for (int k = 0; k < n; ++k) {
      if (k) doc += ",";
      doc += "\"" + names[rng() % names.size()] + "\":" + values[rng() % std::size(values)];
    }
    doc += "}";
    RuntimeConfig c;
    const std::string before = ConfigToJson(c);
    Status s = ApplyConfigJson(doc, &c);
    if (!s.ok()) {
      EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument) << doc;
      EXPECT_EQ(ConfigToJson(c), before);
    }
    (void)ValidateConfig(c);
  }
}

}  // namespace
}  // namespace tiercache
