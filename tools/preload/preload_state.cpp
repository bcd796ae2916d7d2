#include "tools/preload/preload_state.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <functional>

#include "alloc/cuda_device.h"
#include "common/log.h"
#include "runtime/c_api_handle.h"
#include "runtime/runtime.h"
#include "tiers/topology.h"
#include "tools/preload/real_symbols.h"

namespace tiercache::preload {
namespace {

thread_local int inside_depth = 0;

// The driver's, wherever the application or the runtime loaded it from.
RealSlot real_ctx_get_current{"cuCtxGetCurrent", Library::kDriver};
RealSlot real_ctx_set_current{"cuCtxSetCurrent", Library::kDriver};

constexpr const char* kApiNames[] = {
    "cudaMalloc", "cudaFree", "cudaMallocAsync", "cudaFreeAsync", "cudaMallocFromPoolAsync",
    "cuMemAlloc_v2", "cuMemFree_v2", "cuMemAllocAsync", "cuMemFreeAsync", "tiercache_torch_alloc",
    "tiercache_torch_free", "cudaMemcpy", "cudaMemcpyAsync"};
static_assert(sizeof(kApiNames) / sizeof(kApiNames[0]) == static_cast<size_t>(Api::kCount));

std::string Quote(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) {
      out += ' ';
      continue;
    }
    out += c;
  }
  return out + "\"";
}

double Gib(uint64_t bytes) { return static_cast<double>(bytes) / (1ull << 30); }

}  // namespace

const char* ApiName(Api api) { return kApiNames[static_cast<int>(api)]; }

bool InsideLibrary() { return inside_depth > 0; }
LibraryScope::LibraryScope() { ++inside_depth; }
LibraryScope::~LibraryScope() { --inside_depth; }

PreloadState& PreloadState::Get() {
  // Built once and never destroyed: interposed calls may arrive from
  // static destructors and from threads still running at exit.
  static PreloadState* state = new PreloadState();
  return *state;
}

PreloadState::PreloadState() {
  ParsedOptions parsed = ParsePreloadOptions(ProcessTiercacheVariables());
  options_ = std::move(parsed.options);
  warnings_ = std::move(parsed.warnings);
  for (const std::string& w : warnings_) std::fprintf(stderr, "tiercache preload: %s\n", w.c_str());
  if (!options_.trace_path.empty()) {
    Result<std::unique_ptr<PreloadTrace>> trace = PreloadTrace::Open(options_.trace_path);
    if (trace.ok()) {
      trace_ = std::move(trace).value();
    } else {
      std::fprintf(stderr, "tiercache preload: %s; no trace is recorded\n",
                   trace.status().message().c_str());
    }
  }
}

void PreloadState::OpenPool() {
  LibraryScope scope;
  if (!options_.route_allocations && !options_.stage_copies) {
    pool_reason_ = "TIERCACHE_PRELOAD_ALLOC=0 and TIERCACHE_STAGE=0";
    return;
  }
  void* context_before = CurrentContext();
  Result<std::shared_ptr<Device>> device = OpenCudaDevice(device_ordinal());
  if (!device.ok()) {
    pool_reason_ = "no CUDA device: " + device.status().message();
    return;
  }
  device_ = device.value();
  Result<std::unique_ptr<Runtime>> runtime = Runtime::Create(options_.runtime, device_);
  if (!runtime.ok()) {
    pool_reason_ = "the runtime did not open: " + runtime.status().message();
    return;
  }
  handle_ = new tiercache_runtime{std::move(runtime).value(), true};
  runtime_ = handle_->runtime.get();
  Result<Stream> stream = device_->CreateStream();
  if (!stream.ok()) {
    pool_reason_ = "no stream for synchronous allocations: " + stream.status().message();
    return;
  }
  sync_stream_ = stream.value();
  // The device made its primary context current on this thread: note it
  // (driver-API calls are served only where it is current), then give the
  // thread back the context it had, if it had one.
  primary_context_ = CurrentContext();
  if (context_before != nullptr && context_before != primary_context_) {
    auto set_current = reinterpret_cast<int (*)(void*)>(real_ctx_set_current.Get());
    if (set_current != nullptr) (void)set_current(context_before);
  }
  Result<std::shared_ptr<const Topology>> topology = Topology::ThisMachine();
  if (topology.ok()) {
    topology_ = topology.value();
    Result<int> node = topology_->NearestNode(device_->info().pci_bus_id);
    if (node.ok()) {
      numa_node_ = node.value();
      Result<NumaNode> info = topology_->Node(numa_node_);
      if (info.ok()) numa_cpus_ = info.value().cpus;
    }
  }
  pool_reason_.clear();
  pool_ready_.store(true, std::memory_order_release);
}

