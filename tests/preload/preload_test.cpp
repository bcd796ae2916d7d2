// libtiercache_preload.so under LD_PRELOAD, end to end: preload_probe (a C
// program linked against the shared CUDA runtime, half of it compiled for
// the per-thread default stream) runs with and without the library, and the
// two runs must print the same results. Without a GPU every call passes
// through and must return the real function's code; with one, allocations
// come from the pool and large pageable copies are staged, and the results
// (codes, checksums) must still be the same.
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "prefetch/trace_io.h"
#include "tests/preload/probe_runner.h"

namespace {
using namespace preload_test;

TEST(Preload, ResultsAreTheSameWithAndWithoutTheLibrary) {
  ProbeRun plain = Probe(false);
  ProbeRun loaded = Probe(true);
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  ASSERT_EQ(loaded.exit_code, 0) << loaded.err;
  EXPECT_FALSE(plain.out.empty());
  EXPECT_EQ(plain.out, loaded.out) << loaded.err;
  EXPECT_NE(Value(loaded.out, "malloc"), "");  // the probe got that far
  EXPECT_EQ(Value(loaded.out, "dlsym_next_is_bound"), "1");  // glibc saw the program as the caller
  EXPECT_EQ(Value(loaded.out, "dlsym_default_is_bound"), "1");
  // A library loaded RTLD_LOCAL found its own symbol with RTLD_DEFAULT
  // through both dlsym and dlvsym: glibc saw it as the caller.
  EXPECT_EQ(Value(loaded.out, "scope_default_lookups"), "3") << loaded.out;
  EXPECT_EQ(Value(loaded.out, "dlvsym_other_version"), "0");
}

TEST(Preload, EveryInterposedCallIsObservedIncludingLookupsByName) {
  ProbeRun run = Probe(true);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(Value(run.err, "stats_rc"), "-3 0");  // the buffer rule: size query, then the copy
  std::string stats = Value(run.err, "stats");
  ASSERT_FALSE(stats.empty()) << run.err;
  auto calls = [&](const std::string& api) {
    return Count(stats, api, "served") + Count(stats, api, "passed_through");
  };
  // cudaMalloc: 4 concurrent + 1 + NULL + 0 bytes + 4 copy buffers + 1 found by dlsym and 1 by
  // dlvsym on the runtime's handle. Every one reached the library, served or passed through.
  EXPECT_EQ(calls("cudaMalloc"), 13u) << stats;
  EXPECT_GE(Count(stats, "cudaFree", "passed_through"), 1u);  // the foreign pointer
  // The legacy export, its per-thread one (cudaMallocAsync_ptsz) and that one found by dlvsym.
  EXPECT_EQ(calls("cudaMallocAsync"), 3u) << stats;
  EXPECT_GE(Count(stats, "cudaFreeAsync", "passed_through"), 2u);  // both foreign pointers
  EXPECT_EQ(Count(stats, "cudaMallocFromPoolAsync", "passed_through"), 2u);
  // Three host-to-device copies and their three copies back, in each flavour
  // but for the per-thread one's missing small copy: 4 + 1 legacy, 4 per-thread.
  EXPECT_EQ(Count(stats, "copies", "staged") + Count(stats, "copies", "passed_through"), 9u) << stats;
  // The driver's cuMemAlloc_v2, found by dlsym on a dlopened libcuda (or its
  // stub), on this thread and on a thread with no current context.
  EXPECT_GE(Count(stats, "cuMemAlloc_v2", "served") + Count(stats, "cuMemAlloc_v2", "passed_through"), 2u)
      << stats;
  if (Value(run.out, "malloc") != "0") {
    EXPECT_NE(stats.find("\"pool_active\":false"), std::string::npos);
    EXPECT_NE(stats.find("no CUDA device"), std::string::npos) << stats;
  }
}

TEST(Preload, ErrorCodesOfTheRealFunctionsComeBackWithoutAGpu) {
  ProbeRun plain = Probe(false);
  if (Value(plain.out, "malloc") == "0") GTEST_SKIP() << "a GPU is present: calls succeed";
  ProbeRun loaded = Probe(true);
  for (const char* name : {"malloc", "malloc_null", "free_foreign", "malloc_async", "memcpy",
                           "memcpy_async", "entry_point_by_version", "dlsym_malloc", "dlvsym_malloc",
                           "dlvsym_malloc_async_ptsz", "ptsz_malloc_async", "ptsz_free_async_foreign",
                           "ptsz_malloc_from_null_pool", "ptds_memcpy", "ptsz_memcpy_async",
                           "ptsz_entry_point_by_version", "driver_alloc", "driver_free_foreign",
                           "driver_get_proc", "driver_alloc_no_context"}) {
    EXPECT_EQ(Value(loaded.out, name), Value(plain.out, name)) << name;
    EXPECT_NE(Value(loaded.out, name), "0") << name << " cannot succeed without a GPU";
  }
}

TEST(Preload, TraceIsReplayableAndRecordsPassedThroughCalls) {
  std::string path = testing::TempDir() + "/preload_probe_trace.csv";
  std::remove(path.c_str());
  ProbeRun run = Probe(true, {{"TIERCACHE_TRACE", path}});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  std::string text = ReadFile(path);
  ASSERT_EQ(text.rfind("# tiercache trace v1\n", 0), 0u) << text.substr(0, 200);
  tiercache::Result<tiercache::Trace> trace = tiercache::ReadTraceFile(path);
  ASSERT_TRUE(trace.ok()) << trace.status().ToString();
  std::string malloc_code = Value(run.out, "malloc");
  if (malloc_code == "0") {
    EXPECT_GE(trace.value().records.size(), 6u);  // writes, reads of copied blocks, frees
  } else {
    EXPECT_TRUE(trace.value().records.empty());
    EXPECT_NE(text.find("cudaMalloc 1048576 -> " + malloc_code + " passed through"), std::string::npos)
        << text;
    EXPECT_NE(text.find("cudaMalloc 2097152 -> "), std::string::npos);  // the dlsym'd call
    EXPECT_NE(text.find("cudaMalloc 3145728 -> " + Value(run.out, "dlvsym_malloc")), std::string::npos);
    EXPECT_NE(text.find("cudaMallocAsync 8192 -> " + Value(run.out, "ptsz_malloc_async")),
              std::string::npos);  // cudaMallocAsync_ptsz
    EXPECT_NE(text.find("cudaMallocAsync 16384 -> " + Value(run.out, "dlvsym_malloc_async_ptsz")),
              std::string::npos);
    EXPECT_NE(text.find("cudaMallocFromPoolAsync 8192 -> "), std::string::npos);
    EXPECT_NE(text.find("cuMemAlloc_v2 1048576 -> " + Value(run.out, "driver_alloc")), std::string::npos)
        << text;
  }
  std::remove(path.c_str());
}

TEST(Preload, ReportAtExit) {
  ProbeRun run = Probe(true, {{"TIERCACHE_REPORT", "1"}});
  ASSERT_EQ(run.exit_code, 0);
  EXPECT_NE(run.err.find("tiercache preload report"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("cudaMalloc"), std::string::npos);
  EXPECT_NE(run.err.find("copies passed through"), std::string::npos);
  ProbeRun quiet = Probe(true);
  EXPECT_EQ(quiet.err.find("tiercache preload report"), std::string::npos);
  // A process that made no CUDA call (a helper an engine starts) stays quiet.
  ProbeRun helper = RunProbe(TIERCACHE_PROBE, {"--no-cuda"}, true, {{"TIERCACHE_REPORT", "1"}});
  EXPECT_EQ(helper.exit_code, 0);
  EXPECT_EQ(helper.err, "");
}

TEST(Preload, BadVariablesWarnOnceEachAndTheProgramRuns) {
  ProbeRun plain = Probe(false);
  ProbeRun run = Probe(true, {{"TIERCACHE_STAGE_BUFFERS", "lots"},
                         {"TIERCACHE_NOT_A_SETTING", "1"},
                         {"TIERCACHE_GPU_POLICY", "coin-flip"},
                         {"TIERCACHE_TRACE", "/nonexistent-dir/trace.csv"}});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, plain.out);
  auto lines_with = [&](const std::string& what) {  // warning lines, not the stats JSON
    size_t n = 0;
    std::stringstream lines(run.err);
    for (std::string line; std::getline(lines, line);) {
      n += line.rfind("tiercache preload: ", 0) == 0 && line.find(what) != std::string::npos;
    }
    return n;
  };
  EXPECT_EQ(lines_with("TIERCACHE_STAGE_BUFFERS='lots': using the default 4"), 1u) << run.err;
  EXPECT_EQ(lines_with("unknown variable TIERCACHE_NOT_A_SETTING"), 1u);
  EXPECT_EQ(lines_with("TIERCACHE_GPU_POLICY='coin-flip': using the default"), 1u);
  EXPECT_EQ(lines_with("no trace is recorded"), 1u);
}

TEST(Preload, StaticRuntimeIsDetectedInOneLine) {
  ProbeRun plain = RunProbe(TIERCACHE_STATIC_PROBE, {"--static-check"}, false);
  ProbeRun loaded = RunProbe(TIERCACHE_STATIC_PROBE, {"--static-check"}, true);
  ASSERT_EQ(loaded.exit_code, 0) << loaded.err;
  EXPECT_EQ(loaded.out, plain.out);
  std::string line = "links the static CUDA runtime";
  size_t at = loaded.err.find(line);
  ASSERT_NE(at, std::string::npos) << loaded.err;
  EXPECT_EQ(loaded.err.find(line, at + 1), std::string::npos);
  ProbeRun shared = Probe(true);
  EXPECT_EQ(shared.err.find(line), std::string::npos);
}

}  // namespace
