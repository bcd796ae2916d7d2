// The built tiercache-bench binary, end to end: exit codes and one-line
// errors for bad input, and the JSON and SVG files of real runs.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "tests/bench_tool/test_parsers.h"

namespace tiercache::bench {
namespace {

using testing::CheckXml;
using testing::Json;
using testing::JsonParser;

struct BenchRun {
  int exit_code = -1;
  std::string out;
  std::string err;
};

std::string ReadFile(const std::string& path) {
  std::ifstream file(path);
  std::stringstream contents;
  contents << file.rdbuf();
  return contents.str();
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/bench-cli-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::system(("rm -rf '" + dir_ + "'").c_str()); }

  // Runs the binary with `args` (shell words) and the given environment
  // prefix; TIERCACHE_LOG=error keeps fallback warnings out of stderr.
  BenchRun Bench(const std::string& args, const std::string& environment = "") {
    std::string out = dir_ + "/stdout", err = dir_ + "/stderr";
    std::string command = "env TIERCACHE_LOG=error " + environment + " " TIERCACHE_BENCH_BINARY " " +
                          args + " >" + out + " 2>" + err;
    int status = std::system(command.c_str());
    BenchRun run;
    run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    run.out = ReadFile(out);
    run.err = ReadFile(err);
    return run;
  }

  Json ParseJson(const std::string& path) {
    Json json;
    std::string error;
    EXPECT_TRUE(JsonParser(ReadFile(path)).Parse(&json, &error)) << path << ": " << error;
    return json;
  }

  void ExpectWellFormedSvg(const std::string& path) {
    std::string svg = ReadFile(path);
    ASSERT_FALSE(svg.empty()) << path;
    std::string error;
    EXPECT_TRUE(CheckXml(svg, &error)) << path << ": " << error;
  }

