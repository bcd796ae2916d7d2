#include "tools/bench/replay.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <thread>

#include "alloc/device.h"
#include "common/units.h"
#include "prefetch/prefetcher.h"
#include "prefetch/eviction/eviction_policy.h"
#include "tools/bench/link_probe.h"
#include "tools/bench/progress.h"
#include "tools/bench/simulate.h"
#include "tools/bench/tier_stack.h"

namespace tiercache::bench {
namespace {

using Clock = std::chrono::steady_clock;

uint64_t Nanoseconds(Clock::time_point from, Clock::time_point to) {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(to - from).count());
}

constexpr double kPinnedHostToDeviceBytesPerSecond = 55.2e9;  // MISSION.md, 64 MiB+ chunks

// An aligned host buffer, freed on destruction.
struct AlignedBuffer {
  explicit AlignedBuffer(uint64_t bytes)
      : data(static_cast<unsigned char*>(std::aligned_alloc(4096, AlignUp(bytes, 4096)))) {}
  ~AlignedBuffer() { std::free(data); }
  unsigned char* data;
};

// Replays a workload straight over the tiers: a GPU cache of device memory
// under an eviction policy, every block homed on one host tier, misses read
// into a staging buffer and copied to the device. Synchronous by design: the
// stall of each miss is the whole read-then-copy.
class DirectReplayer {
 public:
  DirectReplayer(const Options& options, const Workload& workload)
      : options_(options), workload_(workload) {}
  ~DirectReplayer() { ReleaseDevice(); }

  Result<Report> Run();

 private:
  Status Setup();
  Status Place();
  void MeasurePeaks();
  Status Serve(uint64_t block, StepTime* step);
  Status MakeRoom(uint64_t bytes);
  Result<void*> DeviceBlock(uint64_t bytes);
  void ReleaseDevice();

