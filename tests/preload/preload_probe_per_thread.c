/* The part of preload_probe compiled the way code built with
 * --default-stream per-thread is: <cuda_runtime_api.h>'s macros turn its
 * calls into the runtime's per-thread exports (cudaMallocAsync_ptsz,
 * cudaFreeAsync_ptsz, cudaMallocFromPoolAsync_ptsz, cudaMemcpy_ptds,
 * cudaMemcpyAsync_ptsz, cudaStreamSynchronize_ptsz,
 * cudaGetDriverEntryPointByVersion_ptsz), whose null stream is the calling
 * thread's own default stream. Test code. */
#define CUDA_API_PER_THREAD_DEFAULT_STREAM 1
#include <cuda_runtime_api.h>

#include "preload_probe_calls.h"

typedef int (*AllocAsyncFn)(unsigned long long*, size_t, void*);
typedef int (*FreeAsyncFn)(unsigned long long, void*);

/* The driver's stream-ordered pair as a per-thread program looks it up: the
 * default flavour is the per-thread one (cuMemAllocAsync_ptsz). */
static void PerThreadEntryPoints(void) {
  void* alloc = NULL;
  void* release = NULL;
  enum cudaDriverEntryPointQueryResult status = cudaDriverEntryPointSymbolNotFound;
  int rc = (int)cudaGetDriverEntryPointByVersion("cuMemAllocAsync", &alloc, 12000, cudaEnableDefault,
                                                 &status);
  printf("ptsz_entry_point_by_version %d %d %d\n", rc, (int)status, alloc != NULL);
  if (rc != 0 || alloc == NULL) return;
  unsigned long long d = 0;
  int arc = ((AllocAsyncFn)alloc)(&d, MIB, NULL);
  printf("ptsz_entry_point_alloc %d\n", arc);
  rc = (int)cudaGetDriverEntryPointByVersion("cuMemFreeAsync", &release, 12000, cudaEnableDefault, &status);
  if (arc == 0 && rc == 0 && release != NULL) {
    printf("ptsz_entry_point_free %d\n", ((FreeAsyncFn)release)(d, NULL));
  }
  printf("ptsz_entry_point_sync %d\n", (int)cudaStreamSynchronize(0));
}

void PerThreadDefaultStreamCalls(void) {
  StreamOrderedCalls("ptsz_", 8192, 0x4000);
  CopyRoundTrip("ptds_memcpy", 0);
  CopyRoundTrip("ptsz_memcpy_async", 1);
  PerThreadEntryPoints();
}
