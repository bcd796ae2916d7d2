/*
 * tiercache: the C API.
 *
 * An engine opens a runtime, registers its weight blocks with a home tier
 * ("dram", "pmem" or "nvme"), and calls tiercache_acquire / tiercache_release
 * around each use. An acquire returns a device pointer valid in the order of
 * the stream it names: if the block is not on the GPU yet, the runtime
 * brings it up (NVMe -> pinned staging -> GPU, or DRAM -> GPU) and makes the
 * stream wait for the copy; the calling thread never waits for the copy
 * itself. A release unpins the block once the work enqueued on the stream so
 * far has run. Activations can be saved to host tiers and restored.
 *
 * Conventions
 * - Every function returns an int status: 0 (TIERCACHE_OK) or a negative
 *   tiercache_status code. It never sets errno and never lets an exception
 *   escape. On failure, tiercache_last_error() describes what went wrong.
 * - Every argument is validated: a NULL handle or output pointer, an unknown
 *   block or tier, a size of 0 where data is expected give
 *   TIERCACHE_ERR_INVALID_ARGUMENT or TIERCACHE_ERR_NOT_FOUND.
 * - Streams are passed as void*: a cudaStream_t with the CUDA device, a
 *   stream from tiercache_stream_create() otherwise; NULL is the device's
 *   default stream. This header needs no CUDA header.
 * - Strings returned through a caller's buffer follow one rule: the text is
 *   copied (NUL-terminated, truncated if need be), *needed (when not NULL)
 *   receives the full size including the NUL, and the call returns
 *   TIERCACHE_ERR_OUT_OF_SPACE when the buffer was too small.
 *
 * Thread safety: every function may be called from any thread; one runtime
 * serves many threads at once. tiercache_last_error() is per thread.
 * tiercache_close() must not race with other calls on the same runtime.
 */
#ifndef TIERCACHE_TIERCACHE_H_
#define TIERCACHE_TIERCACHE_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TIERCACHE_VERSION_MAJOR 0
#define TIERCACHE_VERSION_MINOR 1
#define TIERCACHE_VERSION_PATCH 0

/* Status codes: the negated error codes of the C++ core. */
typedef enum tiercache_status {
  TIERCACHE_OK = 0,
  TIERCACHE_ERR_INVALID_ARGUMENT = -1,  /* the call cannot work with these arguments */
  TIERCACHE_ERR_NOT_FOUND = -2,         /* no such block, group, tier, handle or file */
  TIERCACHE_ERR_OUT_OF_SPACE = -3,      /* a tier, the GPU cache or a buffer is full */
  TIERCACHE_ERR_OUT_OF_MEMORY = -4,     /* the host or the device refused an allocation */
  TIERCACHE_ERR_IO = -5,                /* a read or write failed or came back short */
  TIERCACHE_ERR_CORRUPTION = -6,        /* stored bytes failed their checksum */
  TIERCACHE_ERR_UNAVAILABLE = -7,       /* a device or feature is not present */
  TIERCACHE_ERR_PERMISSION_DENIED = -8, /* the operating system refused */
  TIERCACHE_ERR_BUSY = -9,              /* pinned, loading or not ready; try again */
  TIERCACHE_ERR_ALREADY_EXISTS = -10,   /* a block of that name exists */
  TIERCACHE_ERR_UNSUPPORTED = -11,      /* not built in, or not possible here */
  TIERCACHE_ERR_INTERNAL = -12          /* a bug; the message says where */
} tiercache_status;

typedef struct tiercache_config tiercache_config;   /* opaque */
typedef struct tiercache_runtime tiercache_runtime; /* opaque */
typedef uint64_t tiercache_block;
typedef uint64_t tiercache_group;
typedef uint64_t tiercache_activation;
typedef uint64_t tiercache_checkpoint;

