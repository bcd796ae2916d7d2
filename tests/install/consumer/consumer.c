/* Opens a runtime through the installed C API, moves one block through
 * acquire/release and checks its bytes: proof that the installed header and
 * library are whole. */
#include <stdio.h>
#include <string.h>

#include <tiercache/tiercache.h>

#define CHECK(call)                                                          \
  do {                                                                       \
    int s_ = (call);                                                         \
    if (s_ != TIERCACHE_OK) {                                                \
      fprintf(stderr, "%s: %s (%s)\n", #call, tiercache_status_name(s_),    \
              tiercache_last_error());                                       \
      return 1;                                                              \
    }                                                                        \
  } while (0)

int main(void) {
  tiercache_config* config = NULL;
  tiercache_runtime* rt = NULL;
  tiercache_block block = 0;
  unsigned char data[4096], back[4096];
  void* stream = NULL;
  void* ptr = NULL;
  memset(data, 0x5a, sizeof data);
  CHECK(tiercache_config_create(&config));
  CHECK(tiercache_config_set(config, "dram_bytes", "16MiB"));
  CHECK(tiercache_config_set(config, "gpu_budget_bytes", "64MiB"));
  CHECK(tiercache_config_set(config, "chunk_bytes", "64KiB"));
  CHECK(tiercache_open(config, &rt));
  tiercache_config_destroy(config);
  CHECK(tiercache_register_buffer(rt, "w", data, sizeof data, "dram", TIERCACHE_NO_GROUP, &block));
  CHECK(tiercache_stream_create(rt, &stream));
  CHECK(tiercache_acquire(rt, block, stream, &ptr));
  CHECK(tiercache_copy_to_host(rt, back, ptr, sizeof back, stream));
  CHECK(tiercache_stream_synchronize(rt, stream));
  CHECK(tiercache_release(rt, block, stream));
  CHECK(tiercache_stream_destroy(rt, stream));
  CHECK(tiercache_close(rt));
  if (memcmp(data, back, sizeof data) != 0) {
    fprintf(stderr, "consumer: bytes differ\n");
    return 1;
  }
  printf("consumer: tiercache %s from the installed package works\n", tiercache_version());
  return 0;
}