  const Options& options_;
  const Workload& workload_;
  Report report_;
  TierSizes sizes_;
  // Declaration order is destruction order reversed: the tiers close before
  // their directory goes and before the staging buffer they may have
  // registered (io_uring fixed buffers) is freed.
  std::unique_ptr<ScratchDir> scratch_;
  std::unique_ptr<AlignedBuffer> staging_;
  std::vector<HostTier> host_;
  std::shared_ptr<Device> device_;
  Stream stream_ = nullptr;
  uint64_t staging_bytes_ = 0;
  std::unique_ptr<EvictionPolicy> policy_;
  // Learns the access pattern as the replay goes and tells the policy when
  // each block is next needed (what next-use eviction runs on).
  Prefetcher predictor_;
  std::vector<void*> on_gpu_;            // device copy per block, or nullptr
  std::vector<size_t> home_tier_;        // index into host_
  std::vector<Extent> home_extent_;
  uint64_t gpu_used_ = 0;
  // Device memory of evicted blocks kept for reuse, by size: what a pool
  // does, so a miss does not pay the device's allocation (or, emulated,
  // fresh pages) each time. Its bytes count against the GPU budget.
  std::multimap<uint64_t, void*> spare_;
  uint64_t spare_bytes_ = 0;
};

Status DirectReplayer::Setup() {
  uint64_t largest = *std::max_element(workload_.block_bytes.begin(), workload_.block_bytes.end());
  std::string dir = ScratchDirectory(options_);
  TC_ASSIGN_OR_RETURN(uint64_t free_disk, FreeDiskBytes(dir));
  TC_ASSIGN_OR_RETURN(sizes_, ChooseTierSizes(options_, workload_.WorkingSetBytes(), largest, free_disk,
                                               /*dram_reserve=*/0, AvailableMemoryBytes()));
  TC_ASSIGN_OR_RETURN(device_, OpenDevice(0));
  TC_ASSIGN_OR_RETURN(uint64_t device_free, device_->FreeMemoryBytes());
  if (sizes_.gpu_budget > device_free) {
    return Status::InvalidArgument("GPU budget " + FormatBytes(sizes_.gpu_budget) +
                                   " exceeds the device's free memory (" + FormatBytes(device_free) + ")");
  }
  TC_ASSIGN_OR_RETURN(scratch_, ScratchDir::Create(dir));
  TC_ASSIGN_OR_RETURN(host_, OpenHostTiers(sizes_, scratch_.get(), &report_.notes));
  TC_ASSIGN_OR_RETURN(stream_, device_->CreateStream());
  staging_bytes_ = AlignUp(std::max(largest, 16 * kMiB), 4096);
  staging_ = std::make_unique<AlignedBuffer>(staging_bytes_);
  if (staging_->data == nullptr) return Status::OutOfMemory("staging buffer");
  TC_RETURN_IF_ERROR(device_->RegisterHost(staging_->data, staging_bytes_));
  for (HostTier& tier : host_) {
    Status registered = tier.tier->RegisterBuffer(staging_->data, staging_bytes_);
    (void)registered;  // a hint; tiers that cannot use it read through bounce buffers
  }
  TC_ASSIGN_OR_RETURN(policy_, MakeEvictionPolicy(options_.gpu_policy, sizes_.gpu_cache));
  policy_->SetNextUseSource([this](BlockId id) { return predictor_.PredictNextUseTick(id); });

  report_.device = device_->info().name;
  TierReport gpu;
  gpu.name = "gpu";
  gpu.capacity_bytes = sizes_.gpu_cache;
  gpu.link = {"host->gpu", kPinnedHostToDeviceBytesPerSecond, "reference"};
  report_.tiers.push_back(gpu);
  for (const HostTier& tier : host_) {
    TierReport row;
    row.name = tier.tier->name();
    row.capacity_bytes = tier.tier->capacity();
    row.link = tier.link;
    report_.tiers.push_back(row);
  }
  return Status::Ok();
}

// Homes every block on the fastest tier with room, writing a pattern that
// differs per block so a wrong read would show as wrong bytes.
Status DirectReplayer::Place() {
  size_t blocks = workload_.block_bytes.size();
  on_gpu_.assign(blocks, nullptr);
  home_tier_.assign(blocks, 0);
  home_extent_.resize(blocks);
  size_t tier = 0;
  for (size_t id = 0; id < blocks; ++id) {
    uint64_t bytes = workload_.block_bytes[id];
    while (true) {
      if (tier >= host_.size()) {
        return Status::InvalidArgument("the host tiers are too small for the workload's " +
                                       FormatBytes(workload_.WorkingSetBytes()));
      }
      Result<Extent> extent = host_[tier].tier->Allocate(bytes);
      if (extent.ok()) {
        home_extent_[id] = *extent;
        break;
      }
      ++tier;
    }
    home_tier_[id] = tier;
    std::memset(staging_->data, static_cast<int>((id * 131 + 7) & 0xff), bytes);
    TC_RETURN_IF_ERROR(host_[tier].tier->Write(home_extent_[id], 0, staging_->data, bytes));
    TierReport& row = report_.tiers[tier + 1];
    row.transfers_down += 1;
    row.bytes_down += bytes;
  }
  for (HostTier& host : host_) TC_RETURN_IF_ERROR(host.tier->Flush());
  return Status::Ok();
}

// Peaks measured on this machine (link_probe.h): each host tier's reads
// into the staging buffer and the staging->device copy.
void DirectReplayer::MeasurePeaks() {
  for (size_t t = 0; t < host_.size(); ++t) {
    uint64_t bytes = std::min<uint64_t>(staging_bytes_, 16 * kMiB);
    double rate = ProbeTierRead(host_[t].tier.get(), staging_->data, bytes);
    if (rate > 0) report_.tiers[t + 1].link = {host_[t].link.name, rate, "measured here"};
  }
  double rate = ProbeHostToDevice(device_.get(), stream_, staging_->data, staging_bytes_);
  if (rate > 0) report_.tiers[0].link = {report_.tiers[0].link.name, rate, "measured here"};
}

Status DirectReplayer::MakeRoom(uint64_t bytes) {
  while (gpu_used_ + bytes > sizes_.gpu_cache) {
    std::optional<BlockId> victim = policy_->ChooseVictim([](BlockId) { return true; });
    if (!victim) return Status::Internal("GPU cache full but the policy offers no victim");
    uint64_t freed = workload_.block_bytes[*victim];
    spare_.emplace(freed, on_gpu_[*victim]);
    spare_bytes_ += freed;
    on_gpu_[*victim] = nullptr;
    gpu_used_ -= freed;
    policy_->OnErase(*victim);
    report_.tiers[0].evictions += 1;
  }
  return Status::Ok();
}

Result<void*> DirectReplayer::DeviceBlock(uint64_t bytes) {
  if (auto it = spare_.find(bytes); it != spare_.end()) {
    void* pointer = it->second;
    spare_.erase(it);
    spare_bytes_ -= bytes;
    return pointer;
  }
  // Spare blocks of other sizes give their memory back first.
  while (!spare_.empty() && gpu_used_ + spare_bytes_ + bytes > sizes_.gpu_cache) {
    TC_RETURN_IF_ERROR(device_->FreeMemory(spare_.begin()->second));
    spare_bytes_ -= spare_.begin()->first;
    spare_.erase(spare_.begin());
  }
  return device_->AllocateMemory(bytes);
}

Status DirectReplayer::Serve(uint64_t block, StepTime* step) {
  TierReport& gpu = report_.tiers[0];
  gpu.requests_reaching += 1;
  if (on_gpu_[block] != nullptr) {
    gpu.hits += 1;
    policy_->OnAccess(block);
    return Status::Ok();
  }
  size_t home = home_tier_[block];
  for (size_t t = 0; t <= home; ++t) report_.tiers[t + 1].requests_reaching += 1;
  TierReport& row = report_.tiers[home + 1];
  row.hits += 1;
  uint64_t bytes = workload_.block_bytes[block];
  TC_RETURN_IF_ERROR(MakeRoom(bytes));
  TC_ASSIGN_OR_RETURN(void* device_copy, DeviceBlock(bytes));
  auto start = Clock::now();
  TC_RETURN_IF_ERROR(host_[home].tier->Read(home_extent_[block], 0, staging_->data, bytes));
  auto read = Clock::now();
  TC_RETURN_IF_ERROR(device_->CopyAsync(device_copy, staging_->data, bytes, CopyKind::kHostToDevice, stream_));
  TC_RETURN_IF_ERROR(device_->StreamSynchronize(stream_));
  auto copied = Clock::now();
  on_gpu_[block] = device_copy;
  gpu_used_ += bytes;
  policy_->OnInsert(block, bytes);

  row.transfers_up += 1;
  row.bytes_up += bytes;
  row.link_bytes += bytes;
  row.transfer_ns += Nanoseconds(start, read);
  row.stall_ns += Nanoseconds(start, copied);
  gpu.transfers_down += 1;
  gpu.bytes_down += bytes;
  gpu.link_bytes += bytes;
  gpu.transfer_ns += Nanoseconds(read, copied);
  step->stall_ns_by_tier[home + 1] += Nanoseconds(start, copied);
  return Status::Ok();
}

void DirectReplayer::ReleaseDevice() {
  if (!device_) return;
  for (void*& pointer : on_gpu_) {
    if (pointer != nullptr) (void)device_->FreeMemory(pointer);
    pointer = nullptr;
  }
  for (auto& [bytes, pointer] : spare_) (void)device_->FreeMemory(pointer);
  spare_.clear();
  if (stream_ != nullptr) (void)device_->DestroyStream(stream_);
  stream_ = nullptr;
  if (staging_ && staging_->data != nullptr) (void)device_->UnregisterHost(staging_->data);
}

Result<Report> DirectReplayer::Run() {
  TC_RETURN_IF_ERROR(Setup());
  MeasurePeaks();  // before placement fills the tiers
  TC_RETURN_IF_ERROR(Place());
  report_.policy = options_.gpu_policy;
  report_.notes.push_back("--engine=direct: blocks move synchronously (read, then copy), "
                          "without the runtime's prefetching or overlap");
  ProgressBar progress("replay", workload_.requests.size(), options_.progress);
  const std::vector<uint64_t>& requests = workload_.requests;
  auto run_start = Clock::now();
  for (size_t s = 0; s < workload_.step_starts.size(); ++s) {
    size_t first = workload_.step_starts[s];
    size_t last = s + 1 < workload_.step_starts.size() ? workload_.step_starts[s + 1] : requests.size();
    StepTime step;
    step.stall_ns_by_tier.assign(report_.tiers.size(), 0);
    auto start = Clock::now();
    for (size_t r = first; r < last; ++r) {
      policy_->OnTick(r);
      TC_RETURN_IF_ERROR(Serve(requests[r], &step));
      uint64_t block = requests[r];
      predictor_.OnAccess(block, workload_.block_bytes[block], Nanoseconds(run_start, Clock::now()));
      policy_->OnPrediction(block, predictor_.PredictNextUseTick(block));
      // The engine's compute on this block; sleeping leaves the cores to
      // the tiers' I/O threads, as a GPU kernel would.
      if (options_.compute_ns > 0) std::this_thread::sleep_for(std::chrono::nanoseconds(options_.compute_ns));
      progress.Update(r + 1);
    }
    step.total_ns = Nanoseconds(start, Clock::now());
    report_.step_times.push_back(step);
  }
  progress.Finish();
  return std::move(report_);
}

}  // namespace

Result<Report> DirectReplay(const Options& options, const Workload& workload) {
  DirectReplayer replay(options, workload);
  return replay.Run();
}

Result<Report> ReplayCommand(const Options& options, const Workload& workload) {
  if (workload.requests.empty()) return Status::InvalidArgument("the workload has no requests");
  TC_ASSIGN_OR_RETURN(Report report, options.engine == "direct" ? DirectReplay(options, workload)
                                                                 : RuntimeReplay(options, workload));
  report.mode = options.command == Command::kRun ? "run" : "replay";
  report.workload = workload.description;
  report.requests = workload.requests.size();
  report.unique_blocks = workload.block_bytes.size();
  report.working_set_bytes = workload.WorkingSetBytes();
  report.block_bytes = workload.UniformBlockBytes();
  report.steps = workload.step_starts.size();
  Result<double> belady = BeladyHitRatio(workload, report.tiers.front().capacity_bytes);
  if (belady.ok()) report.belady_hit_ratio = *belady;
  Result<std::vector<PolicyCurve>> curves =
      SimulatePolicies(workload, options.policies, options.cache_fractions, nullptr);
  if (curves.ok()) report.curves = std::move(*curves);
  return report;
}

}  // namespace tiercache::bench