#define TIERCACHE_NO_GROUP UINT64_MAX
/* The block of a tensor that has none (an empty tensor of a checkpoint). */
#define TIERCACHE_NO_BLOCK UINT64_MAX
/* tiercache_hint_next_use: the block will not be used again. */
#define TIERCACHE_NEVER UINT64_MAX
/* tiercache_save flag: copy only; the caller keeps (and frees) the memory. */
#define TIERCACHE_SAVE_KEEP_DEVICE 1u

/* ---- library ------------------------------------------------------------ */

/* "0.1.0": the library's version (compare with TIERCACHE_VERSION_*). */
const char* tiercache_version(void);
/* The last error message of this thread ("" when none). Valid until the
 * thread's next tiercache call. */
const char* tiercache_last_error(void);
/* "ok", "invalid argument", ... for a status code (never NULL). */
const char* tiercache_status_name(int status);

/* ---- configuration -------------------------------------------------------
 * Keys are the RuntimeConfig field names (docs/runtime.md), e.g.
 * "gpu_budget_bytes", "gpu_cache_bytes", "gpu_policy" (lru, arc, s3fifo,
 * next-use), "dram_bytes", "nvme_path", "nvme_bytes", "chunk_bytes". Sizes
 * accept units ("64MiB"). */

/* A config holding the defaults. */
int tiercache_config_create(tiercache_config** out);
/* Defaults, then the JSON file named by TIERCACHE_CONFIG, then TIERCACHE_<KEY>
 * environment variables. */
int tiercache_config_from_env(tiercache_config** out);
/* Sets one key from text. TIERCACHE_ERR_NOT_FOUND for an unknown key. */
int tiercache_config_set(tiercache_config* config, const char* key, const char* value);
/* Applies a JSON file (an object of keys). All or nothing. */
int tiercache_config_load_file(tiercache_config* config, const char* path);
/* The config as JSON text (see the buffer rule above). */
int tiercache_config_to_json(const tiercache_config* config, char* buffer, size_t size,
                             size_t* needed);
/* Frees a config (NULL is ignored). */
void tiercache_config_destroy(tiercache_config* config);

/* ---- runtime ---------------------------------------------------------------- */

/* Opens a runtime. `config` may be NULL (tiercache_config_from_env). The
 * config is copied. Without a GPU the emulated device is used (logged once). */
int tiercache_open(const tiercache_config* config, tiercache_runtime** out);
/* Waits for in-flight transfers, frees everything the runtime holds. NULL
 * is ignored. Pointers it handed out are invalid afterwards. The runtime
 * tiercache_preload_runtime() hands out (tiercache/preload.h) belongs to the
 * preload library: closing it is TIERCACHE_ERR_INVALID_ARGUMENT. */
int tiercache_close(tiercache_runtime* runtime);
/* Waits until background transfers have finished and released pins have
 * settled. A host wait: for tests, phase changes and shutdown. */
int tiercache_drain(tiercache_runtime* runtime);
/* 1 when the device is the host-emulated one, 0 for a real GPU. */
int tiercache_is_emulated(tiercache_runtime* runtime, int* out);
/* Statistics as JSON: per-tier hits, misses, bytes, evictions, stall time,
 * bandwidth; blocks; allocator; codec (also per tier); activations;
 * fallbacks; the config. With buffer NULL and size 0, *needed gets the size
 * (TIERCACHE_ERR_OUT_OF_SPACE); transfers still completing can make the text
 * grow before the next call, so give some slack (a few KiB). */
int tiercache_stats_json(tiercache_runtime* runtime, char* buffer, size_t size, size_t* needed);

/* ---- blocks ------------------------------------------------------------------
 * `home_tier` is "dram", "pmem" or "nvme" (a configured tier). `name` may be
 * NULL or "" for an anonymous block; names are unique otherwise. */

int tiercache_group_create(tiercache_runtime* runtime, const char* name, tiercache_group* out);
/* Copies data[0, bytes) into the home tier. */
int tiercache_register_buffer(tiercache_runtime* runtime, const char* name, const void* data,
                              uint64_t bytes, const char* home_tier, tiercache_group group,
                              tiercache_block* out);