Stream PreloadState::FreeStream(Stream stream) {
  const Stream kPerThreadStream = reinterpret_cast<Stream>(0x2);  // the runtime's and the driver's
  if (stream != kPerThreadStream) return stream;
  // The wait takes the event as recorded when it is enqueued, so the event
  // may go at once.
  Result<Event> event = device_->CreateEvent();
  bool ordered = event.ok() && device_->RecordEvent(event.value(), stream).ok() &&
                 device_->StreamWaitEvent(sync_stream_, event.value()).ok();
  if (event.ok()) (void)device_->DestroyEvent(event.value());
  if (!ordered) (void)device_->StreamSynchronize(stream);  // the host waits instead
  return sync_stream_;
}

DeviceAllocator* PreloadState::Pool(const char** why) {
  std::call_once(pool_once_, [this] {
    OpenPool();
    pool_tried_.store(true, std::memory_order_release);
  });
  if (!pool_ready_.load(std::memory_order_acquire)) {
    *why = pool_reason_.c_str();
    return nullptr;
  }
  if (!options_.route_allocations) {
    *why = "TIERCACHE_PRELOAD_ALLOC=0";
    return nullptr;
  }
  return &runtime_->allocator();
}

tiercache_runtime* PreloadState::RuntimeHandle(const char** why) {
  std::call_once(pool_once_, [this] {
    OpenPool();
    pool_tried_.store(true, std::memory_order_release);
  });
  if (!pool_ready_.load(std::memory_order_acquire)) {
    *why = pool_reason_.c_str();
    return nullptr;
  }
  return handle_;
}

PageableStager* PreloadState::Stager(const char** why) {
  if (!options_.stage_copies) {
    *why = "TIERCACHE_STAGE=0";
    return nullptr;
  }
  std::call_once(pool_once_, [this] {
    OpenPool();
    pool_tried_.store(true, std::memory_order_release);
  });
  if (!pool_ready_.load(std::memory_order_acquire)) {
    *why = pool_reason_.c_str();
    return nullptr;
  }
  std::call_once(stager_once_, [this] {
    LibraryScope scope;
    StagerOptions o;
    o.chunk_bytes = options_.stage_chunk_bytes;
    o.buffers = static_cast<int>(options_.stage_buffers);
    int cores = numa_cpus_.empty() ? 8 : static_cast<int>(numa_cpus_.size());
    o.threads = options_.stage_threads > 0 ? static_cast<int>(options_.stage_threads)
                                           : std::min(cores, 16);
    o.numa_node = numa_node_;
    o.cpus = numa_cpus_;
    Result<std::unique_ptr<PageableStager>> stager = PageableStager::Create(device_, topology_, o);
    if (stager.ok()) {
      stager_ = std::move(stager).value();
      stager_ready_.store(true, std::memory_order_release);
    } else {
      stager_reason_ = "the staging ring did not open: " + stager.status().message();
    }
  });
  if (!stager_ready_.load(std::memory_order_acquire)) {
    *why = stager_reason_.c_str();
    return nullptr;
  }
  return stager_.get();
}

void* PreloadState::CurrentContext() const {
  auto get_current = reinterpret_cast<int (*)(void**)>(real_ctx_get_current.Get());
  void* ctx = nullptr;
  if (get_current == nullptr || get_current(&ctx) != 0) return nullptr;
  return ctx;
}

PreloadState::Shard& PreloadState::ShardOf(void* pointer) const {
  auto bits = reinterpret_cast<uintptr_t>(pointer) >> 8;  // pool pointers are 256-byte aligned
  return shards_[(bits ^ (bits >> 7)) % kShards];
}

