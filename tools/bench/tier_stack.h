// TierStack: the host tiers a replay runs on, sized from the options and the
// workload, in a temporary directory that is removed with the stack.
//
// Sizes: --dram-bytes / --pmem-bytes / --nvme-bytes (or the runtime's
// TIERCACHE_* names) when given; otherwise DRAM and PMEM hold a quarter of
// the working set each and NVMe the rest, so every tier serves requests.
// Blocks are homed fastest tier first. Impossible sizes are bad input
// (kInvalidArgument naming the tier): files larger than the free space of
// --dir, tiers too small for the working set, a GPU budget of 0 or beyond
// the device's memory.
//
// Thread safety: one thread builds and owns a stack; the tiers themselves
// are thread-safe (tiers/tier.h).
#ifndef TIERCACHE_TOOLS_BENCH_TIER_STACK_H_
#define TIERCACHE_TOOLS_BENCH_TIER_STACK_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "tiers/tier.h"
#include "tools/bench/options.h"
#include "tools/bench/report.h"

namespace tiercache::bench {

struct TierSizes {
  uint64_t gpu_budget = 0;  // all the GPU memory the run may use
  uint64_t gpu_cache = 0;   // of which cached blocks may hold this much
  uint64_t dram = 0;
  uint64_t dram_homes = 0;  // of dram, what block homes may fill (the rest: reserve, copies)
  uint64_t pmem = 0;
  uint64_t nvme = 0;
};

// Resolves defaults and checks the sizes against the workload and the free
// space of `dir` (`free_disk_bytes`, passed in so tests can choose it).
// `dram_reserve` is added to the default DRAM size (the runtime's staging
// ring lives in the DRAM tier). `dram_copy_room` is too, when no host tier
// size is given: room kept free of homes for copies of blocks homed further
// down (demotion, DRAM staging). Homes fill `dram_homes`.
Result<TierSizes> ChooseTierSizes(const Options& options, uint64_t working_set_bytes,
                                  uint64_t largest_block_bytes, uint64_t free_disk_bytes,
                                  uint64_t dram_reserve = 0, uint64_t free_memory_bytes = UINT64_MAX,
                                  uint64_t dram_copy_room = 0);

// Memory the system reports available (sysconf), for the DRAM tier check.
uint64_t AvailableMemoryBytes();

// Free bytes of the filesystem holding `dir`; kNotFound when it is missing.
Result<uint64_t> FreeDiskBytes(const std::string& dir);

// The directory --dir names, else $TMPDIR, else /tmp.
std::string ScratchDirectory(const Options& options);

// A private directory under a parent, removed (with its files) on
// destruction.
class ScratchDir {
 public:
  static Result<std::unique_ptr<ScratchDir>> Create(const std::string& parent);
  ~ScratchDir();
  const std::string& path() const { return path_; }
  std::string File(const std::string& name);  // remembered for removal

 private:
  explicit ScratchDir(std::string path) : path_(std::move(path)) {}
  std::string path_;
  std::vector<std::string> files_;
};

struct HostTier {
  std::unique_ptr<Tier> tier;
  LinkPeak link;  // toward the GPU (via staging)
};

// DRAM, PMEM and NVMe tiers of the given sizes (a size of 0 leaves a tier
// out); PMEM and NVMe files live in `scratch`. Tiers whose implementation is
// not built in are left out with a note.
Result<std::vector<HostTier>> OpenHostTiers(const TierSizes& sizes, ScratchDir* scratch,
                                            std::vector<std::string>* notes);

}  // namespace tiercache::bench

#endif  // TIERCACHE_TOOLS_BENCH_TIER_STACK_H_