/* As tiercache_register_buffer, choosing how the block is stored:
 * `compression` "off", "bf16" (the lossless bf16 codec: the home holds the
 * encoding, acquires decode it on the GPU; see docs/codec.md) or "auto" (bf16
 * when it saves at least 10%); NULL takes the config's `compression`. Any
 * home holds the encoding ("dram", "pmem", "nvme"); from a home other than
 * pinned DRAM it is read a chunk at a time through the staging ring and
 * decoded as it arrives. The block's size is `bytes` either way. */
int tiercache_register_buffer_compressed(tiercache_runtime* runtime, const char* name,
                                         const void* data, uint64_t bytes, const char* home_tier,
                                         tiercache_group group, const char* compression,
                                         tiercache_block* out);
/* Copies [offset, offset + bytes) of a file into the home tier. */
int tiercache_register_file(tiercache_runtime* runtime, const char* name, const char* path,
                            uint64_t offset, uint64_t bytes, const char* home_tier,
                            tiercache_group group, tiercache_block* out);
/* Forgets a block and frees its copies. TIERCACHE_ERR_BUSY while acquired. */
int tiercache_unregister(tiercache_runtime* runtime, tiercache_block block);
int tiercache_find_block(tiercache_runtime* runtime, const char* name, tiercache_block* out);
/* The block's size in bytes. */
int tiercache_block_size(tiercache_runtime* runtime, tiercache_block block, uint64_t* out);

/* ---- checkpoints (safetensors, read in place; docs/checkpoints.md) -----------
 * A checkpoint's tensors become blocks homed on the checkpoint's own files:
 * nothing is copied at registration; acquires read the files (O_DIRECT, or
 * the page cache for resident ranges: config key checkpoint_read_mode)
 * through the pinned staging ring to the GPU. A checkpoint wholly in the
 * page cache when registered, and larger than the GPU cache (so streamed),
 * has it pinned for DMA instead (config key checkpoint_pin_page_cache: auto,
 * on, off): acquires copy from it directly and it stays resident until the
 * checkpoint closes. Tensors are grouped into one
 * block per name group: "model.layers.12.mlp.up_proj.weight" belongs to the
 * block "model.layers.12" (the name up to its first all-digit component);
 * other tensors (embeddings, norms, lm_head) are blocks of their own, named
 * after them. A file changed after registration makes its blocks' acquires
 * fail with TIERCACHE_ERR_CORRUPTION; nothing else is affected. */

/* Registers the checkpoint at `path`: a .safetensors file, a
 * model.safetensors.index.json (its shards are followed), or a directory
 * holding either. `group_prefix` (NULL or ""): group only names starting
 * with it and followed by digits and '.', e.g. "model.layers.".
 * `block_prefix` (may be NULL) goes in front of every block name.
 * `persist_tier` (NULL: none, or "pmem"): blocks are kept in that
 * persistent tier after their first load, and a later process registering
 * the same files (same device, inode, size and mtime) reads them from there;
 * with the config's `compression` bf16 or auto those copies hold the bf16
 * codec's encoding (fewer bytes per load; the files are read as they are).
 * Errors: TIERCACHE_ERR_INVALID_ARGUMENT naming the file and tensor for a
 * malformed header or index (bad length, JSON, dtype, shape/size mismatch,
 * offsets past the file, overlapping tensors), TIERCACHE_ERR_NOT_FOUND for a
 * missing file, TIERCACHE_ERR_ALREADY_EXISTS for a block name already taken
 * (use block_prefix); nothing is registered then. */
int tiercache_register_safetensors(tiercache_runtime* runtime, const char* path,
                                   const char* group_prefix, const char* block_prefix,
                                   const char* persist_tier, tiercache_checkpoint* out);
/* Unregisters the checkpoint's blocks and closes its files.
 * TIERCACHE_ERR_BUSY while one of its blocks is acquired. */
int tiercache_checkpoint_close(tiercache_runtime* runtime, tiercache_checkpoint checkpoint);
/* How many tensors the checkpoint holds (indices 0 .. count-1, in file order). */
int tiercache_checkpoint_tensor_count(tiercache_runtime* runtime, tiercache_checkpoint checkpoint,
                                      size_t* count);