void PreloadState::Adopt(void* pointer, uint64_t bytes, Api api) {
  Shard& shard = ShardOf(pointer);
  {
    std::lock_guard<std::mutex> lock(shard.mutex);
    shard.bytes[pointer] = bytes;
  }
  Counters& c = counters_[static_cast<int>(api)];
  c.served.fetch_add(1, std::memory_order_relaxed);
  c.served_bytes.fetch_add(bytes, std::memory_order_relaxed);
  if (trace_ != nullptr) trace_->Allocated(next_id_.fetch_add(1), pointer, bytes);
}

bool PreloadState::Release(void* pointer, Api api) {
  Shard& shard = ShardOf(pointer);
  uint64_t bytes = 0;
  {
    std::lock_guard<std::mutex> lock(shard.mutex);
    auto it = shard.bytes.find(pointer);
    if (it == shard.bytes.end()) return false;
    bytes = it->second;
    shard.bytes.erase(it);
  }
  Counters& c = counters_[static_cast<int>(api)];
  c.served.fetch_add(1, std::memory_order_relaxed);
  c.served_bytes.fetch_add(bytes, std::memory_order_relaxed);
  if (trace_ != nullptr) trace_->Freed(pointer);
  return true;
}

bool PreloadState::Owns(void* pointer) const {
  Shard& shard = ShardOf(pointer);
  std::lock_guard<std::mutex> lock(shard.mutex);
  return shard.bytes.count(pointer) > 0;
}

void PreloadState::PassedThrough(Api api, uint64_t bytes, int code, const char* why) {
  Counters& c = counters_[static_cast<int>(api)];
  c.passed.fetch_add(1, std::memory_order_relaxed);
  c.passed_bytes.fetch_add(bytes, std::memory_order_relaxed);
  if (trace_ != nullptr) trace_->PassedThrough(ApiName(api), bytes, code, why);
}

std::string PreloadState::PassThroughReason() const {
  if (pool_ready_.load(std::memory_order_acquire)) return "";
  if (!pool_tried_.load(std::memory_order_acquire)) return "no call needed the device yet";
  return pool_reason_;
}

std::string PreloadState::StatsJson() {
  std::string out = "{\"pool_active\":";
  out += pool_ready_.load() && options_.route_allocations ? "true" : "false";
  out += ",\"pass_through_reason\":" + Quote(PassThroughReason());
  out += ",\"static_cuda_runtime\":";
  out += static_runtime_ ? "true" : "false";
  out += ",\"device_ordinal\":" + std::to_string(device_ordinal());
  out += ",\"calls\":{";
  for (int i = 0; i < static_cast<int>(Api::kCount); ++i) {
    const Counters& c = counters_[i];
    if (i > 0) out += ",";
    out += Quote(kApiNames[i]) + ":{\"served\":" + std::to_string(c.served.load()) +
           ",\"served_bytes\":" + std::to_string(c.served_bytes.load()) +
           ",\"passed_through\":" + std::to_string(c.passed.load()) +
           ",\"passed_through_bytes\":" + std::to_string(c.passed_bytes.load()) + "}";
  }
  out += "},\"invalid_frees\":" + std::to_string(invalid_frees_.load());
  StagerStats staged;
  if (stager_ready_.load()) staged = stager_->stats();
  double pageable_seconds = static_cast<double>(staged.bytes) / (options_.pageable_gbps * 1e9);
  char copies[512];
  std::snprintf(copies, sizeof(copies),
                ",\"copies\":{\"staged\":%" PRIu64 ",\"staged_bytes\":%" PRIu64
                ",\"staged_seconds\":%.6f,\"pageable_gbps\":%.3f,\"seconds_saved\":%.6f,"
                "\"passed_through\":%" PRIu64 ",\"passed_through_bytes\":%" PRIu64
                ",\"threads\":%d,\"numa_node\":%d,\"threads_bound\":%s}",
                staged.copies, staged.bytes, staged.seconds, options_.pageable_gbps,
                pageable_seconds - staged.seconds, copies_passed_.load(), copy_bytes_passed_.load(),
                staged.threads, numa_node_, staged.threads_bound ? "true" : "false");
  out += copies;
  out += ",\"warnings\":[";
  for (size_t i = 0; i < warnings_.size(); ++i) out += (i ? "," : "") + Quote(warnings_[i]);
  out += "]";
  if (pool_ready_.load()) {
    DeviceAllocatorStats s = runtime_->allocator().GetStats();
    double frag_at_peak = s.peak_reserved_bytes == 0
                              ? 0.0
                              : 1.0 - static_cast<double>(s.peak_requested_bytes) /
                                          static_cast<double>(s.peak_reserved_bytes);
    char pool[512];
    std::snprintf(pool, sizeof(pool),
                  ",\"pool\":{\"budget_bytes\":%" PRIu64 ",\"reserved_bytes\":%" PRIu64
                  ",\"allocated_bytes\":%" PRIu64 ",\"peak_reserved_bytes\":%" PRIu64
                  ",\"peak_requested_bytes\":%" PRIu64 ",\"fragmentation\":%.4f,"
                  "\"fragmentation_at_peak\":%.4f,\"allocations\":%" PRIu64 ",\"frees\":%" PRIu64
                  ",\"oom_events\":%" PRIu64 ",\"pressure_calls\":%" PRIu64 "}",
                  s.budget_bytes, s.reserved_bytes, s.allocated_bytes, s.peak_reserved_bytes,
                  s.peak_requested_bytes, s.fragmentation, frag_at_peak, s.allocations, s.frees,
                  s.oom_events, s.pressure_calls);
    out += pool;
    out += ",\"runtime\":" + runtime_->StatsJson();
  } else {
    out += ",\"pool\":null,\"runtime\":null";
  }
  return out + "}";
}

