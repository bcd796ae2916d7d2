/* A small CUDA program linked against the shared CUDA runtime, run by
 * preload_test with and without LD_PRELOAD=libtiercache_preload.so. It
 * makes every call the library interposes and prints one "name value" line
 * per result (return codes, flags, checksums; never pointers), so the two
 * runs must print the same lines. With the library loaded it also prints
 * "stats <json>" from tiercache_preload_stats_json.
 *
 * Usage: preload_probe <driver library to dlopen when libcuda.so.1 is absent>
 *                      [<libtiercache_probe_scope.so>]
 *        preload_probe --static-check   (built against the static runtime)
 *        preload_probe --no-cuda        (makes no CUDA call at all)
 *        preload_probe --shared-budget  (under the library, with a GPU: a
 *            cached block gives way to an application's cudaMalloc)
 *        preload_probe --per-thread-reuse  (under the library, with a GPU: two
 *            threads' per-thread streams do not share a freed block early) */
#define _GNU_SOURCE  /* dlvsym */
#include <cuda_runtime_api.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "preload_probe_calls.h"

void PerThreadDefaultStreamCalls(void);  /* preload_probe_per_thread.c */
void PerThreadReuse(void);

typedef int (*AllocFn)(unsigned long long*, size_t);
typedef int (*FreeFn)(unsigned long long);
typedef int (*GetProcFn)(const char*, void**, int, unsigned long long, int*);

static void* driver;  /* the dlopened driver (or its stub) */

static void* ConcurrentMalloc(void* arg) {
  void* p = NULL;
  int rc = (int)cudaMalloc(&p, MIB);
  if (rc == 0) cudaFree(p);
  *(int*)arg = rc;
  return NULL;
}

/* A thread that never touched the runtime: no current context. */
static void* DriverAllocWithoutContext(void* arg) {
  AllocFn alloc = (AllocFn)dlsym(driver, "cuMemAlloc_v2");
  unsigned long long p = 0;
  *(int*)arg = alloc == NULL ? -1 : alloc(&p, MIB);
  return NULL;
}

/* Under the library: its stats, on stderr ("stats_rc", "stats <json>"). */
static void PrintStats(void) {
  int (*stats)(char*, size_t, size_t*) =
      (int (*)(char*, size_t, size_t*))dlsym(RTLD_DEFAULT, "tiercache_preload_stats_json");
  if (stats != NULL) {
    size_t needed = 0;
    int first = stats(NULL, 0, &needed);
    char* text = malloc(needed);
    int second = stats(text, needed, NULL);
    fprintf(stderr, "stats_rc %d %d\nstats %s\n", first, second, text);
    free(text);
  }
}

/* Under the library: registers a 256 MiB block in the hosted runtime, makes
 * it GPU-resident, then asks cudaMalloc for most of the budget (set by the
 * caller through TIERCACHE_GPU_BUDGET_BYTES). Prints each step's code. */
static int SharedBudget(void) {
  typedef int (*RuntimeFn)(void**);
  typedef int (*RegisterFn)(void*, const char*, const void*, uint64_t, const char*, uint64_t, uint64_t*);
  typedef int (*AcquireFn)(void*, uint64_t, void*, void**);
  typedef int (*ReleaseFn)(void*, uint64_t, void*);
  typedef int (*DrainFn)(void*);
  typedef int (*CloseFn)(void*);
  RuntimeFn get = (RuntimeFn)dlsym(RTLD_DEFAULT, "tiercache_preload_runtime");
  RegisterFn reg = (RegisterFn)dlsym(RTLD_DEFAULT, "tiercache_register_buffer");
  AcquireFn acquire = (AcquireFn)dlsym(RTLD_DEFAULT, "tiercache_acquire");
  ReleaseFn release = (ReleaseFn)dlsym(RTLD_DEFAULT, "tiercache_release");
  DrainFn drain = (DrainFn)dlsym(RTLD_DEFAULT, "tiercache_drain");
  CloseFn close_fn = (CloseFn)dlsym(RTLD_DEFAULT, "tiercache_close");
  if (!get || !reg || !acquire || !release || !drain || !close_fn) {
    printf("shared_budget_symbols 0\n");
    return 0;
  }
  void* rt = NULL;
  int rc = get(&rt);
  printf("runtime %d\n", rc);
  if (rc != 0) return 0;
  size_t block_bytes = 256u * MIB;
  unsigned char* data = malloc(block_bytes);
  memset(data, 7, block_bytes);
  uint64_t block = 0;
  printf("register %d\n", reg(rt, "weights", data, block_bytes, "dram", UINT64_MAX, &block));
  void* device = NULL;
  printf("acquire %d\n", acquire(rt, block, NULL, &device));
  printf("release %d\n", release(rt, block, NULL));
  printf("drain %d\n", drain(rt));
  printf("close_refused %d\n", close_fn(rt));
  void* big = NULL;
  rc = (int)cudaMalloc(&big, 900u * MIB);  /* fits the 1 GiB budget only without the block */
  printf("app_malloc %d\n", rc);
  if (rc == 0) printf("app_free %d\n", (int)cudaFree(big));
  printf("acquire_again %d\n", acquire(rt, block, NULL, &device));
  printf("release_again %d\n", release(rt, block, NULL));
  free(data);
  return 0;
}

