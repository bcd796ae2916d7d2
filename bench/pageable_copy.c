/* Pageable host-to-device copy throughput, the way an engine that cannot
 * change does it: cudaMemcpy (and cudaMemcpyAsync + synchronize) from
 * malloc'd memory. bench/preload_suite.sh runs it twice in one session, plain
 * and under LD_PRELOAD=libtiercache_preload.so, and prints the ratio; the
 * pinned figure (cudaHostAlloc source, never staged) is the ceiling.
 *
 * Usage: pageable_copy [max size in MiB, default 4096]
 * Prints "pageable <bytes> <GB/s>", "pageable_async <bytes> <GB/s>",
 * "pinned <bytes> <GB/s>" and "verified <0|1>" (the device bytes read back
 * match the source), one per line. */
#include <cuda_runtime_api.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double Now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

#define CHECK(call)                                                          \
  do {                                                                       \
    cudaError_t e_ = (call);                                                 \
    if (e_ != cudaSuccess) {                                                 \
      fprintf(stderr, "%s: %s\n", #call, cudaGetErrorString(e_));            \
      exit(1);                                                               \
    }                                                                        \
  } while (0)

/* Best of `reps` timed copies (after one warm-up), in GB/s. */
static double Measure(void* dst, const void* src, size_t n, int async, int reps) {
  double best = 0;
  for (int r = 0; r <= reps; ++r) {
    double t0 = Now();
    if (async) {
      CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyHostToDevice, 0));
      CHECK(cudaStreamSynchronize(0));
    } else {
      CHECK(cudaMemcpy(dst, src, n, cudaMemcpyHostToDevice));
    }
    double gbps = (double)n / (Now() - t0) / 1e9;
    if (r > 0 && gbps > best) best = gbps;
  }
  return best;
}

int main(int argc, char** argv) {
  size_t max_mib = argc > 1 ? (size_t)strtoull(argv[1], NULL, 10) : 4096;
  size_t max = max_mib << 20;
  unsigned char* host = malloc(max);
  unsigned char* back = malloc(64u << 20);
  if (host == NULL || back == NULL) return 1;
  for (size_t i = 0; i < max; ++i) host[i] = (unsigned char)(i * 2654435761u >> 13);
  void* dev = NULL;
  CHECK(cudaMalloc(&dev, max));
  int verified = 1;
  for (size_t n = 64u << 20; n <= max; n *= 4) {
    int reps = n >= (1u << 30) ? 3 : 5;
    printf("pageable %zu %.2f\n", n, Measure(dev, host, n, 0, reps));
    printf("pageable_async %zu %.2f\n", n, Measure(dev, host, n, 1, reps));
    fflush(stdout);
    /* The last 64 MiB of this size came through intact. */
    size_t tail = n - (64u << 20);
    CHECK(cudaMemcpy(back, (char*)dev + tail, 64u << 20, cudaMemcpyDeviceToHost));
    verified = verified && memcmp(back, host + tail, 64u << 20) == 0;
  }
  void* pinned = NULL;
  size_t pinned_bytes = 1u << 30;
  if (pinned_bytes > max) pinned_bytes = max;
  CHECK(cudaHostAlloc(&pinned, pinned_bytes, cudaHostAllocDefault));
  memcpy(pinned, host, pinned_bytes);
  printf("pinned %zu %.2f\n", pinned_bytes, Measure(dev, pinned, pinned_bytes, 0, 3));
  printf("verified %d\n", verified);
  CHECK(cudaFreeHost(pinned));
  CHECK(cudaFree(dev));
  free(host);
  free(back);
  return 0;
}
