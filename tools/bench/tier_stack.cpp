#include "tools/bench/tier_stack.h"

#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "common/units.h"
#include "tiers/dram_tier.h"
#if defined(TIERCACHE_HAVE_PMEM)
#include "tiers/pmem_tier.h"
#endif
#if defined(TIERCACHE_BENCH_HAVE_NVME)
#include "tiers/nvme_tier.h"
#endif

namespace tiercache::bench {
namespace {

// Reference figures measured on the GPU machine (docs/perf.md); replaced by
// figures measured here wherever the replay measures its own links.
constexpr double kHostMemcpyBytesPerSecond = 9.9e9;   // pageable -> pinned, one thread
constexpr double kNvmeReadBytesPerSecond = 1.3e9;     // O_DIRECT sequential, one stream

constexpr uint64_t kFileGranularity = 4096;

}  // namespace

std::string ScratchDirectory(const Options& options) {
  if (!options.dir.empty()) return options.dir;
  const char* tmp = std::getenv("TMPDIR");
  return tmp != nullptr && tmp[0] != '\0' ? tmp : "/tmp";
}

Result<uint64_t> FreeDiskBytes(const std::string& dir) {
  struct statvfs info;
  if (statvfs(dir.c_str(), &info) != 0) {
    return Status::NotFound("--dir " + dir + ": " + std::string(strerror(errno)));
  }
  return static_cast<uint64_t>(info.f_bavail) * info.f_frsize;
}

Result<TierSizes> ChooseTierSizes(const Options& options, uint64_t working_set_bytes,
                                  uint64_t largest_block_bytes, uint64_t free_disk_bytes,
                                  uint64_t dram_reserve, uint64_t free_memory_bytes,
                                  uint64_t dram_copy_room) {
  TierSizes sizes;
  sizes.gpu_budget = options.IsSet("gpu_budget_bytes") ? options.gpu_budget_bytes
                                                       : std::max(working_set_bytes / 2, largest_block_bytes);
  sizes.gpu_cache = options.IsSet("gpu_cache_bytes") ? options.gpu_cache_bytes : sizes.gpu_budget;
  if (!options.IsSet("gpu_budget_bytes") && sizes.gpu_cache > sizes.gpu_budget) {
    sizes.gpu_budget = sizes.gpu_cache;
  }
  if (sizes.gpu_cache < largest_block_bytes) {
    return Status::InvalidArgument("GPU cache of " + FormatBytes(sizes.gpu_cache) +
                                   " cannot hold the largest block (" +
                                   FormatBytes(largest_block_bytes) + ")");
  }
  bool any_host_size = options.IsSet("dram_bytes") || options.IsSet("pmem_bytes") ||
                       options.IsSet("nvme_bytes");
  uint64_t quarter = AlignUp(working_set_bytes / 4 + largest_block_bytes, kFileGranularity);
  const uint64_t kept_free = dram_reserve + (any_host_size ? 0 : dram_copy_room);
  sizes.dram = options.IsSet("dram_bytes") ? options.dram_bytes
               : any_host_size            ? 0
                                          : quarter + kept_free;
  sizes.dram_homes = sizes.dram - std::min(sizes.dram, kept_free);
  sizes.pmem = options.IsSet("pmem_bytes") ? options.pmem_bytes : any_host_size ? 0 : quarter;
  if (options.IsSet("nvme_bytes")) {
    sizes.nvme = options.nvme_bytes;
  } else {
    uint64_t placed = sizes.dram_homes + sizes.pmem;
    uint64_t rest = working_set_bytes > placed ? working_set_bytes - placed : 0;
    // Slack of two blocks: placement rounds each block up to the granularity.
    sizes.nvme = AlignUp(rest + 2 * largest_block_bytes, kFileGranularity);
  }
  if (sizes.dram > free_memory_bytes) {
    return Status::InvalidArgument("DRAM tier (" + FormatBytes(sizes.dram) +
                                   ") is larger than the available memory (" +
                                   FormatBytes(free_memory_bytes) + ")");
  }
  if (sizes.pmem + sizes.nvme > free_disk_bytes) {
    return Status::InvalidArgument("PMEM + NVMe tiers (" + FormatBytes(sizes.pmem + sizes.nvme) +
                                   ") are larger than the free disk space (" +
                                   FormatBytes(free_disk_bytes) + ") under --dir");
  }
  if (sizes.dram_homes + sizes.pmem + sizes.nvme < working_set_bytes) {
    return Status::InvalidArgument("the host tiers (" +
                                   FormatBytes(sizes.dram + sizes.pmem + sizes.nvme) +
                                   ") cannot hold the workload's " + FormatBytes(working_set_bytes));
  }
  return sizes;
}

uint64_t AvailableMemoryBytes() {
  long pages = sysconf(_SC_AVPHYS_PAGES);
  long page_size = sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page_size <= 0) return UINT64_MAX;  // unknown: do not refuse
  return static_cast<uint64_t>(pages) * static_cast<uint64_t>(page_size);
}

Result<std::unique_ptr<ScratchDir>> ScratchDir::Create(const std::string& parent) {
  std::string pattern = parent + "/tiercache-bench-XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) {
    return Status::FromErrno(errno, "cannot create a directory under " + parent);
  }
  return std::unique_ptr<ScratchDir>(new ScratchDir(pattern));
}

ScratchDir::~ScratchDir() {
  for (const std::string& file : files_) unlink(file.c_str());
  rmdir(path_.c_str());
}

std::string ScratchDir::File(const std::string& name) {
  files_.push_back(path_ + "/" + name);
  return files_.back();
}

Result<std::vector<HostTier>> OpenHostTiers(const TierSizes& sizes, ScratchDir* scratch,
                                            std::vector<std::string>* notes) {
  std::vector<HostTier> tiers;
  if (sizes.dram > 0) {
    DramTierOptions dram;
    dram.capacity = sizes.dram;
    TC_ASSIGN_OR_RETURN(std::unique_ptr<DramTier> tier, DramTier::Create(std::move(dram)));
    tiers.push_back({std::move(tier), {"dram read", kHostMemcpyBytesPerSecond, "reference"}});
  }
  if (sizes.pmem > 0) {
#if defined(TIERCACHE_HAVE_PMEM)
    PmemTierOptions pmem;
    pmem.path = scratch->File("pmem.tier");
    pmem.capacity = sizes.pmem;
    pmem.index_entries = 4096;
    TC_ASSIGN_OR_RETURN(std::unique_ptr<PmemTier> tier, PmemTier::Open(pmem));
    tiers.push_back({std::move(tier), {"pmem read", kHostMemcpyBytesPerSecond, "reference"}});
#else
    notes->push_back("PMEM tier not built in (libpmem2 missing); left out");
#endif
  }
  if (sizes.nvme > 0) {
#if defined(TIERCACHE_BENCH_HAVE_NVME)
    NvmeTierOptions nvme;
    nvme.path = scratch->File("nvme.tier");
    nvme.capacity = sizes.nvme;
    TC_ASSIGN_OR_RETURN(std::unique_ptr<NvmeTier> tier, NvmeTier::Create(nvme));
    tiers.push_back({std::move(tier), {"nvme read", kNvmeReadBytesPerSecond, "reference"}});
#else
    notes->push_back("NVMe tier not built in; left out");
#endif
  }
  if (tiers.empty()) return Status::InvalidArgument("no host tier: give --dram-bytes or another size");
  return tiers;
}

}  // namespace tiercache::bench