/* Where a tensor's bytes are. */
typedef struct tiercache_tensor_info {
  tiercache_block block; /* the block holding it; TIERCACHE_NO_BLOCK when empty */
  uint64_t offset;       /* its first byte inside the block */
  uint64_t bytes;        /* its size */
  uint32_t ndim;         /* rank (tiercache_checkpoint_tensor_shape gives the dims) */
  char dtype[16];        /* safetensors' dtype name, NUL-terminated: "BF16", "F32", ... */
} tiercache_tensor_info;

int tiercache_checkpoint_tensor(tiercache_runtime* runtime, tiercache_checkpoint checkpoint,
                                size_t index, tiercache_tensor_info* info);
/* The tensor's name (see the buffer rule above). */
int tiercache_checkpoint_tensor_name(tiercache_runtime* runtime, tiercache_checkpoint checkpoint,
                                     size_t index, char* buffer, size_t size, size_t* needed);
/* Its dimensions: up to `capacity` into dims, the rank into *ndim
 * (TIERCACHE_ERR_OUT_OF_SPACE when capacity is short). */
int tiercache_checkpoint_tensor_shape(tiercache_runtime* runtime, tiercache_checkpoint checkpoint,
                                      size_t index, uint64_t* dims, size_t capacity, size_t* ndim);
/* The index of the tensor named `name`; TIERCACHE_ERR_NOT_FOUND if none. */
int tiercache_checkpoint_find_tensor(tiercache_runtime* runtime, tiercache_checkpoint checkpoint,
                                     const char* name, size_t* index);
/* The whole table as JSON (buffer rule): {"files", "tensor_bytes", "blocks":
 * [{"id", "name", "bytes", "persisted"}], "tensors": [{"name", "dtype",
 * "shape", "block" (null when empty), "offset", "bytes"}]}. */
int tiercache_checkpoint_json(tiercache_runtime* runtime, tiercache_checkpoint checkpoint,
                              char* buffer, size_t size, size_t* needed);

/* ---- the data path ----------------------------------------------------------- */

/* Pins the block on the GPU and returns its device pointer, valid in
 * `stream`'s order until tiercache_release. Errors: TIERCACHE_ERR_IO or
 * TIERCACHE_ERR_CORRUPTION when its bytes could not be read intact (the
 * block stays registered; a later acquire retries), TIERCACHE_ERR_OUT_OF_SPACE
 * when the GPU cache is full of acquired blocks. */
int tiercache_acquire(tiercache_runtime* runtime, tiercache_block block, void* stream,
                      void** device_ptr);
/* As tiercache_acquire but never waits: TIERCACHE_ERR_BUSY (and a prefetch
 * is started) when the block is not on the GPU yet. */
int tiercache_try_acquire(tiercache_runtime* runtime, tiercache_block block, void* stream,
                          void** device_ptr);
/* Unpins once the work enqueued on `stream` so far has run. */
int tiercache_release(tiercache_runtime* runtime, tiercache_block block, void* stream);
/* Starts bringing blocks to the GPU in the background, in order. */
int tiercache_prefetch(tiercache_runtime* runtime, const tiercache_block* blocks, size_t count);
/* Acquires every block of a group, in registration order, all or none;
 * device_ptrs receives up to `capacity` pointers, *count the group's size
 * (TIERCACHE_ERR_OUT_OF_SPACE, nothing acquired, when capacity is short). */
int tiercache_acquire_group(tiercache_runtime* runtime, tiercache_group group, void* stream,
                            void** device_ptrs, size_t capacity, size_t* count);
int tiercache_release_group(tiercache_runtime* runtime, tiercache_group group, void* stream);
/* The block is next used `accesses_from_now` acquires from now
 * (TIERCACHE_NEVER: not again). Feeds the next-use eviction policy. */
int tiercache_hint_next_use(tiercache_runtime* runtime, tiercache_block block,
                            uint64_t accesses_from_now);
