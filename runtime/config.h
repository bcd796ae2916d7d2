// RuntimeConfig: every knob of the cache runtime, from three sources.
//
// A config starts from the defaults below, then (in this order, later wins)
// takes a JSON file (`TIERCACHE_CONFIG=<path>` or LoadConfigFile), then
// TIERCACHE_<FIELD> environment variables (the field name upper-cased:
// TIERCACHE_GPU_CACHE_BYTES=8GiB, TIERCACHE_GPU_POLICY=next-use). Byte sizes
// accept numbers or strings with units ("64MiB", see common/units.h). The
// resulting config prints as JSON (ToJson) so a run can record exactly what
// it used. Unknown keys and malformed values are errors (kInvalidArgument
// naming the key), never silently ignored.
//
// Thread safety: a value type; the functions here are pure apart from
// reading the environment and files.
#ifndef TIERCACHE_RUNTIME_CONFIG_H_
#define TIERCACHE_RUNTIME_CONFIG_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "common/units.h"

namespace tiercache {

struct RuntimeConfig {
  // ---- device ---------------------------------------------------------
  int64_t device_ordinal = 0;
  // Budget of the pooled device allocator shared by cached blocks and the
  // engine; 0 lets the allocator pick (the device's free memory).
  uint64_t gpu_budget_bytes = 0;
  // Cap on bytes of cached blocks inside that budget; 0 = the whole budget.
  uint64_t gpu_cache_bytes = 0;
  // lru, arc, s3fifo, next-use. next-use ranks blocks by the prefetcher's
  // predictions and falls back to the best of lru/arc/s3fifo, measured on
  // shadow caches, where predictions do not pay (prefetch/eviction/
  // adaptive_policy.h).
  std::string gpu_policy = "next-use";

  // ---- host tiers (a size of 0 leaves the tier out) --------------------
  uint64_t dram_bytes = 1 * kGiB;
  int64_t numa_node = -1;          // -1: the GPU's nearest node
  std::string dram_policy = "lru";
  std::string pmem_path;           // empty: no PMEM tier
  uint64_t pmem_bytes = 0;
  std::string nvme_path;           // a file or directory on the NVMe drive
  uint64_t nvme_bytes = 0;
  int64_t nvme_queue_depth = 32;
  bool nvme_direct = true;         // O_DIRECT; false for filesystems without it (tmpfs)
  // Checkpoints read in place (docs/checkpoints.md): "auto" reads ranges
  // resident in the page cache through it and the rest with O_DIRECT;
  // "direct" or "buffered" force one way.
  std::string checkpoint_read_mode = "auto";
  int64_t checkpoint_queue_depth = 64;  // O_DIRECT reads in the kernel at once
  // A checkpoint whose files lie wholly in the page cache when registered
  // (and take at most half the memory) can have that page cache pinned for
  // DMA: its blocks are copied to the GPU straight from it, at the link's
  // rate, with no host copy; the pages stay resident until the checkpoint
  // closes. "auto": when its tensors are larger than the GPU cache's room
  // (gpu_cache_bytes, else the allocator's budget), so
  // they will be streamed, read again and again (one that fits is read once:
  // pinning would cost more than it saves); "on": always; "off": never.
  std::string checkpoint_pin_page_cache = "auto";

  // ---- transfer engine --------------------------------------------------
  // Copy chunk size: 16 MiB or more keeps PCIe near its peak (1 MiB chunks
  // reached 48.5 of 55.2 GB/s on the measured machine).
  uint64_t chunk_bytes = 16 * kMiB;
  int64_t staging_buffers = 4;     // ring of pinned staging buffers of chunk_bytes
  bool verify_checksums = true;    // CRC32C per chunk on staged (NVMe/PMEM) reads
  int64_t io_retries = 1;          // re-reads from the home tier after a failure
  bool demote_on_evict = true;     // GPU evictions of NVMe/PMEM blocks keep a DRAM copy
  bool cycle_plan = true;          // a known cycle larger than the GPU cache: a kept part and a ring (docs/runtime.md)
  // Where prefetches come from: "learn" (the default: the prefetcher learns
  // the engine's order from its acquires; explicit hints override it),
  // "hints" (only tiercache_hint_order / HintOrder and next-use hints), or
  // "off" (nothing is brought in ahead except by an explicit Prefetch call;
  // hints still feed eviction).
  std::string prefetch = "learn";
  // Cap on how many blocks ahead the runtime prefetches; 0 (the default)
  // leaves it to the depth derived at run time from the measured link
  // bandwidth, block sizes, time between acquires and free GPU room.
  int64_t prefetch_lookahead = 0;
  // Predicted next blocks (asked of the predictor after each acquire) whose
  // home is slow (NVMe, PMEM) are read into DRAM copies ahead of use, in the
  // background, up to this many blocks ahead; 0 turns it off. Needs no GPU
  // room, so it runs deeper than prefetch_lookahead; bounded by DRAM room,
  // never evicting a DRAM copy needed sooner.
  int64_t dram_prefetch_lookahead = 16;
  // How long an acquire waits for in-flight work to unpin a victim before
  // reporting kOutOfSpace.
  int64_t acquire_wait_ms = 10000;

  // How RegisterFromBuffer stores blocks by default (docs/codec.md): off,
  // bf16 (the lossless bf16 codec, decoded on the GPU) or auto (bf16 when it
  // saves at least 10%). Encoded blocks stay encoded in whichever home they
  // are registered on (DRAM, PMEM, NVMe), so every slow link moves fewer
  // bytes.
  std::string compression = "off";

  // ---- activation store -------------------------------------------------
  bool activation_spill_to_nvme = true;  // when DRAM is full
  // Saves still copying may hold at most this many bytes (0: no bound): a
  // save beyond it is refused (kBusy) and the engine keeps that tensor on
  // the device. Offload then takes only what the link carries while the
  // compute runs, so the step does not wait for copies (docs/python.md).
  uint64_t activation_pending_bytes = 0;
};

// Parses JSON text: one object whose keys are field names. Missing keys keep
// the values already in `config`.
Status ApplyConfigJson(std::string_view json, RuntimeConfig* config);
Status LoadConfigFile(const std::string& path, RuntimeConfig* config);
// Applies TIERCACHE_<FIELD> variables (and TIERCACHE_CONFIG first).
Status ApplyConfigEnvironment(RuntimeConfig* config);
// Defaults, then TIERCACHE_CONFIG, then the environment.
Result<RuntimeConfig> ConfigFromEnvironment();

// Range and consistency checks (policy names, chunk size, counts).
Status ValidateConfig(const RuntimeConfig& config);

// The whole config as a JSON object, byte sizes as integers.
std::string ConfigToJson(const RuntimeConfig& config);

// Field names in declaration order (for documentation and tests).
std::vector<std::string> ConfigFieldNames();

// Sets one field from text as an environment variable would ("64MiB",
// "true", "next-use"). kNotFound for an unknown field.
Status SetConfigField(std::string_view field, std::string_view value, RuntimeConfig* config);

}  // namespace tiercache

#endif  // TIERCACHE_RUNTIME_CONFIG_H_
