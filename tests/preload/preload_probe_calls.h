/* The stream-ordered allocations and the copies preload_probe makes, once
 * per default-stream flavour: included by preload_probe.c (the legacy
 * default stream) and by preload_probe_per_thread.c (built with
 * CUDA_API_PER_THREAD_DEFAULT_STREAM, so <cuda_runtime_api.h>'s macros turn
 * the same calls into cudaMallocAsync_ptsz, cudaMemcpy_ptds, ...). Each
 * function prints one "name value" line per result, never a pointer.
 * Include <cuda_runtime_api.h> first. Test code. */
#ifndef TIERCACHE_TESTS_PRELOAD_PRELOAD_PROBE_CALLS_H_
#define TIERCACHE_TESTS_PRELOAD_PRELOAD_PROBE_CALLS_H_

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIB (1024u * 1024u)

static uint64_t Checksum(const unsigned char* data, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i += 4093) h = (h ^ data[i]) * 1099511628211ull;
  return h;
}

/* A pageable host-to-device copy (cudaMemcpy, or cudaMemcpyAsync on the
 * null stream) large enough to be staged, read back with cudaMemcpy. */
static void CopyRoundTrip(const char* name, int async) {
  size_t n = 24 * MIB + 12345;  /* above the staging threshold, not a chunk multiple */
  unsigned char* host = malloc(n);
  unsigned char* back = calloc(1, n);
  for (size_t i = 0; i < n; ++i) host[i] = (unsigned char)(i * 131 + 7);
  void* dev = NULL;
  int alloc_rc = (int)cudaMalloc(&dev, n);
  int rc = async ? (int)cudaMemcpyAsync(dev, host, n, cudaMemcpyHostToDevice, 0)
                 : (int)cudaMemcpy(dev, host, n, cudaMemcpyHostToDevice);
  if (async) {
    memset(host, 0, n); /* the caller may reuse its pageable buffer once the call returned */
    (void)cudaStreamSynchronize(0);
    for (size_t i = 0; i < n; ++i) host[i] = (unsigned char)(i * 131 + 7);
  }
  int back_rc = (int)cudaMemcpy(back, dev, n, cudaMemcpyDeviceToHost);
  printf("%s_alloc %d\n%s %d\n%s_back %d\n", name, alloc_rc, name, rc, name, back_rc);
  printf("%s_same %d\n", name, alloc_rc == 0 && rc == 0 && back_rc == 0 ? memcmp(host, back, n) == 0 : -1);
  printf("%s_checksum %llu\n", name, (unsigned long long)(rc == 0 ? Checksum(back, n) : 0));
  if (alloc_rc == 0) printf("%s_free %d\n", name, (int)cudaFree(dev));
  free(host);
  free(back);
}

/* cudaMallocAsync / cudaFreeAsync of `bytes` on the null stream, a foreign
 * pointer's free and an allocation from a null pool; lines named
 * "<prefix>malloc_async" and so on. */
static void StreamOrderedCalls(const char* prefix, size_t bytes, uintptr_t foreign) {
  void* p = NULL;
  int rc = (int)cudaMallocAsync(&p, bytes, 0);
  printf("%smalloc_async %d\n", prefix, rc);
  if (rc == 0) printf("%sfree_async %d\n", prefix, (int)cudaFreeAsync(p, 0));
  printf("%sfree_async_foreign %d\n", prefix, (int)cudaFreeAsync((void*)foreign, 0));
  printf("%smalloc_from_null_pool %d\n", prefix, (int)cudaMallocFromPoolAsync(&p, bytes, NULL, 0));
  (void)cudaGetLastError();
}

#endif  /* TIERCACHE_TESTS_PRELOAD_PRELOAD_PROBE_CALLS_H_ */