bool PreloadState::SawCalls() const {
  for (const Counters& c : counters_) {
    if (c.served.load() != 0 || c.passed.load() != 0) return true;
  }
  return copies_passed_.load() != 0 || (stager_ready_.load() && stager_->stats().copies != 0);
}

std::string PreloadState::Report() {
  char line[512];
  std::string out = "tiercache preload report\n";
  if (static_runtime_) out += "  the executable links the static CUDA runtime: nothing was interposed\n";
  if (!pool_ready_.load()) out += "  every call passed through to CUDA: " + PassThroughReason() + "\n";
  uint64_t served = 0, passed = 0;
  for (int i = 0; i < static_cast<int>(Api::kCount); ++i) {
    const Counters& c = counters_[i];
    if (c.served.load() == 0 && c.passed.load() == 0) continue;
    std::snprintf(line, sizeof(line), "  %-24s served %10" PRIu64 " (%9.3f GiB)  passed through %8" PRIu64 "\n",
                  kApiNames[i], c.served.load(), Gib(c.served_bytes.load()), c.passed.load());
    out += line;
    served += c.served.load();
    passed += c.passed.load();
  }
  if (served == 0 && passed == 0) out += "  no allocation or copy call was seen\n";
  if (pool_ready_.load()) {
    DeviceAllocatorStats s = runtime_->allocator().GetStats();
    double frag_at_peak = s.peak_reserved_bytes == 0
                              ? 0.0
                              : 1.0 - static_cast<double>(s.peak_requested_bytes) /
                                          static_cast<double>(s.peak_reserved_bytes);
    std::snprintf(line, sizeof(line),
                  "  pool: %" PRIu64 " allocations, peak %.3f GiB reserved for %.3f GiB requested "
                  "(fragmentation at peak %.4f), %" PRIu64 " out-of-memory\n",
                  s.allocations, Gib(s.peak_reserved_bytes), Gib(s.peak_requested_bytes),
                  frag_at_peak, s.oom_events);
    out += line;
  }
  if (stager_ready_.load()) {
    StagerStats st = stager_->stats();
    double pageable_seconds = static_cast<double>(st.bytes) / (options_.pageable_gbps * 1e9);
    std::snprintf(line, sizeof(line),
                  "  pageable copies staged: %" PRIu64 " (%.3f GiB) in %.3f s = %.2f GB/s; at the "
                  "pageable %.2f GB/s: %.3f s; saved %.3f s\n",
                  st.copies, Gib(st.bytes), st.seconds,
                  st.seconds > 0 ? static_cast<double>(st.bytes) / st.seconds / 1e9 : 0.0,
                  options_.pageable_gbps, pageable_seconds, pageable_seconds - st.seconds);
    out += line;
  }
  std::snprintf(line, sizeof(line), "  copies passed through: %" PRIu64 " (%.3f GiB); invalid frees: %" PRIu64 "\n",
                copies_passed_.load(), Gib(copy_bytes_passed_.load()), invalid_frees_.load());
  out += line;
  return out;
}

}  // namespace tiercache::preload
