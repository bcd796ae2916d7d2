// The runtime engine of replay (see replay.h): the workload through
// tiercache::Runtime, observed from outside as an engine would see it.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "common/units.h"
#include "runtime/config.h"
#include "runtime/runtime.h"
#include "tools/bench/link_probe.h"
#include "tools/bench/progress.h"
#include "tools/bench/replay.h"
#include "tools/bench/tier_stack.h"

namespace tiercache::bench {
namespace {

using Clock = std::chrono::steady_clock;

uint64_t Nanoseconds(Clock::time_point from, Clock::time_point to) {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(to - from).count());
}

constexpr double kPinnedHostToDeviceBytesPerSecond = 55.2e9;  // MISSION.md, 64 MiB+ chunks
constexpr double kHostMemcpyBytesPerSecond = 9.9e9;           // pageable -> pinned, one thread
constexpr double kNvmeReadBytesPerSecond = 1.3e9;             // O_DIRECT, one stream
// Watching every block's residency after each request costs blocks x
// requests lookups; past this many blocks prefetch effects are not tracked.
constexpr size_t kMaxWatchedBlocks = 4096;

// The runtime's config: its own defaults, the config file, the TIERCACHE_*
// variables, then what the tool decided (sizes, paths, the flags).
Result<RuntimeConfig> MakeConfig(const Options& options) {
  RuntimeConfig config;
  if (!options.config_path.empty()) TC_RETURN_IF_ERROR(LoadConfigFile(options.config_path, &config));
  for (const std::string& field : ConfigFieldNames()) {
    std::string variable = "TIERCACHE_";
    for (char c : field) variable += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    auto it = options.environment.find(variable);
    if (it == options.environment.end()) continue;
    Status set = SetConfigField(field, it->second, &config);
    if (!set.ok()) return Status::InvalidArgument(variable + ": " + set.message());
  }
  config.gpu_policy = options.gpu_policy;
  config.prefetch_lookahead = options.prefetch_lookahead;
  if (!options.prefetch) config.prefetch = "off";
  if (options.IsSet("chunk_bytes")) config.chunk_bytes = options.chunk_bytes;
  return config;
}

// Where a request was served, seen from outside before acquiring it.
enum class Source { kGpuReady, kGpuLoading, kHost };

class RuntimeReplayer {
 public:
  RuntimeReplayer(const Options& options, const Workload& workload)
      : options_(options), workload_(workload) {}
  ~RuntimeReplayer() {
    runtime_.reset();  // closes the tier files before the directory goes
  }
  Result<Report> Run();

 private:
  Status Setup();
  Status Register();
  void MeasurePeaks();
  size_t RowOf(const std::string& tier_name) const;
  Status Serve(size_t request, Stream stream, StepTime* step);
  void Watch(size_t skip_block);

