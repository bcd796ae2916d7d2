#include "tools/bench/options.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "common/units.h"
#include "tools/bench/config_file.h"

namespace tiercache::bench {
namespace {

using Environment = std::map<std::string, std::string>;

Result<Options> Parse(std::vector<const char*> args, const Environment& environment = {}) {
  args.insert(args.begin(), "tiercache-bench");
  return ParseOptions(static_cast<int>(args.size()), args.data(), environment);
}

std::string TempFile(const std::string& contents) {
  char path[] = "/tmp/bench-options-XXXXXX";
  int fd = mkstemp(path);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(write(fd, contents.data(), contents.size()), static_cast<ssize_t>(contents.size()));
  close(fd);
  return path;
}

TEST(OptionsTest, NoArgumentsIsTheDefaultRun) {
  Result<Options> options = Parse({});
  ASSERT_TRUE(options.ok()) << options.status().ToString();
  EXPECT_EQ(options->command, Command::kRun);
  EXPECT_TRUE(options->explicitly_set.empty());
}

TEST(OptionsTest, SubcommandsAreRecognised) {
  EXPECT_EQ(Parse({"replay"})->command, Command::kReplay);
  EXPECT_EQ(Parse({"simulate"})->command, Command::kSimulate);
  EXPECT_EQ(Parse({"trace", "record", "--out=x"})->command, Command::kTraceRecord);
  EXPECT_EQ(Parse({"trace", "convert", "--trace=a", "--out=b"})->command, Command::kTraceConvert);
  EXPECT_EQ(Parse({"--help"})->command, Command::kHelp);
  EXPECT_EQ(Parse({"simulate", "-h"})->command, Command::kHelp);
}

TEST(OptionsTest, FlagsTakeBothSpellings) {
  Result<Options> options = Parse({"--gpu-cache-bytes=64MiB", "--gpu-policy", "lru", "--quiet"});
  ASSERT_TRUE(options.ok()) << options.status().ToString();
  EXPECT_EQ(options->gpu_cache_bytes, 64 * kMiB);
  EXPECT_EQ(options->gpu_policy, "lru");
  EXPECT_TRUE(options->quiet);
  EXPECT_TRUE(options->IsSet("gpu_cache_bytes"));
}

TEST(OptionsTest, EnvironmentUsesTheRuntimeNamesAndFlagsWin) {
  Environment environment = {{"TIERCACHE_GPU_CACHE_BYTES", "32MiB"}, {"TIERCACHE_DRAM_BYTES", "1GiB"}};
  Result<Options> options = Parse({"--dram-bytes=2GiB"}, environment);
  ASSERT_TRUE(options.ok()) << options.status().ToString();
  EXPECT_EQ(options->gpu_cache_bytes, 32 * kMiB);
  EXPECT_EQ(options->dram_bytes, 2 * kGiB);
}

TEST(OptionsTest, ConfigFileSitsBelowEnvironmentAndFlags) {
  std::string path = TempFile(
      R"({"gpu_cache_bytes": "16MiB", "pmem_bytes": 8388608, "gpu_policy": "arc",
          "staging_buffers": 4})");
  Environment environment = {{"TIERCACHE_CONFIG", path}, {"TIERCACHE_GPU_POLICY", "s3fifo"}};
  Result<Options> options = Parse({"--gpu-cache-bytes=48MiB"}, environment);
  ASSERT_TRUE(options.ok()) << options.status().ToString();
  EXPECT_EQ(options->gpu_cache_bytes, 48 * kMiB);  // flag over file
  EXPECT_EQ(options->pmem_bytes, 8 * kMiB);         // file over default
  EXPECT_EQ(options->gpu_policy, "s3fifo");         // environment over file
  std::remove(path.c_str());
}

TEST(OptionsTest, ConfigFileErrorsNameTheProblem) {
  std::string typo = TempFile(R"({"gpu_cache_byte": "16MiB"})");
  Result<Options> options = Parse({"--config", typo.c_str()});
  ASSERT_FALSE(options.ok());
  EXPECT_NE(options.status().message().find("gpu_cache_byte"), std::string::npos);
  std::string garbled = TempFile(R"({"gpu_cache_bytes": )");
  std::string garbled_flag = "--config=" + garbled;
  options = Parse({garbled_flag.c_str()});
  ASSERT_FALSE(options.ok());
  EXPECT_EQ(options.status().code(), ErrorCode::kInvalidArgument);
  options = Parse({"--config=/nonexistent/tiercache.json"});
  ASSERT_FALSE(options.ok());
  EXPECT_EQ(options.status().code(), ErrorCode::kNotFound);
  std::remove(typo.c_str());
  std::remove(garbled.c_str());
}

TEST(OptionsTest, BadInputIsAnErrorNamingIt) {
  struct Case {
    std::vector<const char*> args;
    Environment environment;
    const char* named;
  };
  std::vector<Case> cases = {
      {{"--bogus"}, {}, "--bogus"},
      {{"--gpu-budget-bytes=0"}, {}, "--gpu-budget-bytes"},
      {{"--gpu-cache-bytes=lots"}, {}, "--gpu-cache-bytes"},
      {{}, {{"TIERCACHE_GPU_BUDGET_BYTES", "0"}}, "TIERCACHE_GPU_BUDGET_BYTES"},
      {{"--gpu-policy=fifo"}, {}, "--gpu-policy"},
      {{"--sizes=0,50"}, {}, "--sizes"},
      {{"--sizes=150"}, {}, "--sizes"},
      {{"--policies=lru,mru"}, {}, "mru"},
      {{"--progress=sometimes"}, {}, "--progress"},
      {{"frobnicate"}, {}, "frobnicate"},
      {{"trace", "shuffle"}, {}, "shuffle"},
      {{"trace", "record"}, {}, "--out"},
      {{"--workload=dense", "--trace=x.csv"}, {}, "--trace"},
      {{"--gpu-cache-bytes"}, {}, "--gpu-cache-bytes"},
      {{"--json=/nonexistent-dir/out.json"}, {}, "--json"},
      {{"--gpu-budget-bytes=1GiB", "--gpu-cache-bytes=2GiB"}, {}, "--gpu-cache-bytes"},
  };
  for (const Case& c : cases) {
    Result<Options> options = Parse(c.args, c.environment);
    ASSERT_FALSE(options.ok()) << c.named;
    EXPECT_EQ(options.status().code(), ErrorCode::kInvalidArgument) << c.named;
    EXPECT_NE(options.status().message().find(c.named), std::string::npos)
        << "'" << options.status().message() << "' should name " << c.named;
    EXPECT_EQ(options.status().message().find('\n'), std::string::npos);
  }
}

TEST(OptionsTest, HelpExplainsEveryOptionWithAnExample) {
  std::string help = HelpText("");
  for (const char* flag : {"--workload", "--trace", "--trace-format", "--gpu-budget-bytes",
                           "--gpu-cache-bytes", "--gpu-policy", "--dram-bytes", "--pmem-bytes",
                           "--nvme-bytes", "--dir", "--prefetch", "--prefetch-lookahead",
                           "--chunk-bytes", "--compute-us", "--policies", "--sizes", "--json",
                           "--out", "--format", "--progress", "--quiet", "--config"}) {
    size_t at = help.find(std::string("\n  ") + flag);
    ASSERT_NE(at, std::string::npos) << flag;
    size_t next = help.find("\n  --", at + 1);
    std::string entry = help.substr(at, next == std::string::npos ? std::string::npos : next - at);
    EXPECT_NE(entry.find("e.g."), std::string::npos) << flag << " has no example";
  }
  EXPECT_NE(help.find("TIERCACHE_GPU_CACHE_BYTES"), std::string::npos);
}

TEST(ConfigFileTest, ParsesFlatObjectsOnly) {
  Result<ConfigEntries> entries = ParseConfigText(R"( {"a": "x\"y", "b": 12, "c": true} )");
  ASSERT_TRUE(entries.ok()) << entries.status().ToString();
  ASSERT_EQ(entries->size(), 3u);
  EXPECT_EQ((*entries)[0], (std::pair<std::string, std::string>("a", "x\"y")));
  EXPECT_EQ((*entries)[1].second, "12");
  EXPECT_EQ((*entries)[2].second, "true");
  for (const char* bad : {"", "{", "[]", R"({"a": {"b": 1}})", R"({"a": 1,})", R"({"a" 1})",
                          R"({"a": 1} x)", R"({"a": nope})"}) {
    EXPECT_FALSE(ParseConfigText(bad).ok()) << bad;
  }
  EXPECT_TRUE(IsRuntimeConfigKey("gpu_cache_bytes"));
  EXPECT_FALSE(IsRuntimeConfigKey("gpu_cache"));
}

}  // namespace
}  // namespace tiercache::bench
