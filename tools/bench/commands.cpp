#include "tools/bench/commands.h"

#include <chrono>
#include <cstdio>
#include <iostream>

#include "common/log.h"
#include "tools/bench/json_output.h"
#include "tools/bench/replay.h"
#include "tools/bench/simulate.h"
#include "tools/bench/stress.h"
#include "tools/bench/svg_plot.h"
#include "tools/bench/table.h"

namespace tiercache::bench {
namespace {

// One line, whatever the message held.
std::string OneLine(std::string text) {
  for (char& c : text) c = (c == '\n' || c == '\r') ? ' ' : c;
  return text;
}

int Fail(const Status& status) {
  std::fprintf(stderr, "tiercache-bench: error: %s\n", OneLine(status.message()).c_str());
  return IsBadInput(status) ? 2 : 1;
}

void AddFallbacks(Report* report) {
  for (const FallbackEvent& event : Fallbacks()) {
    report->fallbacks.push_back(event.name + ": " + event.reason + " (" +
                                std::to_string(event.count) + "x)");
  }
}

}  // namespace

bool IsBadInput(const Status& status) {
  return status.code() == ErrorCode::kInvalidArgument || status.code() == ErrorCode::kNotFound ||
         status.code() == ErrorCode::kCorruption;
}

Result<Workload> LoadWorkload(const Options& options) {
  if (!options.trace_path.empty()) return LoadTrace(options.trace_path, options.trace_format);
  std::string spec = options.workload.empty() ? DefaultWorkload(options.command) : options.workload;
  return GenerateWorkload(spec);
}

Result<Report> RunReportCommand(const Options& options) {
  TC_ASSIGN_OR_RETURN(Workload workload, LoadWorkload(options));
  auto start = std::chrono::steady_clock::now();
  Report report;
  if (options.command == Command::kSimulate) {
    TC_ASSIGN_OR_RETURN(report, SimulateCommand(options, workload));
  } else {
    TC_ASSIGN_OR_RETURN(report, ReplayCommand(options, workload));
  }
  report.wall_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  AddFallbacks(&report);
  return report;
}

Result<std::string> RunTraceCommand(const Options& options) {
  TC_ASSIGN_OR_RETURN(Workload workload, LoadWorkload(options));
  TC_RETURN_IF_ERROR(SaveTrace(workload, options.out_path, options.out_format));
  return "wrote " + std::to_string(workload.requests.size()) + " requests over " +
         std::to_string(workload.block_bytes.size()) + " blocks to " + options.out_path + " (" +
         options.out_format + ")";
}

int BenchMain(int argc, const char* const* argv) {
  Result<Options> options = ParseOptions(argc, argv, ProcessEnvironment());
  if (!options.ok()) return Fail(options.status());
  if (options->command == Command::kHelp) {
    std::fputs(HelpText(options->help_topic).c_str(), stdout);
    return 0;
  }
  if (options->command == Command::kTraceRecord || options->command == Command::kTraceConvert) {
    Result<std::string> summary = RunTraceCommand(*options);
    if (!summary.ok()) return Fail(summary.status());
    if (!options->quiet) std::printf("%s\n", summary->c_str());
    return 0;
  }
  if (options->command == Command::kStress) {
    StressOptions stress;
    stress.seconds = options->seconds;
    stress.threads = static_cast<int>(options->threads);
    stress.dir = options->dir;
    Result<StressReport> result = RunStress(stress);
    if (!result.ok()) return Fail(result.status());
    std::fputs(RenderStressReport(*result).c_str(), stdout);
    return result->ok() ? 0 : 1;
  }
  Result<Report> report = RunReportCommand(*options);
  if (!report.ok()) return Fail(report.status());
  if (!options->quiet) std::fputs(RenderReport(*report).c_str(), stdout);
  if (!options->json_path.empty()) {
    Status written = WriteReportJson(*report, options->json_path);
    if (!written.ok()) return Fail(written);
    std::vector<std::string> plots;
    Status plotted = WritePlots(*report, options->json_path, &plots);
    if (!plotted.ok()) return Fail(plotted);
    if (!options->quiet) {
      std::printf("\nwrote %s", options->json_path.c_str());
      for (const std::string& plot : plots) std::printf(", %s", plot.c_str());
      std::printf("\n");
    }
  }
  return 0;
}

}  // namespace tiercache::bench
