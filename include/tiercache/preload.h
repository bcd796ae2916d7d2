/*
 * tiercache preload library (libtiercache_preload.so): the functions it
 * exports besides the CUDA calls it interposes.
 *
 * Loaded with LD_PRELOAD, the library routes cudaMalloc/cudaFree,
 * cudaMallocAsync/cudaFreeAsync, cudaMallocFromPoolAsync and the driver's
 * cuMemAlloc_v2/cuMemFree_v2/cuMemAllocAsync/cuMemFreeAsync to tiercache's
 * pooled stream-ordered allocator, stages large pageable host-to-device
 * copies through pinned buffers, and passes every other call (and every
 * call it cannot serve) to the real function with its own error code.
 * docs/preload.md has the variables, the pitfalls and the engine matrix.
 *
 * Loaded by PyTorch instead:
 *
 *   alloc = torch.cuda.memory.CUDAPluggableAllocator(
 *       "libtiercache_preload.so", "tiercache_torch_alloc", "tiercache_torch_free")
 *   torch.cuda.memory.change_current_allocator(alloc)
 *
 * PyTorch's allocations then come from the same pool (and budget) as the
 * cache runtime the library hosts: cached weight blocks that are not pinned
 * give way when PyTorch needs memory. The library also exports the whole C
 * API (tiercache.h); tiercache_preload_runtime() hands out the hosted
 * runtime, so blocks registered through it share that one budget:
 *
 *   lib = ctypes.CDLL("libtiercache_preload.so")
 *   rt = ctypes.c_void_p(); lib.tiercache_preload_runtime(ctypes.byref(rt))
 *   lib.tiercache_register_buffer(rt, b"layer0", data, size, b"dram", ...)
 *
 * (a DRAM home needs TIERCACHE_DRAM_BYTES: the hosted runtime has no DRAM
 * tier by default). Use that handle only with this library's functions.
 *
 * Thread safety: every function here may be called from any thread.
 */
#ifndef TIERCACHE_PRELOAD_H_
#define TIERCACHE_PRELOAD_H_

#include <stddef.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* PyTorch's CUDAPluggableAllocator allocation hook: `size` bytes on CUDA
 * device `device`, usable in the order of `stream` (a cudaStream_t).
 * Returns NULL when the pool cannot serve it (PyTorch then reports out of
 * memory), when size <= 0, or when `device` is not the device the library
 * serves (TIERCACHE_DEVICE_ORDINAL, default 0). size 0 is not an error in
 * PyTorch's sense: it returns NULL, which PyTorch accepts for empty tensors. */
void* tiercache_torch_alloc(ssize_t size, int device, void* stream);

/* The matching free hook: `ptr` is free once the work enqueued on `stream`
 * so far is done. NULL is ignored; a pointer this library did not hand out
 * is counted (invalid_frees in the stats) and left alone. */
void tiercache_torch_free(void* ptr, ssize_t size, int device, void* stream);

/* The runtime the library hosts (the one whose pool serves the interposed and
 * pluggable allocations), opened on first use. Returns 0, or
 * TIERCACHE_ERR_UNAVAILABLE (-7) when there is no CUDA device or it did not
 * open (the stats' pass_through_reason says why), or
 * TIERCACHE_ERR_INVALID_ARGUMENT for a NULL `out`. The handle belongs to the
 * library: tiercache_close() refuses it. */
typedef struct tiercache_runtime tiercache_runtime;
int tiercache_preload_runtime(tiercache_runtime** out);

/* The library's statistics as JSON: what was interposed (calls, bytes,
 * pass-throughs with their reason), the pool's stats (allocations, peak,
 * fragmentation), the pageable copies staged and the time saved against the
 * pageable rate, the variables in force, and the hosted runtime's stats.
 * Buffer rule as in tiercache.h: the text is copied NUL-terminated
 * (truncated if need be), *needed (when not NULL) receives the full size
 * including the NUL; returns 0, or TIERCACHE_ERR_OUT_OF_SPACE (-3) when the
 * buffer was too small, TIERCACHE_ERR_INVALID_ARGUMENT (-1) when buffer is
 * NULL with a non-zero size. */
int tiercache_preload_stats_json(char* buffer, size_t size, size_t* needed);

#ifdef __cplusplus
}
#endif

#endif /* TIERCACHE_PRELOAD_H_ */