  std::string dir_;
};

TEST_F(CliTest, BadInputExitsWithTwoAndOneLineNamingIt) {
  std::ofstream(dir_ + "/garbage.csv") << "timestamp,obj_id,obj_size\n1,2\nnot a record\n";
  struct Case {
    std::string args;
    std::string environment;
    std::string named;
  };
  std::vector<Case> cases = {
      {"--frobnicate", "", "--frobnicate"},
      {"replay --trace=" + dir_ + "/missing.csv", "", "missing.csv"},
      {"simulate --trace=" + dir_ + "/garbage.csv --trace-format=csv", "", "garbage.csv"},
      {"--gpu-budget-bytes=0", "", "--gpu-budget-bytes"},
      {"", "TIERCACHE_GPU_BUDGET_BYTES=0", "TIERCACHE_GPU_BUDGET_BYTES"},
      {"--nvme-bytes=900TiB --dir=" + dir_, "", "free disk space"},
      {"--dram-bytes=900TiB --dir=" + dir_, "", "available memory"},
      {"--engine=direct --dram-bytes=900TiB --dir=" + dir_, "", "available memory"},
      {"--gpu-cache-bytes=1KiB --workload=dense:layers=2,bytes=1MiB,steps=1", "", "GPU cache"},
      {"--workload=dense:layers=-3", "", "layers"},
      {"simulate --sizes=abc", "", "--sizes"},
  };
  for (const Case& c : cases) {
    BenchRun run = Bench(c.args, c.environment);
    EXPECT_EQ(run.exit_code, 2) << c.args << "\n" << run.err;
    EXPECT_EQ(run.err.rfind("tiercache-bench: error: ", 0), 0u) << run.err;
    EXPECT_EQ(std::count(run.err.begin(), run.err.end(), '\n'), 1) << run.err;
    EXPECT_NE(run.err.find(c.named), std::string::npos) << run.err << " should name " << c.named;
    EXPECT_TRUE(run.out.empty()) << run.out;
  }
}

TEST_F(CliTest, HelpExitsZero) {
  BenchRun run = Bench("--help");
  EXPECT_EQ(run.exit_code, 0);
  EXPECT_NE(run.out.find("usage: tiercache-bench"), std::string::npos);
}

// The request hierarchy every engine reports: each request served by one
// tier, each tier's misses reaching the next. Returns the parsed report.
Json CheckHierarchy(const Json& json) {
  const uint64_t requests = json["requests"].Uint();
  const std::vector<Json>& tiers = json["tiers"].items;
  EXPECT_GE(tiers.size(), 2u);
  if (tiers.empty()) return json;
  EXPECT_EQ(tiers[0]["name"].text, "gpu");
  EXPECT_EQ(tiers[0]["requests_reaching"].Uint(), requests);
  uint64_t served = 0;
  for (size_t i = 0; i < tiers.size(); ++i) {
    const Json& tier = tiers[i];
    SCOPED_TRACE(tier["name"].text);
    EXPECT_EQ(tier["hits"].Uint() + tier["misses"].Uint(), tier["requests_reaching"].Uint());
    if (i + 1 < tiers.size()) {
      EXPECT_EQ(tier["misses"].Uint(), tiers[i + 1]["requests_reaching"].Uint());
    }
    EXPECT_NEAR(tier["hit_ratio_of_all_requests"].number,
                static_cast<double>(tier["hits"].Uint()) / requests, 1e-6);
    served += tier["hits"].Uint();
  }
  EXPECT_EQ(served, requests);  // the last tier serves whatever reaches it
  // Placement wrote every block into exactly one host tier (runtime demotions
  // may add more), whole blocks at a time.
  const uint64_t block = json["block_bytes"].Uint();
  uint64_t placed = 0;
  for (size_t i = 1; i < tiers.size(); ++i) {
    placed += tiers[i]["transfers_down"].Uint();
    EXPECT_EQ(tiers[i]["bytes_down"].Uint(), tiers[i]["transfers_down"].Uint() * block);
  }
  EXPECT_GE(placed, json["unique_blocks"].Uint());
  for (const Json& tier : tiers) {
    EXPECT_EQ(tier["bytes_up"].Uint() % block, 0u) << tier["name"].text;
    EXPECT_EQ(tier["bytes_down"].Uint() % block, 0u) << tier["name"].text;
    EXPECT_EQ(tier["bytes_up"].Uint(), tier["transfers_up"].Uint() * block);
  }
  // Every demand miss uploaded one block to the GPU.
  EXPECT_GE(tiers[0]["bytes_down"].Uint(), tiers[0]["misses"].Uint() * block);
  EXPECT_EQ(json["step_time"]["steps_timed"].Uint(), json["steps"].Uint());
  return json;
}

constexpr const char* kSmallReplay =
    "replay --workload=dense:layers=6,blocks=2,bytes=256KiB,steps=4 --gpu-cache-bytes=1MiB "
    "--compute-us=0 --policies=lru,min --sizes=25,50 ";

TEST_F(CliTest, DirectReplayCountsEveryTransfer) {
  // 6 layers x 2 blocks of 256 KiB, 4 steps, through a GPU cache of a third
  // of the blocks, homed on DRAM, PMEM and NVMe, moved synchronously.
  std::string json_path = dir_ + "/direct.json";
  BenchRun run = Bench(std::string(kSmallReplay) + "--engine=direct --dir=" + dir_ + " --json=" + json_path);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.out.find("hit% of reaching"), std::string::npos) << run.out;
  Json json = CheckHierarchy(ParseJson(json_path));
  EXPECT_EQ(json["requests"].Uint(), 48u);
  EXPECT_EQ(json["block_bytes"].Uint(), 256u * 1024);
  const std::vector<Json>& tiers = json["tiers"].items;
  uint64_t promoted = 0;
  for (size_t i = 1; i < tiers.size(); ++i) {
    promoted += tiers[i]["transfers_up"].Uint();
    EXPECT_EQ(tiers[i]["transfers_up"].Uint(), tiers[i]["hits"].Uint());  // no prefetch, no DRAM copies
  }
  EXPECT_EQ(promoted, tiers[0]["misses"].Uint());
  EXPECT_EQ(tiers[0]["transfers_down"].Uint(), tiers[0]["misses"].Uint());
  ASSERT_EQ(json["belady"].kind, Json::kObject);
  EXPECT_GE(json["belady"]["min_hit_ratio"].number + 1e-9, tiers[0]["hit_ratio_of_all_requests"].number);
  ExpectWellFormedSvg(dir_ + "/direct.hit-ratio.svg");
  ExpectWellFormedSvg(dir_ + "/direct.step-time.svg");
  // The scratch directory with the tier files is gone.
  EXPECT_NE(std::system(("ls -d " + dir_ + "/tiercache-bench-* >/dev/null 2>&1").c_str()), 0);
}

TEST_F(CliTest, RuntimeReplayWithoutPrefetchStaysBelowBelady) {
  std::string json_path = dir_ + "/runtime.json";
  BenchRun run = Bench(std::string(kSmallReplay) + "--prefetch=off --dir=" + dir_ + " --json=" + json_path);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  Json json = CheckHierarchy(ParseJson(json_path));
  const Json& gpu = json["tiers"].items[0];
  // On demand only, each miss is exactly one upload.
  EXPECT_EQ(gpu["bytes_down"].Uint(), gpu["misses"].Uint() * json["block_bytes"].Uint());
  EXPECT_FALSE(json["prefetch"]["enabled"].boolean);
  EXPECT_GE(json["belady"]["min_hit_ratio"].number + 1e-9, gpu["hit_ratio_of_all_requests"].number);
  EXPECT_NE(std::system(("ls -d " + dir_ + "/tiercache-bench-* >/dev/null 2>&1").c_str()), 0);
}