int main(int argc, char** argv) {
  if (argc > 1 && strcmp(argv[1], "--shared-budget") == 0) return SharedBudget();
  if (argc > 1 && strcmp(argv[1], "--per-thread-reuse") == 0) {
    PerThreadReuse();
    PrintStats();
    return 0;
  }
  if (argc > 1 && strcmp(argv[1], "--no-cuda") == 0) return 0;  /* a helper that never calls CUDA */
  if (argc > 1 && strcmp(argv[1], "--static-check") == 0) {
    void* p = NULL;
    printf("static_malloc %d\n", (int)cudaMalloc(&p, 16));
    return 0;
  }
  /* Several threads make the first calls at once: the library initialises once. */
  pthread_t threads[4];
  int codes[4];
  for (int i = 0; i < 4; ++i) pthread_create(&threads[i], NULL, ConcurrentMalloc, &codes[i]);
  for (int i = 0; i < 4; ++i) pthread_join(threads[i], NULL);
  for (int i = 0; i < 4; ++i) printf("concurrent_malloc %d\n", codes[i]);

  void* p = NULL;
  int rc = (int)cudaMalloc(&p, MIB);
  printf("malloc %d\n", rc);
  if (rc == 0) printf("free %d\n", (int)cudaFree(p));
  printf("malloc_null %d\n", (int)cudaMalloc(NULL, 16));
  printf("malloc_zero %d\n", (int)cudaMalloc(&p, 0));
  printf("free_foreign %d\n", (int)cudaFree((void*)(uintptr_t)0x1000));
  printf("free_null %d\n", (int)cudaFree(NULL));
  StreamOrderedCalls("", 4096, 0x2000);
  CopyRoundTrip("memcpy", 0);
  CopyRoundTrip("memcpy_async", 1);
  PerThreadDefaultStreamCalls();
  printf("memcpy_small %d\n", (int)cudaMemcpy(&p, &rc, sizeof(rc), cudaMemcpyHostToHost));

  void* fn = NULL;
  enum cudaDriverEntryPointQueryResult status = cudaDriverEntryPointSymbolNotFound;
  rc = (int)cudaGetDriverEntryPointByVersion("cuMemAlloc", &fn, 12000, cudaEnableDefault, &status);
  printf("entry_point_by_version %d %d %d\n", rc, (int)status, fn != NULL);
  if (rc == 0 && fn != NULL) {
    unsigned long long d = 0;
    int arc = ((AllocFn)fn)(&d, MIB);
    printf("entry_point_alloc %d\n", arc);
    void* free_fn = NULL;
    cudaGetDriverEntryPointByVersion("cuMemFree", &free_fn, 12000, cudaEnableDefault, &status);
    if (arc == 0 && free_fn != NULL) printf("entry_point_free %d\n", ((FreeFn)free_fn)(d));
  }

  /* RTLD_NEXT and RTLD_DEFAULT answers depend on who asks: the library's
   * dlsym must hand them to glibc as if this program had asked. */
  printf("dlsym_next_is_bound %d\n", dlsym(RTLD_NEXT, "cudaMalloc") == (void*)&cudaMalloc);
  printf("dlsym_default_is_bound %d\n", dlsym(RTLD_DEFAULT, "cudaMalloc") == (void*)&cudaMalloc);

  /* An engine that dlopens the runtime and looks cudaMalloc up by name. */
  void* runtime = dlopen("libcudart.so.13", RTLD_NOW | RTLD_NOLOAD);
  printf("runtime_dlopen %d\n", runtime != NULL);
  if (runtime != NULL) {
    cudaError_t (*by_name)(void**, size_t) = (cudaError_t(*)(void**, size_t))dlsym(runtime, "cudaMalloc");
    rc = by_name == NULL ? -1 : (int)by_name(&p, 2 * MIB);
    printf("dlsym_malloc %d\n", rc);
    if (rc == 0) cudaFree(p);
    /* ... or by name and version, as an engine built for this cudart does. */
    by_name = (cudaError_t(*)(void**, size_t))dlvsym(runtime, "cudaMalloc", "libcudart.so.13");
    rc = by_name == NULL ? -1 : (int)by_name(&p, 3 * MIB);
    printf("dlvsym_malloc %d\n", rc);
    if (rc == 0) cudaFree(p);
    printf("dlvsym_other_version %d\n", dlvsym(runtime, "cudaMalloc", "libcudart.so.12") != NULL);
    cudaError_t (*ptsz)(void**, size_t, cudaStream_t) = (cudaError_t(*)(void**, size_t, cudaStream_t))dlvsym(
        runtime, "cudaMallocAsync_ptsz", "libcudart.so.13");
    rc = ptsz == NULL ? -1 : (int)ptsz(&p, 16384, NULL);
    printf("dlvsym_malloc_async_ptsz %d\n", rc);
    if (rc == 0) cudaFreeAsync(p, cudaStreamPerThread);
  }

  /* A library loaded RTLD_LOCAL looks its own symbol up with RTLD_DEFAULT,
   * which glibc answers from the caller's scope: the library's dlsym and
   * dlvsym must hand such lookups on as a tail call. */
  void* scope = argc > 2 ? dlopen(argv[2], RTLD_NOW | RTLD_LOCAL) : NULL;
  printf("scope_dlopen %d\n", scope != NULL);
  if (scope != NULL) {
    int (*lookups)(void) = (int (*)(void))dlsym(scope, "probe_scope_default_lookups");
    printf("scope_default_lookups %d\n", lookups == NULL ? -1 : lookups());
  }

  /* The driver, dlopened: the real libcuda.so.1 when there is one, else the
   * toolkit's stub (every call returns CUDA_ERROR_STUB_LIBRARY). */
  driver = dlopen("libcuda.so.1", RTLD_NOW);
  printf("driver_is_stub %d\n", driver == NULL);
  if (driver == NULL && argc > 1) driver = dlopen(argv[1], RTLD_NOW);
  printf("driver_dlopen %d\n", driver != NULL);
  if (driver != NULL) {
    AllocFn alloc = (AllocFn)dlsym(driver, "cuMemAlloc_v2");
    FreeFn dfree = (FreeFn)dlsym(driver, "cuMemFree_v2");
    unsigned long long d = 0;
    rc = alloc == NULL ? -1 : alloc(&d, MIB);
    printf("driver_alloc %d\n", rc);
    if (rc == 0) printf("driver_free %d\n", dfree(d));
    printf("driver_free_foreign %d\n", dfree == NULL ? -1 : dfree(0x3000));
    GetProcFn get_proc = (GetProcFn)dlsym(driver, "cuGetProcAddress_v2");
    void* found = NULL;
    int found_status = -1;
    rc = get_proc == NULL ? -1 : get_proc("cuMemAlloc", &found, 12000, 0, &found_status);
    printf("driver_get_proc %d %d %d\n", rc, found_status, found != NULL);
    pthread_t t;
    int no_context = 0;
    pthread_create(&t, NULL, DriverAllocWithoutContext, &no_context);
    pthread_join(t, NULL);
    printf("driver_alloc_no_context %d\n", no_context);
  }

  PrintStats();
  return 0;
}
