/* The part of preload_probe compiled the way code built with
 * --default-stream per-thread is: <cuda_runtime_api.h>'s macros turn its
 * calls into the runtime's per-thread exports (cudaMallocAsync_ptsz,
 * cudaFreeAsync_ptsz, cudaMallocFromPoolAsync_ptsz, cudaMemcpy_ptds,
 * cudaMemcpyAsync_ptsz, cudaStreamSynchronize_ptsz,
 * cudaGetDriverEntryPointByVersion_ptsz), whose null stream is the calling
 * thread's own default stream. Test code. */
#define CUDA_API_PER_THREAD_DEFAULT_STREAM 1
#include <cuda_runtime_api.h>
#include <pthread.h>
#include <unistd.h>

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

static void HoldStream(void* arg) {
  (void)arg;
  usleep(500 * 1000);
}

struct SecondThread {
  void* block;
  int rc;
};

static void* AllocateAndFill(void* arg) {
  struct SecondThread* second = arg;
  second->rc = (int)cudaMallocAsync(&second->block, MIB, 0);
  if (second->rc == 0) second->rc = (int)cudaMemsetAsync(second->block, 0x11, MIB, 0);
  if (second->rc == 0) second->rc = (int)cudaStreamSynchronize(0);
  return NULL;
}

/* Every thread's per-thread stream has the same handle. This thread holds
 * its stream up for half a second, queues a write of a block behind that
 * and frees the block; then a second thread allocates as much on its own
 * per-thread stream, fills it and waits for its stream. The first thread's
 * late write must not land in the second thread's block: "reuse_intact 1". */
void PerThreadReuse(void) {
  void* first = NULL;
  int rc = (int)cudaMallocAsync(&first, MIB, 0);
  printf("reuse_malloc %d\n", rc);
  if (rc != 0) return;
  rc = (int)cudaLaunchHostFunc(0, HoldStream, NULL);
  if (rc == 0) rc = (int)cudaMemsetAsync(first, 0xab, MIB, 0);
  if (rc == 0) rc = (int)cudaFreeAsync(first, 0);
  printf("reuse_first %d\n", rc);
  struct SecondThread second = {NULL, -1};
  pthread_t thread;
  pthread_create(&thread, NULL, AllocateAndFill, &second);
  pthread_join(thread, NULL);
  printf("reuse_second %d\n", second.rc);
  if (second.rc != 0) return;
  printf("reuse_sync %d\n", (int)cudaDeviceSynchronize());
  unsigned char* bytes = malloc(MIB);
  int intact = cudaMemcpy(bytes, second.block, MIB, cudaMemcpyDeviceToHost) == cudaSuccess;
  for (size_t i = 0; intact && i < MIB; ++i) intact = bytes[i] == 0x11;
  printf("reuse_same_block %d\nreuse_intact %d\n", second.block == first, intact);
  printf("reuse_free %d\n", (int)cudaFree(second.block));
  free(bytes);
}

void PerThreadDefaultStreamCalls(void) {
  StreamOrderedCalls("ptsz_", 8192, 0x4000);
  CopyRoundTrip("ptds_memcpy", 0);
  CopyRoundTrip("ptsz_memcpy_async", 1);
  PerThreadEntryPoints();
}