/* The next acquires, in order: predictions for eviction, and a prefetch of
 * the first few (prefetch_lookahead). */
int tiercache_hint_order(tiercache_runtime* runtime, const tiercache_block* blocks,
                         size_t count);
/* Evicts a block from the GPU now. TIERCACHE_ERR_BUSY while pinned. */
int tiercache_evict(tiercache_runtime* runtime, tiercache_block block);

/* ---- device memory (the budget shared with cached blocks) --------------------- */

/* Stream-ordered allocation from the runtime's pool; cached blocks give way
 * when the budget is short. */
int tiercache_device_alloc(tiercache_runtime* runtime, uint64_t bytes, void* stream, void** out);
/* Returns memory to the pool in `stream`'s order. */
int tiercache_device_free(tiercache_runtime* runtime, void* device_ptr, void* stream);

/* ---- activations ----------------------------------------------------------------- */

/* Copies device_ptr[0, bytes) to a host tier after the work enqueued on
 * `stream` (DRAM, or NVMe when DRAM is full) and, unless flags has
 * TIERCACHE_SAVE_KEEP_DEVICE, frees device_ptr (which must come from
 * tiercache_device_alloc) once the copy has read it. The range is checked as
 * for tiercache_copy_to_host; a save that is to free device_ptr needs the
 * start of an allocation (TIERCACHE_ERR_INVALID_ARGUMENT otherwise). With
 * config key activation_pending_bytes > 0, a save is refused with
 * TIERCACHE_ERR_BUSY (nothing copied, nothing freed) while saves not yet
 * copied hold that many bytes, or would with this one; never when none is. */
int tiercache_save(tiercache_runtime* runtime, void* device_ptr, uint64_t bytes, void* stream,
                   unsigned flags, tiercache_activation* out);
/* Makes `stream` wait, in its order, until the save `handle` has read its
 * device memory (the host waits only while a spill to NVMe is still being
 * enqueued). With TIERCACHE_SAVE_KEEP_DEVICE this is when the caller may
 * reuse the memory: e.g. PyTorch's tensor.record_stream(stream) after it.
 * Returns the save's error if the save failed (the memory is then still the
 * only copy); TIERCACHE_ERR_NOT_FOUND for an unknown or consumed handle. */
int tiercache_save_wait(tiercache_runtime* runtime, tiercache_activation handle, void* stream);
/* New device memory holding the saved bytes, valid in `stream`'s order; the
 * caller frees it with tiercache_device_free. Consumes the handle. */
int tiercache_restore(tiercache_runtime* runtime, tiercache_activation handle, void* stream,
                      void** device_ptr);
/* Starts restores ahead, in the order given (reverse order for backward). */
int tiercache_prefetch_restore(tiercache_runtime* runtime, const tiercache_activation* handles,
                               size_t count);
/* Drops a saved activation without restoring it. */
int tiercache_discard(tiercache_runtime* runtime, tiercache_activation handle);

/* ---- streams and copies (engines without their own GPU runtime calls) ---------- */

int tiercache_stream_create(tiercache_runtime* runtime, void** stream);
int tiercache_stream_destroy(tiercache_runtime* runtime, void* stream);
int tiercache_stream_synchronize(tiercache_runtime* runtime, void* stream);
/* Enqueues a copy on `stream` (asynchronous; synchronise before reading).
 * A device range in the runtime's memory must lie inside one live
 * allocation (tiercache_device_alloc, tiercache_restore, an acquired block):
 * an overrun, freed memory or a range across two allocations is
 * TIERCACHE_ERR_INVALID_ARGUMENT before anything is enqueued. */
int tiercache_copy_to_host(tiercache_runtime* runtime, void* host_dst, const void* device_src,
                           uint64_t bytes, void* stream);
int tiercache_copy_to_device(tiercache_runtime* runtime, void* device_dst, const void* host_src,
                             uint64_t bytes, void* stream);

#ifdef __cplusplus
}  /* extern "C" */
#endif

#endif  /* TIERCACHE_TIERCACHE_H_ */