  const Options& options_;
  const Workload& workload_;
  Report report_;
  std::unique_ptr<ScratchDir> scratch_;
  std::unique_ptr<Runtime> runtime_;
  std::vector<BlockId> ids_;             // runtime id per workload block
  std::vector<std::string> home_;        // home tier name per block
  // Prefetch accounting from residency: blocks that arrived on the GPU
  // without being requested, not yet used.
  std::vector<bool> on_gpu_;
  std::vector<bool> prefetched_unused_;
  bool watch_ = false;
  uint64_t dram_home_limit_ = UINT64_MAX;  // bytes of homes the DRAM tier takes
};

size_t RuntimeReplayer::RowOf(const std::string& tier_name) const {
  for (size_t i = 0; i < report_.tiers.size(); ++i) {
    if (report_.tiers[i].name == tier_name) return i;
  }
  return report_.tiers.size() - 1;
}

Status RuntimeReplayer::Setup() {
  TC_ASSIGN_OR_RETURN(RuntimeConfig config, MakeConfig(options_));
  uint64_t largest = *std::max_element(workload_.block_bytes.begin(), workload_.block_bytes.end());
  std::string dir = ScratchDirectory(options_);
  TC_ASSIGN_OR_RETURN(uint64_t free_disk, FreeDiskBytes(dir));
  uint64_t staging = config.chunk_bytes * static_cast<uint64_t>(std::max<int64_t>(config.staging_buffers, 0));
  // With default sizes the DRAM tier also keeps room for copies of blocks
  // homed further down (demotions and DRAM staging ahead of use), a quarter
  // of the working set; homes fill only the rest.
  const uint64_t copy_room = AlignUp(workload_.WorkingSetBytes() / 4, 4096);
  TC_ASSIGN_OR_RETURN(TierSizes sizes,
                      ChooseTierSizes(options_, workload_.WorkingSetBytes(), largest, free_disk, staging,
                                      AvailableMemoryBytes(), copy_room));
  dram_home_limit_ = sizes.dram_homes;
  TC_ASSIGN_OR_RETURN(std::shared_ptr<Device> device, OpenDevice(static_cast<int>(config.device_ordinal)));
  TC_ASSIGN_OR_RETURN(uint64_t device_free, device->FreeMemoryBytes());
  if (sizes.gpu_budget > device_free) {
    return Status::InvalidArgument("GPU budget " + FormatBytes(sizes.gpu_budget) +
                                   " exceeds the device's free memory (" + FormatBytes(device_free) + ")");
  }
  TC_ASSIGN_OR_RETURN(scratch_, ScratchDir::Create(dir));
  config.gpu_budget_bytes = sizes.gpu_budget;
  config.gpu_cache_bytes = sizes.gpu_cache;
  config.dram_bytes = sizes.dram;
  config.pmem_bytes = sizes.pmem;
  config.pmem_path = sizes.pmem > 0 ? scratch_->File("tiercache.pmem") : "";
  config.nvme_bytes = sizes.nvme;
  config.nvme_path = sizes.nvme > 0 ? scratch_->File("tiercache.nvme") : "";
  Result<std::unique_ptr<Runtime>> runtime = Runtime::Create(config, device);
  if (!runtime.ok()) {
    // The config came from the user: a refusal by validation is bad input.
    return runtime.status();
  }
  runtime_ = std::move(*runtime);

  report_.device = device->info().name;
  report_.policy = config.gpu_policy;
  TierReport gpu;
  gpu.name = "gpu";
  gpu.capacity_bytes = sizes.gpu_cache;
  gpu.link = {"host->gpu", kPinnedHostToDeviceBytesPerSecond, "reference"};
  report_.tiers.push_back(gpu);
  for (const char* name : {"dram", "pmem", "nvme"}) {
    Tier* tier = runtime_->tier(name);
    if (tier == nullptr) continue;
    TierReport row;
    row.name = name;
    row.capacity_bytes = tier->capacity();
    row.link = {std::string(name) + " read",
                std::string(name) == "nvme" ? kNvmeReadBytesPerSecond : kHostMemcpyBytesPerSecond,
                "reference"};
    report_.tiers.push_back(row);
  }
  if (device->info().kind == DeviceKind::kEmulated) {
    report_.notes.push_back("emulated device: the host->gpu link is a host memcpy on a worker thread");
  }
  return Status::Ok();
}

// Homes each block on the fastest tier with room, with a per-block pattern.
Status RuntimeReplayer::Register() {
  size_t blocks = workload_.block_bytes.size();
  uint64_t largest = *std::max_element(workload_.block_bytes.begin(), workload_.block_bytes.end());
  std::vector<unsigned char> buffer(largest);
  size_t tier = 1;
  uint64_t homed_in_dram = 0;
  for (size_t id = 0; id < blocks; ++id) {
    uint64_t bytes = workload_.block_bytes[id];
    if (tier < report_.tiers.size() && report_.tiers[tier].name == "dram" &&
        homed_in_dram + bytes > dram_home_limit_) {
      ++tier;  // the rest of the DRAM tier is room for copies
    }
    std::memset(buffer.data(), static_cast<int>((id * 131 + 7) & 0xff), bytes);
    while (true) {
      if (tier >= report_.tiers.size()) {
        return Status::InvalidArgument("the host tiers are too small for the workload's " +
                                       FormatBytes(workload_.WorkingSetBytes()));
      }
      Result<BlockId> registered = runtime_->cache().RegisterFromBuffer(
          "block" + std::to_string(id), buffer.data(), bytes, runtime_->tier(report_.tiers[tier].name));
      if (registered.ok()) {
        ids_.push_back(*registered);
        home_.push_back(report_.tiers[tier].name);
        report_.tiers[tier].homed_bytes += bytes;
        if (report_.tiers[tier].name == "dram") homed_in_dram += bytes;
        report_.tiers[tier].transfers_down += 1;
        report_.tiers[tier].bytes_down += bytes;
        break;
      }
      if (registered.status().code() != ErrorCode::kOutOfSpace) return registered.status();
      ++tier;
    }
  }
  on_gpu_.assign(blocks, false);
  prefetched_unused_.assign(blocks, false);
  watch_ = blocks <= kMaxWatchedBlocks && options_.prefetch;
  return Status::Ok();
}

// After a request: blocks that appeared on the GPU without being asked for
// were prefetched; prefetched blocks that left unused were wasted.
void RuntimeReplayer::Watch(size_t requested) {
  for (size_t id = 0; id < ids_.size(); ++id) {
    Result<BlockInfo> info = runtime_->cache().Info(ids_[id]);
    if (!info.ok()) continue;
    bool now = info->on_gpu;
    if (now && !on_gpu_[id] && id != requested) {
      report_.prefetch.issued += 1;
      prefetched_unused_[id] = true;
    } else if (!now && prefetched_unused_[id]) {
      report_.prefetch.wasted_bytes += workload_.block_bytes[id];
      prefetched_unused_[id] = false;
    }
    on_gpu_[id] = now;
  }
}

Status RuntimeReplayer::Serve(size_t request, Stream stream, StepTime* step) {
  size_t block = workload_.requests[request];
  BlockId id = ids_[block];
  TC_ASSIGN_OR_RETURN(BlockInfo before, runtime_->cache().Info(id));
  Source source = before.on_gpu ? (before.gpu_ready ? Source::kGpuReady : Source::kGpuLoading)
                                : Source::kHost;
  size_t served = 0;
  if (source == Source::kHost) served = RowOf(before.in_dram ? "dram" : home_[block]);
  // A block that arrived after the last look and before its own request
  // was prefetched too: on a fast link the whole load fits in the engine's
  // compute between two requests, where no look sees it in flight.
  if (watch_ && source != Source::kHost && !on_gpu_[block] && !prefetched_unused_[block]) {
    report_.prefetch.issued += 1;
    prefetched_unused_[block] = true;
  }
  for (size_t t = 0; t <= served; ++t) report_.tiers[t].requests_reaching += 1;
  report_.tiers[served].hits += 1;
  if (served > 0) report_.prefetch.demand_misses += 1;
  if (prefetched_unused_[block] && source != Source::kHost) {
    report_.prefetch.useful += 1;
    if (source == Source::kGpuLoading) report_.prefetch.late += 1;
  }
  prefetched_unused_[block] = false;

  // The engine's view: acquire, then its stream runs once the data is there.
  auto start = Clock::now();
  TC_ASSIGN_OR_RETURN(void* pointer, runtime_->cache().Acquire(id, stream));
  (void)pointer;
  TC_RETURN_IF_ERROR(runtime_->device().StreamSynchronize(stream));
  step->stall_ns_by_tier[served] += Nanoseconds(start, Clock::now());
  if (watch_) Watch(block);
  // The engine's compute on this block; sleeping leaves the cores to the
  // runtime's transfer threads, as a GPU kernel would.
  if (options_.compute_ns > 0) std::this_thread::sleep_for(std::chrono::nanoseconds(options_.compute_ns));
  return runtime_->cache().Release(id, stream);
}

// Peaks of the links the runtime uses, measured before the blocks fill the
// tiers (link_probe.h). The DRAM tier is read by memcpy, PMEM and NVMe
// through their tier reads; the host->GPU copy from pinned memory.
void RuntimeReplayer::MeasurePeaks() {
  // The tiers are probed the way the runtime reads them: chunks of
  // chunk_bytes, as many in flight as the staging ring has slots, through
  // the tier's own engine (same queue depth, O_DIRECT or not, page cache).
  const RuntimeConfig& config = runtime_->config();
  const uint64_t chunk = config.chunk_bytes;
  const int in_flight = static_cast<int>(std::max<int64_t>(1, config.staging_buffers));
  const uint64_t bytes = std::max<uint64_t>(16 * kMiB, chunk * static_cast<uint64_t>(in_flight));
  void* buffer = std::aligned_alloc(4096, AlignUp(bytes, 4096));
  if (buffer == nullptr) return;
  const std::string how = FormatBytes(chunk) + " reads, " + std::to_string(in_flight) + " in flight";
  for (size_t row = 1; row < report_.tiers.size(); ++row) {
    double rate = ProbeTierRead(runtime_->tier(report_.tiers[row].name), buffer, bytes, chunk, in_flight);
    if (rate > 0) {
      report_.tiers[row].link = {report_.tiers[row].link.name + " (" + how + ")", rate, "measured here"};
    }
  }
  Device& device = runtime_->device();
  Result<Stream> stream = device.CreateStream();
  if (stream.ok() && device.RegisterHost(buffer, bytes).ok()) {
    double rate = ProbeHostToDevice(&device, *stream, buffer, bytes);
    if (rate > 0) report_.tiers[0].link = {report_.tiers[0].link.name, rate, "measured here"};
    (void)device.UnregisterHost(buffer);
  }
  if (stream.ok()) (void)device.DestroyStream(*stream);
  std::free(buffer);
}

Result<Report> RuntimeReplayer::Run() {
  TC_RETURN_IF_ERROR(Setup());
  MeasurePeaks();
  TC_RETURN_IF_ERROR(Register());
  TC_ASSIGN_OR_RETURN(Stream stream, runtime_->device().CreateStream());
  ProgressBar progress("replay", workload_.requests.size(), options_.progress);
  Status status = Status::Ok();
  for (size_t s = 0; s < workload_.step_starts.size() && status.ok(); ++s) {
    size_t first = workload_.step_starts[s];
    size_t last = s + 1 < workload_.step_starts.size() ? workload_.step_starts[s + 1]
                                                       : workload_.requests.size();
    StepTime step;
    step.stall_ns_by_tier.assign(report_.tiers.size(), 0);
    auto start = Clock::now();
    for (size_t r = first; r < last && status.ok(); ++r) {
      status = Serve(r, stream, &step);
      progress.Update(r + 1);
    }
    step.total_ns = Nanoseconds(start, Clock::now());
    report_.step_times.push_back(step);
  }
  progress.Finish();
  Status drained = runtime_->cache().Drain();
  (void)runtime_->device().DestroyStream(stream);
  TC_RETURN_IF_ERROR(status);
  TC_RETURN_IF_ERROR(drained);

  // Traffic, evictions, stalls and busy time as the runtime counted them.
  for (const TierTraffic& traffic : runtime_->cache().stats().SnapshotAll()) {
    size_t row = RowOf(traffic.name);
    if (report_.tiers[row].name != traffic.name) continue;
    TierReport& tier = report_.tiers[row];
    if (row == 0) {
      tier.bytes_down = traffic.bytes_in;
      tier.link_bytes = traffic.bytes_in;
    } else {
      tier.bytes_up = traffic.bytes_out;
      tier.bytes_down += traffic.bytes_in;
      tier.link_bytes = traffic.bytes_out;
    }
    tier.evictions = traffic.evictions;
    tier.stall_ns = traffic.stall_ns;
    tier.transfer_ns = traffic.busy_ns;
  }
  uint64_t uniform = workload_.UniformBlockBytes();
  for (TierReport& tier : report_.tiers) {
    // Whole blocks move (in chunks), so with one block size the counts follow.
    if (uniform > 0) {
      tier.transfers_up = tier.bytes_up / uniform;
      if (&tier == &report_.tiers[0]) tier.transfers_down = tier.bytes_down / uniform;
    }
  }
  if (uniform > 0) {
    for (size_t t = 1; t < report_.tiers.size(); ++t) {
      report_.tiers[t].transfers_down = report_.tiers[t].bytes_down / uniform;
    }
  }
  report_.prefetch.enabled = options_.prefetch;
  report_.prefetch.lookahead = runtime_->cache().CurrentLookahead();
  if (options_.prefetch && !watch_) {
    report_.notes.push_back("more than 4096 blocks: prefetch accuracy and waste not tracked");
  }
  for (size_t id = 0; id < prefetched_unused_.size(); ++id) {
    if (prefetched_unused_[id]) report_.prefetch.wasted_bytes += workload_.block_bytes[id];
  }
  return std::move(report_);
}

}  // namespace

Result<Report> RuntimeReplay(const Options& options, const Workload& workload) {
  RuntimeReplayer replay(options, workload);
  return replay.Run();
}

}  // namespace tiercache::bench