TEST_F(CliTest, RuntimeReplayReportsPrefetching) {
  std::string json_path = dir_ + "/prefetch.json";
  BenchRun run = Bench(std::string(kSmallReplay) + "--compute-us=200 --dir=" + dir_ + " --json=" + json_path);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  Json json = CheckHierarchy(ParseJson(json_path));
  const Json& prefetch = json["prefetch"];
  EXPECT_TRUE(prefetch["enabled"].boolean);
  EXPECT_LE(prefetch["useful"].Uint(), prefetch["issued"].Uint());
  EXPECT_LE(prefetch["late"].Uint(), prefetch["useful"].Uint());
  EXPECT_GE(prefetch["accuracy"].number, 0.0);
  EXPECT_LE(prefetch["accuracy"].number, 1.0);
  // A cyclic scan is what the prefetcher learns: it must have covered some
  // of the misses LRU-like demand fetching would take.
  EXPECT_GT(prefetch["useful"].Uint(), 0u);
  ExpectWellFormedSvg(dir_ + "/prefetch.step-time.svg");
}

// With default host sizes the DRAM tier keeps a quarter of the working set
// free of homes, as room for copies of blocks homed further down; the
// slower tiers home the rest, and copies land in DRAM during the run.
TEST_F(CliTest, RuntimeReplayKeepsDramRoomForCopies) {
  std::string json_path = dir_ + "/copies.json";
  BenchRun run = Bench(std::string(kSmallReplay) + "--compute-us=200 --dir=" + dir_ + " --json=" + json_path);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  Json json = CheckHierarchy(ParseJson(json_path));
  const uint64_t working_set = json["working_set_bytes"].Uint();
  uint64_t homed = 0;
  const Json* dram = nullptr;
  for (const Json& tier : json["tiers"].items) {
    homed += tier["homed_bytes"].Uint();
    if (tier["name"].text == "dram") dram = &tier;
  }
  EXPECT_EQ(homed, working_set) << "every block has one home";
  ASSERT_NE(dram, nullptr);
  EXPECT_GT((*dram)["homed_bytes"].Uint(), 0u);
  EXPECT_GE((*dram)["capacity_bytes"].Uint(), (*dram)["homed_bytes"].Uint() + working_set / 4)
      << "no room left for copies";
  // Copies were written into DRAM beyond its homes (demotion or staging).
  EXPECT_GT((*dram)["bytes_down"].Uint(), (*dram)["homed_bytes"].Uint());
}

TEST_F(CliTest, SimulateCsvTraceReproducesHandCounts) {
  // Object ids as a public trace would have them; sizes 1 byte, so 75% of
  // the working set is room for 3 of the 4 objects. Hand counts in
  // simulate_test.cpp: LRU 4 hits, MIN 5 hits.
  std::ofstream csv(dir_ + "/hand.csv");
  csv << "timestamp,obj_id,obj_size\n";
  uint64_t ids[] = {70, 81, 92, 70, 81, 13, 70, 81, 92, 13};
  for (int t = 0; t < 10; ++t) csv << t << "," << ids[t] << ",1\n";
  csv.close();
  BenchRun run = Bench("simulate --trace=" + dir_ + "/hand.csv --policies=lru,min --sizes=75 --quiet --json=" +
                  dir_ + "/sim.json");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_TRUE(run.out.empty());
  Json json = ParseJson(dir_ + "/sim.json");
  const std::vector<Json>& policies = json["policies"].items;
  ASSERT_EQ(policies.size(), 2u);
  EXPECT_EQ(policies[0]["policy"].text, "lru");
  EXPECT_EQ(policies[0]["points"].items[0]["hits"].Uint(), 4u);
  EXPECT_EQ(policies[0]["points"].items[0]["misses"].Uint(), 6u);
  EXPECT_EQ(policies[1]["policy"].text, "min");
  EXPECT_EQ(policies[1]["points"].items[0]["hits"].Uint(), 5u);
  EXPECT_EQ(policies[1]["points"].items[0]["cache_bytes"].Uint(), 3u);
  ExpectWellFormedSvg(dir_ + "/sim.hit-ratio.svg");
}

TEST_F(CliTest, TraceRecordThenConvertRoundTrips) {
  std::string binary = dir_ + "/d.trace", csv = dir_ + "/d.csv";
  BenchRun record = Bench("trace record --workload=dense:layers=3,blocks=2,steps=2 --out=" + binary);
  ASSERT_EQ(record.exit_code, 0) << record.err;
  EXPECT_NE(record.out.find("12 requests"), std::string::npos) << record.out;
  BenchRun convert = Bench("trace convert --trace=" + binary + " --out=" + csv + " --format=csv");
  ASSERT_EQ(convert.exit_code, 0) << convert.err;
  std::string text = ReadFile(csv);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 13) << text;  // header + 12 records
}

}  // namespace
}  // namespace tiercache::bench
