// The preload library's parts that hold no interposed symbol: options, the
// driver entry-point table, the static-runtime check, the trace writer, the
// real-symbol lookups, the ELF lookup behind them and the pageable stager
// (on the emulated device).
#include <cuda_runtime_api.h>
#include <dlfcn.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "alloc/emulated_device.h"
#include "prefetch/trace_io.h"
#include "runtime/c_api_handle.h"
#include "runtime/runtime.h"
#include "tests/preload/built_library.h"
#include "tiercache/tiercache.h"
#include "tools/preload/driver_entry_points.h"
#include "tools/preload/elf_lookup.h"
#include "tools/preload/pageable_stager.h"
#include "tools/preload/preload_options.h"
#include "tools/preload/preload_trace.h"
#include "tools/preload/real_symbols.h"
#include "tools/preload/static_runtime_check.h"
#include "tiers/topology.h"

namespace tiercache::preload {
namespace {

bool HasWarning(const ParsedOptions& parsed, const std::string& a, const std::string& b) {
  for (const std::string& w : parsed.warnings) {
    if (w.find(a) != std::string::npos && w.find(b) != std::string::npos) return true;
  }
  return false;
}

TEST(PreloadOptions, DefaultsWhenNothingIsSet) {
  ParsedOptions parsed = ParsePreloadOptions({});
  EXPECT_TRUE(parsed.warnings.empty());
  EXPECT_TRUE(parsed.options.route_allocations);
  EXPECT_TRUE(parsed.options.stage_copies);
  EXPECT_FALSE(parsed.options.report);
  EXPECT_EQ(parsed.options.stage_min_bytes, 4ull << 20);
  EXPECT_EQ(parsed.options.runtime.dram_bytes, 0u);  // no pinned DRAM tier unless asked
}

TEST(PreloadOptions, ReadsEveryVariable) {
  ParsedOptions parsed = ParsePreloadOptions({{"TIERCACHE_TRACE", "/tmp/t.csv"},
                                              {"TIERCACHE_REPORT", "1"},
                                              {"TIERCACHE_PRELOAD_ALLOC", "off"},
                                              {"TIERCACHE_STAGE", "no"},
                                              {"TIERCACHE_STAGE_MIN_BYTES", "1MiB"},
                                              {"TIERCACHE_STAGE_CHUNK_BYTES", "8MiB"},
                                              {"TIERCACHE_STAGE_BUFFERS", "6"},
                                              {"TIERCACHE_STAGE_THREADS", "3"},
                                              {"TIERCACHE_PAGEABLE_GBPS", "9.5"},
                                              {"TIERCACHE_FREE_SYNC", "0"},
                                              {"TIERCACHE_GPU_BUDGET_BYTES", "2GiB"},
                                              {"TIERCACHE_DEVICE", "cuda"}});
  EXPECT_TRUE(parsed.warnings.empty()) << parsed.warnings.front();
  const PreloadOptions& o = parsed.options;
  EXPECT_EQ(o.trace_path, "/tmp/t.csv");
  EXPECT_TRUE(o.report);
  EXPECT_FALSE(o.route_allocations);
  EXPECT_FALSE(o.stage_copies);
  EXPECT_EQ(o.stage_min_bytes, 1ull << 20);
  EXPECT_EQ(o.stage_chunk_bytes, 8ull << 20);
  EXPECT_EQ(o.stage_buffers, 6);
  EXPECT_EQ(o.stage_threads, 3);
  EXPECT_DOUBLE_EQ(o.pageable_gbps, 9.5);
  EXPECT_FALSE(o.free_synchronizes);
  EXPECT_EQ(o.runtime.gpu_budget_bytes, 2ull << 30);
}

TEST(PreloadOptions, MalformedValuesWarnOnceAndKeepTheDefault) {
  ParsedOptions parsed = ParsePreloadOptions({{"TIERCACHE_STAGE_BUFFERS", "lots"},
                                              {"TIERCACHE_STAGE_CHUNK_BYTES", "1KiB"},
                                              {"TIERCACHE_REPORT", "maybe"},
                                              {"TIERCACHE_PAGEABLE_GBPS", "-3"},
                                              {"TIERCACHE_GPU_POLICY", "fifo-ish"}});
  EXPECT_EQ(parsed.warnings.size(), 5u);
  EXPECT_TRUE(HasWarning(parsed, "TIERCACHE_STAGE_BUFFERS='lots'", "default 4"));
  EXPECT_TRUE(HasWarning(parsed, "TIERCACHE_STAGE_CHUNK_BYTES='1KiB'", "default 16MiB"));
  EXPECT_TRUE(HasWarning(parsed, "TIERCACHE_REPORT='maybe'", "default 0"));
  EXPECT_TRUE(HasWarning(parsed, "TIERCACHE_PAGEABLE_GBPS='-3'", "default 6.5"));
  EXPECT_TRUE(HasWarning(parsed, "TIERCACHE_GPU_POLICY='fifo-ish'", "default"));
  EXPECT_EQ(parsed.options.stage_buffers, 4);
  EXPECT_EQ(parsed.options.stage_chunk_bytes, 16ull << 20);
  EXPECT_EQ(parsed.options.runtime.gpu_policy, RuntimeConfig{}.gpu_policy);
}

TEST(PreloadOptions, TheHostedRuntimeOpensWithTheDefaults) {
  // The runtime the library hosts: no DRAM tier, the allocator serving.
  RuntimeConfig config = ParsePreloadOptions({}).options.runtime;
  Result<std::unique_ptr<Runtime>> runtime = Runtime::Create(config, std::make_shared<EmulatedDevice>());
  ASSERT_TRUE(runtime.ok()) << runtime.status().ToString();
  EXPECT_EQ(runtime.value()->tier("dram"), nullptr);
  Result<void*> p = runtime.value()->allocator().Allocate(1 << 20, nullptr);
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(runtime.value()->allocator().Free(p.value(), nullptr).ok());
}

TEST(PreloadOptions, TheHostedRuntimesHandleCannotBeClosed) {
  // The handle tiercache_preload_runtime() gives out is borrowed: the
  // runtime behind it also serves the intercepted allocations.
  RuntimeConfig config = ParsePreloadOptions({}).options.runtime;
  auto handle = std::make_unique<tiercache_runtime>();
  handle->runtime = Runtime::Create(config, std::make_shared<EmulatedDevice>()).value();
  handle->borrowed = true;
  EXPECT_EQ(tiercache_close(handle.get()), TIERCACHE_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(tiercache_last_error()).find("preload library"), std::string::npos);
  EXPECT_NE(handle->runtime, nullptr);  // still there
}

TEST(PreloadOptions, UnknownVariablesAndUnreadableConfigWarn) {
  ParsedOptions parsed = ParsePreloadOptions(
      {{"TIERCACHE_NO_SUCH_THING", "1"}, {"TIERCACHE_CONFIG", "/nonexistent/tiercache.json"},
       {"TIERCACHE_LOG", "debug"}, {"TIERCACHE_BENCH_STEPS", "3"}});
  EXPECT_EQ(parsed.warnings.size(), 2u);
  EXPECT_TRUE(HasWarning(parsed, "TIERCACHE_NO_SUCH_THING", "unknown"));
  EXPECT_TRUE(HasWarning(parsed, "TIERCACHE_CONFIG", "built-in"));
}

TEST(PreloadOptions, EveryDocumentedVariableIsRead) {
  for (const VariableDoc& doc : PreloadVariableDocs()) {
    ParsedOptions parsed = ParsePreloadOptions({{doc.name, "not-a-value-for-anything"}});
    if (std::string(doc.name) == "TIERCACHE_TRACE") continue;  // any path is a path
    EXPECT_TRUE(HasWarning(parsed, doc.name, "default")) << doc.name;
    EXPECT_FALSE(HasWarning(parsed, doc.name, "unknown")) << doc.name;
  }
}

TEST(DriverEntryPoints, InterposesTheAllocationFamilyByVersion) {
  EXPECT_EQ(InterposedByVersion("cuMemAlloc", 12000, 0), DriverFunction::kMemAlloc);
  EXPECT_EQ(InterposedByVersion("cuMemAlloc", 3020, 0), DriverFunction::kMemAlloc);
  EXPECT_EQ(InterposedByVersion("cuMemAlloc", 3010, 0), DriverFunction::kNone);  // 32-bit sizes
  EXPECT_EQ(InterposedByVersion("cuMemFree", 13000, 0), DriverFunction::kMemFree);
  EXPECT_EQ(InterposedByVersion("cuMemAllocAsync", 11020, 0), DriverFunction::kMemAllocAsync);
  EXPECT_EQ(InterposedByVersion("cuMemAllocAsync", 11010, 0), DriverFunction::kNone);
  EXPECT_EQ(InterposedByVersion("cuMemAllocAsync", 12000, kPerThreadDefaultStreamFlag),
            DriverFunction::kMemAllocAsyncPerThread);
  EXPECT_EQ(InterposedByVersion("cuMemFreeAsync", 12000, kPerThreadDefaultStreamFlag),
            DriverFunction::kMemFreeAsyncPerThread);
  EXPECT_EQ(InterposedByVersion("cuGetProcAddress", 11030, 0), DriverFunction::kGetProcAddress);
  EXPECT_EQ(InterposedByVersion("cuGetProcAddress", 12000, 0), DriverFunction::kGetProcAddressV2);
  EXPECT_EQ(InterposedByVersion("cuGetProcAddress", 11020, 0), DriverFunction::kNone);
  EXPECT_EQ(InterposedByVersion("cuMemcpyHtoD", 12000, 0), DriverFunction::kNone);
  EXPECT_EQ(InterposedByVersion("cuMemAlloc_v2", 12000, 0), DriverFunction::kNone);  // base names only
}

TEST(DriverEntryPoints, PerThreadLookupsDefaultToThePerThreadFlavour) {
  EXPECT_EQ(PerThreadLookupFlags(0), kPerThreadDefaultStreamFlag);
  EXPECT_EQ(PerThreadLookupFlags(kLegacyStreamFlag), kLegacyStreamFlag);  // asked for: kept
  EXPECT_EQ(PerThreadLookupFlags(kPerThreadDefaultStreamFlag), kPerThreadDefaultStreamFlag);
  EXPECT_EQ(PerThreadLookupFlags(1u << 4), (1u << 4) | kPerThreadDefaultStreamFlag);  // other bits stay
  EXPECT_EQ(InterposedByVersion("cuMemAllocAsync", 12000, PerThreadLookupFlags(0)),
            DriverFunction::kMemAllocAsyncPerThread);
  EXPECT_EQ(InterposedByVersion("cuMemFreeAsync", 12000, PerThreadLookupFlags(kLegacyStreamFlag)),
            DriverFunction::kMemFreeAsync);
  EXPECT_EQ(InterposedByVersion("cuMemAlloc", 12000, PerThreadLookupFlags(0)), DriverFunction::kMemAlloc);
}

TEST(DriverEntryPoints, SymbolNamesRoundTrip) {
  for (DriverFunction f : {DriverFunction::kMemAlloc, DriverFunction::kMemFree,
                           DriverFunction::kMemAllocAsync, DriverFunction::kMemFreeAsync,
                           DriverFunction::kMemAllocAsyncPerThread,
                           DriverFunction::kMemFreeAsyncPerThread, DriverFunction::kGetProcAddress,
                           DriverFunction::kGetProcAddressV2}) {
    EXPECT_EQ(InterposedBySymbol(SymbolName(f)), f) << SymbolName(f);
  }
  EXPECT_EQ(InterposedBySymbol("cuMemAlloc"), DriverFunction::kNone);  // the 32-bit v1 export
  EXPECT_EQ(InterposedBySymbol("cuInit"), DriverFunction::kNone);
}

TEST(ElfLookup, FindsTheDefinitionOfExactlyTheVersionAsked) {
  // What glibc's dlvsym answers (this binary defines no dlvsym of its own).
  const std::string runtime_version = "libcudart.so." + std::to_string(CUDART_VERSION / 1000);
  const std::pair<const char*, const char*> lookups[] = {
      {"dlvsym", "GLIBC_2.34"}, {"dlvsym", "GLIBC_2.2.5"}, {"dlsym", "GLIBC_2.34"},
      {"dlsym", "GLIBC_2.2.5"}, {"getpid", "GLIBC_2.2.5"}, {"cudaMalloc", runtime_version.c_str()}};
  for (const auto& [name, version] : lookups) {
    EXPECT_EQ(LookUpLoadedDefinition(name, version), dlvsym(RTLD_DEFAULT, name, version))
        << name << "@" << version;
  }
  EXPECT_EQ(LookUpLoadedDefinition("getpid", "GLIBC_2.2.5"), reinterpret_cast<void*>(&getpid));
  void* glibc_dlvsym = LookUpLoadedDefinition("dlvsym", "GLIBC_2.34");
  if (glibc_dlvsym == nullptr) glibc_dlvsym = LookUpLoadedDefinition("dlvsym", "GLIBC_2.2.5");
  EXPECT_NE(glibc_dlvsym, nullptr);
  EXPECT_NE(LookUpLoadedDefinition("cudaMalloc", runtime_version.c_str()), nullptr);
  EXPECT_EQ(LookUpLoadedDefinition("dlvsym", "GLIBC_9.99"), nullptr);
  EXPECT_EQ(LookUpLoadedDefinition("no_such_function", "GLIBC_2.2.5"), nullptr);
  EXPECT_EQ(LookUpLoadedDefinition(nullptr, "GLIBC_2.2.5"), nullptr);
  EXPECT_EQ(LookUpLoadedDefinition("getpid", nullptr), nullptr);
  // An object outside the global scope (RTLD_LOCAL), and a data symbol.
  // At its build path, or beside the other libraries of a pack on a GPU machine.
  void* scope = dlopen(preload_test::BuiltLibrary(TIERCACHE_PROBE_SCOPE_LIBRARY).c_str(), RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(scope, nullptr) << dlerror();
  EXPECT_EQ(LookUpLoadedDefinition("cuProbeScopeMarker", "PROBE_SCOPE_1"),
            dlsym(scope, "cuProbeScopeMarker"));
  EXPECT_NE(LookUpLoadedDefinition("cuProbeScopeMarker", "PROBE_SCOPE_1"), nullptr);
  EXPECT_EQ(LookUpLoadedDefinition("cuProbeScopeMarker", "PROBE_SCOPE_2"), nullptr);
  dlclose(scope);
}

TEST(RealSymbols, GlibcDlsymAndTheRuntimeAreFound) {
  DlsymFunction real = RealDlsym();
  ASSERT_NE(real, nullptr);
  EXPECT_EQ(real(RTLD_DEFAULT, "getpid"), reinterpret_cast<void*>(&getpid));
  DlvsymFunction real_versioned = RealDlvsym();
  ASSERT_NE(real_versioned, nullptr);
  EXPECT_EQ(real_versioned(RTLD_DEFAULT, "getpid", "GLIBC_2.2.5"), reinterpret_cast<void*>(&getpid));
  EXPECT_EQ(real_versioned(RTLD_DEFAULT, "getpid", "GLIBC_9.99"), nullptr);
  // This binary links the shared runtime: its cudaMalloc is the next one.
  EXPECT_NE(FindRuntimeSymbol("cudaMalloc"), nullptr);
  EXPECT_EQ(FindRuntimeSymbol("cudaMalloc"), real(RTLD_DEFAULT, "cudaMalloc"));
  // A library loaded privately (RTLD_LOCAL, as Python loads extensions and
  // what they need) is outside the global scope; it is still found. The
  // driver is one: the toolkit's stub here, the real one on a GPU machine.
  void* driver = dlopen(TIERCACHE_DRIVER_STUB, RTLD_NOW | RTLD_LOCAL);
  if (driver == nullptr) driver = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(driver, nullptr) << dlerror();
  EXPECT_EQ(real(RTLD_DEFAULT, "cuMemAlloc_v2"), nullptr);
  EXPECT_NE(FindDriverSymbol("cuMemAlloc_v2"), nullptr);
  EXPECT_EQ(FindDriverSymbol("cuMemAlloc_v2"), real(driver, "cuMemAlloc_v2"));
  EXPECT_EQ(FindRuntimeSymbol("cudaNoSuchFunction"), nullptr);
  RealSlot slot("cudaNoSuchFunction", Library::kRuntime);
  EXPECT_EQ(slot.Get(), nullptr);
  int marker = 0;
  slot.Offer(&marker);
  slot.Offer(nullptr);
  EXPECT_EQ(slot.Get(), &marker);  // the first pointer offered stays
  EXPECT_FALSE(CallerIsCudaLibrary(reinterpret_cast<void*>(&getpid)));
  // "This library" is whatever object holds real_symbols.cpp: here, this test.
  EXPECT_TRUE(FromThisLibrary(reinterpret_cast<void*>(&RealDlsym)));
  EXPECT_FALSE(FromThisLibrary(reinterpret_cast<void*>(&getpid)));
  EXPECT_FALSE(FromThisLibrary(FindRuntimeSymbol("cudaMalloc")));
  EXPECT_TRUE(CallerIsCudaLibrary(FindRuntimeSymbol("cudaMalloc")));
}

TEST(StaticRuntimeCheck, TellsStaticFromSharedLinking) {
  EXPECT_FALSE(LinksStaticCudaRuntime("/proc/self/exe"));  // links libcudart.so
  EXPECT_TRUE(LinksStaticCudaRuntime(TIERCACHE_STATIC_PROBE));
  EXPECT_FALSE(LinksStaticCudaRuntime("/nonexistent"));
  std::string text = testing::TempDir() + "/not_elf.txt";
  // The marker is built at run time: as a literal it would sit in this
  // very binary and make it look like a static-runtime program.
  std::string marker = ".mhs.traduc/";
  std::reverse(marker.begin(), marker.end());
  std::ofstream(text) << marker << " in a text file";
  EXPECT_FALSE(LinksStaticCudaRuntime(text));  // the marker alone, in no ELF file
  std::remove(text.c_str());
}

TEST(PreloadTrace, WritesAReplayableBlockTrace) {
  std::string path = testing::TempDir() + "/preload_trace_test.csv";
  {
    Result<std::unique_ptr<PreloadTrace>> trace = PreloadTrace::Open(path);
    ASSERT_TRUE(trace.ok()) << trace.status().ToString();
    PreloadTrace& t = *trace.value();
    alignas(256) static char device[4096];
    t.Allocated(1, device, 1024);
    t.Allocated(2, device + 1024, 2048);
    t.PassedThrough("cudaMalloc", 64, 35, "no CUDA device");
    t.Touched(device + 1000, 100);  // spans both blocks
    t.Touched(device + 3500, 10);   // inside neither
    t.Freed(device);
    t.Freed(device);  // not live any more: nothing written
  }
  Result<Trace> read = ReadTraceFile(path);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  const std::vector<TraceRecord>& r = read.value().records;
  ASSERT_EQ(r.size(), 5u);
  EXPECT_EQ(r[0].op, TraceOp::kWrite);
  EXPECT_EQ(r[0].bytes, 1024u);
  EXPECT_EQ(r[1].id, 2u);
  EXPECT_EQ(r[2].op, TraceOp::kRead);
  EXPECT_EQ(r[2].id, 1u);
  EXPECT_EQ(r[3].op, TraceOp::kRead);
  EXPECT_EQ(r[3].id, 2u);
  EXPECT_EQ(r[4].op, TraceOp::kFree);
  EXPECT_EQ(r[4].id, 1u);
  std::ifstream in(path);
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(all.find("cudaMalloc 64 -> 35 passed through: no CUDA device"), std::string::npos);
  std::remove(path.c_str());
}

class StagerTest : public testing::Test {
 protected:
  void SetUp() override {
    EmulatedDeviceOptions o;
    o.total_memory = 1ull << 30;
    device_ = std::make_shared<EmulatedDevice>(o);
    options_.chunk_bytes = 1 << 20;
    options_.buffers = 3;
    options_.threads = 4;
  }
  std::vector<unsigned char> Pattern(size_t n, int seed) {
    std::vector<unsigned char> v(n);
    for (size_t i = 0; i < n; ++i) v[i] = static_cast<unsigned char>(i * 31 + seed);
    return v;
  }
  std::vector<unsigned char> ReadBack(void* dst, size_t n) {
    std::vector<unsigned char> out(n);
    EXPECT_TRUE(device_->CopyAsync(out.data(), dst, n, CopyKind::kDeviceToHost, nullptr).ok());
    EXPECT_TRUE(device_->StreamSynchronize(nullptr).ok());
    return out;
  }
  std::shared_ptr<EmulatedDevice> device_;
  StagerOptions options_;
};

TEST_F(StagerTest, SynchronousCopyLandsEveryByteThroughPinnedBuffers) {
  auto stager = PageableStager::Create(device_, nullptr, options_);
  ASSERT_TRUE(stager.ok()) << stager.status().ToString();
  size_t n = 7 * (1 << 20) + 4321;  // not a chunk multiple; wraps the 3-buffer ring twice
  std::vector<unsigned char> src = Pattern(n, 5);
  void* dst = device_->AllocateMemory(n).value();
  uint64_t pageable_before = device_->stats().pageable_host_copies;
  ASSERT_TRUE(stager.value()->TryCopyToDevice(dst, src.data(), n, nullptr, true).ok());
  EXPECT_EQ(device_->stats().pageable_host_copies, pageable_before);  // every DMA from the ring
  EXPECT_GE(device_->stats().pinned_host_copies, 8u);
  EXPECT_EQ(ReadBack(dst, n), src);
  StagerStats s = stager.value()->stats();
  EXPECT_EQ(s.copies, 1u);
  EXPECT_EQ(s.bytes, n);
  EXPECT_EQ(s.threads, 4);
  (void)device_->FreeMemory(dst);
}

TEST_F(StagerTest, AsyncCopyReturnsWithTheSourceReusableAndKeepsStreamOrder) {
  device_->set_copy_delay(std::chrono::microseconds(2000));  // DMA slower than the host
  auto stager = PageableStager::Create(device_, nullptr, options_);
  ASSERT_TRUE(stager.ok());
  Stream stream = device_->CreateStream().value();
  size_t n = 5 * (1 << 20) + 17;
  std::vector<unsigned char> src = Pattern(n, 9);
  const std::vector<unsigned char> expected = src;
  void* dst = device_->AllocateMemory(n).value();
  // Work enqueued before the copy runs before it; work after, after it.
  ASSERT_TRUE(device_->MemsetAsync(dst, 0xEE, n, stream).ok());
  ASSERT_TRUE(stager.value()->TryCopyToDevice(dst, src.data(), n, stream, false).ok());
  std::fill(src.begin(), src.end(), 0);  // the caller reuses its buffer at once
  ASSERT_TRUE(device_->MemsetAsync(static_cast<char*>(dst) + n - 16, 0x11, 16, stream).ok());
  ASSERT_TRUE(device_->StreamSynchronize(stream).ok());
  std::vector<unsigned char> got = ReadBack(dst, n);
  std::vector<unsigned char> want = expected;
  std::fill(want.end() - 16, want.end(), 0x11);
  EXPECT_EQ(got, want);
  (void)device_->FreeMemory(dst);
  (void)device_->DestroyStream(stream);
}

TEST_F(StagerTest, ArenaWorkersAreBoundToTheNodeAndTheCallerIsNot) {
  Result<std::shared_ptr<const Topology>> topology = Topology::ThisMachine();
  ASSERT_TRUE(topology.ok()) << topology.status().ToString();
  const NumaNode& node = topology.value()->numa_nodes().front();
  std::vector<int> cpus = node.cpus;
  if (cpus.size() > 1) cpus.pop_back();  // a strict subset, so binding is visible
  cpu_set_t before;
  ASSERT_EQ(sched_getaffinity(0, sizeof(before), &before), 0);
  bool can_bind = false;
  std::thread([&] { can_bind = topology.value()->BindThreadToCpus(cpus).ok(); }).join();
  if (!can_bind) GTEST_SKIP() << "this machine refuses thread binding";
  options_.numa_node = node.os_index;
  options_.cpus = cpus;
  auto stager = PageableStager::Create(device_, topology.value(), options_);
  ASSERT_TRUE(stager.ok()) << stager.status().ToString();
  size_t n = 4 << 20;
  std::vector<unsigned char> src = Pattern(n, 3);
  void* dst = device_->AllocateMemory(n).value();
  ASSERT_TRUE(stager.value()->TryCopyToDevice(dst, src.data(), n, nullptr, true).ok());
  EXPECT_EQ(ReadBack(dst, n), src);
  EXPECT_TRUE(stager.value()->stats().threads_bound);
  EXPECT_EQ(stager.value()->stats().numa_node, node.os_index);
  cpu_set_t after;
  ASSERT_EQ(sched_getaffinity(0, sizeof(after), &after), 0);
  EXPECT_TRUE(CPU_EQUAL(&before, &after));  // the application's thread keeps its affinity
  (void)device_->FreeMemory(dst);
}

TEST_F(StagerTest, BadArgumentsAreRefused) {
  EXPECT_FALSE(PageableStager::Create(nullptr, nullptr, options_).ok());
  StagerOptions bad = options_;
  bad.buffers = 1;
  EXPECT_EQ(PageableStager::Create(device_, nullptr, bad).status().code(), ErrorCode::kInvalidArgument);
  auto stager = PageableStager::Create(device_, nullptr, options_);
  ASSERT_TRUE(stager.ok());
  char byte = 0;
  EXPECT_EQ(stager.value()->TryCopyToDevice(nullptr, &byte, 1, nullptr, true).code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(stager.value()->TryCopyToDevice(&byte, &byte, 0, nullptr, true).code(),
            ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace tiercache::preload
