// The report writers: JSON that an independent parser accepts with the
// numbers a reader recomputes, SVG that is well-formed XML, the table and the
// progress bar.
#include <gtest/gtest.h>

#include <cstdio>

#include "common/check.h"

#include "tests/bench_tool/test_parsers.h"
#include "tools/bench/json_output.h"
#include "tools/bench/progress.h"
#include "tools/bench/svg_plot.h"
#include "tools/bench/table.h"

namespace tiercache::bench {
namespace {

using testing::CheckXml;
using testing::Json;
using testing::JsonParser;

// Two tiers, 10 requests of 4 KiB blocks: 6 GPU hits, 4 served from NVMe.
Report SampleReport() {
  Report report;
  report.mode = "replay";
  report.workload = "dense:\"quoted\" & <odd>";
  report.device = "emulated";
  report.requests = 10;
  report.unique_blocks = 5;
  report.block_bytes = 4096;
  report.working_set_bytes = 5 * 4096;
  TierReport gpu;
  gpu.name = "gpu";
  gpu.capacity_bytes = 3 * 4096;
  gpu.requests_reaching = 10;
  gpu.hits = 6;
  gpu.transfers_down = 4;
  gpu.bytes_down = gpu.link_bytes = 4 * 4096;
  gpu.transfer_ns = 1000;
  gpu.link = {"host->gpu", 55.2e9, "reference"};
  TierReport nvme;
  nvme.name = "nvme";
  nvme.requests_reaching = 4;
  nvme.hits = 4;
  nvme.transfers_up = 4;
  nvme.bytes_up = nvme.link_bytes = 4 * 4096;
  nvme.transfer_ns = 8000;
  nvme.link = {"nvme->staging", 1.3e9, "reference"};
  report.tiers = {gpu, nvme};
  report.step_times = {{{0, 5000}, 9000}, {{0, 1000}, 3000}};
  report.belady_hit_ratio = 0.7;
  PolicyCurve lru{"lru", {{4096, 0.2, 10, 2, 8, 8 * 4096, {}}, {8192, 0.4, 10, 4, 6, 6 * 4096, {}}}};
  PolicyCurve min{"min", {{4096, 0.2, 10, 3, 7, 7 * 4096, {}}, {8192, 0.4, 10, 6, 4, 4 * 4096, {}}}};
  report.curves = {lru, min};
  report.notes = {"line one\nline two"};
  return report;
}

Json ParseOrFail(const std::string& text) {
  Json json;
  std::string error;
  EXPECT_TRUE(JsonParser(text).Parse(&json, &error)) << error << "\n" << text;
  return json;
}

TEST(JsonOutputTest, ParsesAndCarriesTheCounts) {
  Report report = SampleReport();
  Json json = ParseOrFail(ReportToJson(report));
  EXPECT_EQ(json["mode"].text, "replay");
  EXPECT_EQ(json["workload"].text, report.workload);
  EXPECT_EQ(json["requests"].Uint(), 10u);
  const Json& tiers = json["tiers"];
  ASSERT_EQ(tiers.items.size(), 2u);
  const Json& gpu = tiers.items[0];
  EXPECT_EQ(gpu["hits"].Uint() + gpu["misses"].Uint(), gpu["requests_reaching"].Uint());
  EXPECT_DOUBLE_EQ(gpu["hit_ratio_of_all_requests"].number, 0.6);
  const Json& nvme = tiers.items[1];
  EXPECT_DOUBLE_EQ(nvme["hit_ratio_of_all_requests"].number, 0.4);
  EXPECT_DOUBLE_EQ(nvme["hit_ratio_of_requests_reaching"].number, 1.0);
  EXPECT_EQ(nvme["bytes_up"].Uint(), nvme["transfers_up"].Uint() * json["block_bytes"].Uint());
  // 16 KiB in 8 us.
  EXPECT_NEAR(nvme["achieved_bytes_per_second"].number, 16384 / 8e-6, 1e3);
  EXPECT_NEAR(json["belady"]["gap"].number, 0.1, 1e-9);
  EXPECT_EQ(json["policies"].items.size(), 2u);
  EXPECT_EQ(json["policies"].items[1]["points"].items[1]["hits"].Uint(), 6u);
  EXPECT_DOUBLE_EQ(json["step_time"]["mean_ms"].number, 0.006);
  EXPECT_DOUBLE_EQ(json["step_time"]["mean_ms_by_part"]["nvme"].number, 0.003);
  EXPECT_DOUBLE_EQ(json["step_time"]["mean_ms_by_part"]["compute"].number, 0.003);
  EXPECT_EQ(json["notes"].items[0].text, "line one\nline two");
}

TEST(JsonOutputTest, EmptyReportIsStillValid) {
  Json json = ParseOrFail(ReportToJson(Report()));
  EXPECT_EQ(json["belady"].kind, Json::kNull);
  EXPECT_EQ(json["tiers"].items.size(), 0u);
}

TEST(JsonWriterTest, MisuseThrows) {
  JsonWriter json;
  json.BeginObject();
  EXPECT_THROW(json.Uint(1), LogicError);  // a member without a key
  EXPECT_THROW(json.text(), LogicError);   // still open
  json.Key("x").Double(1.0 / 0.0);          // non-finite becomes null
  json.EndObject();
  EXPECT_EQ(json.text(), "{\"x\":null}");
}

TEST(SvgTest, PlotsAreWellFormedXml) {
  Report report = SampleReport();
  std::string error;
  std::string hit_ratio = HitRatioSvg(report.curves, report.workload, 0.6, 0.6);
  EXPECT_TRUE(CheckXml(hit_ratio, &error)) << error;
  EXPECT_NE(hit_ratio.find("&lt;odd&gt;"), std::string::npos);
  EXPECT_NE(hit_ratio.find("<polyline"), std::string::npos);
  std::string steps = StepTimeSvg(report);
  EXPECT_TRUE(CheckXml(steps, &error)) << error;
  EXPECT_NE(steps.find("waiting on nvme"), std::string::npos);
  // Many steps are grouped into at most 64 bars.
  report.step_times.assign(1000, {{0, 10}, 20});
  std::string grouped = StepTimeSvg(report);
  EXPECT_TRUE(CheckXml(grouped, &error)) << error;
  EXPECT_NE(grouped.find("groups of 16"), std::string::npos);
}

TEST(SvgTest, CheckerRejectsBrokenXml) {
  std::string error;
  for (const char* bad : {"<svg><g></svg></g>", "<svg a=1/>", "<svg a=\"1\" a=\"2\"/>", "<svg>",
                          "<svg/><svg/>", "<svg>&nbsp;</svg>", "text<svg/>"}) {
    EXPECT_FALSE(CheckXml(bad, &error)) << bad;
  }
}

TEST(SvgTest, PlotPathsSitNextToTheJson) {
  EXPECT_EQ(PlotPath("out/run.json", "hit-ratio"), "out/run.hit-ratio.svg");
  EXPECT_EQ(PlotPath("a.b/run", "step-time"), "a.b/run.step-time.svg");
}

TEST(TableTest, LabelsBothHitRatios) {
  std::string table = RenderReport(SampleReport());
  EXPECT_NE(table.find("hit% of all"), std::string::npos);
  EXPECT_NE(table.find("hit% of reaching"), std::string::npos);
  EXPECT_NE(table.find("60.0%"), std::string::npos);   // gpu, of all
  EXPECT_NE(table.find("100.0%"), std::string::npos);  // nvme, of reaching
  EXPECT_NE(table.find("gap 10.0 points"), std::string::npos);
  EXPECT_NE(table.find("40%"), std::string::npos);     // a simulated cache size
}

TEST(TextTableTest, AlignsColumns) {
  TextTable table({"a", "bb"});
  table.AddRow({"long", "1"});
  EXPECT_EQ(table.Render(), "a     bb\n--------\nlong   1\n");
  EXPECT_THROW(table.AddRow({"x"}), LogicError);
}

TEST(ProgressTest, DrawsOnlyWhenForcedOrOnATerminal) {
  std::FILE* sink = std::tmpfile();
  ASSERT_NE(sink, nullptr);
  {
    ProgressBar never("x", 10, ProgressMode::kNever, sink);
    never.Update(5);
    EXPECT_EQ(never.draws(), 0u);
    ProgressBar automatic("x", 10, ProgressMode::kAuto, sink);  // a file is no terminal
    EXPECT_FALSE(automatic.enabled());
    ProgressBar always("x", 10, ProgressMode::kAlways, sink);
    always.Update(5);
    EXPECT_EQ(always.draws(), 1u);
    always.Finish();
    EXPECT_EQ(always.draws(), 2u);
  }
  std::fclose(sink);
  EXPECT_EQ(ProgressBar::Render("run", 5, 10, 10), "[#####     ]  50% run 5/10");
  EXPECT_EQ(ProgressBar::Render("run", 12, 10, 4), "[####] 100% run 12/10");
}

}  // namespace
}  // namespace tiercache::bench
