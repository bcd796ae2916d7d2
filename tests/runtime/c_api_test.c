/* Exercises the whole C API from C, on whatever device the machine has (the
 * emulated one without a GPU). Exits 0 when every check passes; prints each
 * failed check with its line and the library's last error. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tiercache/tiercache.h"

static int failures = 0;

#define CHECK(cond)                                                              \
  do {                                                                           \
    if (!(cond)) {                                                               \
      fprintf(stderr, "%s:%d: check failed: %s (last error: %s)\n", __FILE__,     \
              __LINE__, #cond, tiercache_last_error());                          \
      ++failures;                                                                \
    }                                                                            \
  } while (0)

#define CHECK_OK(call) CHECK((call) == TIERCACHE_OK)

static void fill(unsigned char* p, size_t n, unsigned seed) {
  uint32_t x = seed * 2654435761u + 1u;
  for (size_t i = 0; i < n; ++i) {
    x = x * 1664525u + 1013904223u;
    p[i] = (unsigned char)(x >> 24);
  }
}

/* Reads `bytes` of device memory back on `stream` and compares. */
static int same_on_device(tiercache_runtime* rt, const void* device_ptr, const unsigned char* want,
                          size_t bytes, void* stream) {
  unsigned char* host = malloc(bytes);
  int same = 0;
  if (host != NULL && tiercache_copy_to_host(rt, host, device_ptr, bytes, stream) == 0 &&
      tiercache_stream_synchronize(rt, stream) == 0) {
    same = memcmp(host, want, bytes) == 0;
  }
  free(host);
  return same;
}

static void test_library_and_config(void) {
  CHECK(strcmp(tiercache_version(), "0.1.0") == 0);
  CHECK(strcmp(tiercache_status_name(TIERCACHE_ERR_NOT_FOUND), "not found") == 0);
  CHECK(strcmp(tiercache_status_name(42), "unknown status") == 0);

  tiercache_config* config = NULL;
  CHECK(tiercache_config_create(NULL) == TIERCACHE_ERR_INVALID_ARGUMENT);
  CHECK(strlen(tiercache_last_error()) > 0);
  CHECK_OK(tiercache_config_create(&config));
  CHECK(strlen(tiercache_last_error()) == 0);
  CHECK(tiercache_config_set(config, "no_such_key", "1") == TIERCACHE_ERR_NOT_FOUND);
  CHECK(tiercache_config_set(config, "chunk_bytes", "lots") == TIERCACHE_ERR_INVALID_ARGUMENT);
  CHECK(tiercache_config_set(config, NULL, "1") == TIERCACHE_ERR_INVALID_ARGUMENT);
  CHECK_OK(tiercache_config_set(config, "gpu_policy", "s3fifo"));
  CHECK(tiercache_config_load_file(config, "/nonexistent.json") == TIERCACHE_ERR_NOT_FOUND);

  char small[8];
  size_t needed = 0;
  CHECK(tiercache_config_to_json(config, small, sizeof small, &needed) ==
        TIERCACHE_ERR_OUT_OF_SPACE);
  CHECK(needed > sizeof small && small[7] == '\0');
  char* json = malloc(needed);
  CHECK_OK(tiercache_config_to_json(config, json, needed, NULL));
  CHECK(strstr(json, "\"gpu_policy\":\"s3fifo\"") != NULL);
  free(json);
  tiercache_config_destroy(config);
  tiercache_config_destroy(NULL);
}

/* Writes a safetensors file of `count` BF16 tensors named names[i], each
 * sizes[i] bytes of fill(seed i), back to back. Returns 0 on success. */
static int write_safetensors(const char* path, const char** names, const size_t* sizes,
                             size_t count) {
  char header[1024] = "{";
  size_t offset = 0;
  for (size_t i = 0; i < count; ++i) {
    char entry[256];
    snprintf(entry, sizeof entry, "%s\"%s\":{\"dtype\":\"BF16\",\"shape\":[%zu],\"data_offsets\":[%zu,%zu]}",
             i ? "," : "", names[i], sizes[i] / 2, offset, offset + sizes[i]);
    strcat(header, entry);
    offset += sizes[i];
  }
  strcat(header, "}");
  const uint64_t n = strlen(header);
  FILE* f = fopen(path, "wb");
  if (f == NULL) return -1;
  for (int i = 0; i < 8; ++i) fputc((int)((n >> (8 * i)) & 0xff), f);
  fwrite(header, 1, n, f);
  for (size_t i = 0; i < count; ++i) {
    unsigned char* data = malloc(sizes[i]);
    fill(data, sizes[i], 100 + (unsigned)i);
    fwrite(data, 1, sizes[i], f);
    free(data);
  }
  return fclose(f);
}

/* A checkpoint registered in place: the tensor table, the blocks' bytes,
 * the argument checks. */
static void test_checkpoint(tiercache_runtime* rt, void* stream, const char* dir) {
  const char* names[] = {"model.embed.weight", "model.layers.0.a.weight", "model.layers.0.b.weight",
                         "model.layers.1.a.weight"};
  const size_t sizes[] = {6000, 300000, 5002, 300000};
  char path[256];
  snprintf(path, sizeof path, "%s/model.safetensors", dir);
  CHECK(write_safetensors(path, names, sizes, 4) == 0);
  tiercache_checkpoint ckpt = 0;
  CHECK(tiercache_register_safetensors(rt, NULL, NULL, NULL, NULL, &ckpt) ==
        TIERCACHE_ERR_INVALID_ARGUMENT);
  CHECK(tiercache_register_safetensors(rt, path, NULL, NULL, NULL, NULL) ==
        TIERCACHE_ERR_INVALID_ARGUMENT);
  CHECK(tiercache_register_safetensors(rt, path, NULL, NULL, "nvme", &ckpt) ==
        TIERCACHE_ERR_INVALID_ARGUMENT);  /* not persistent */
  CHECK(tiercache_register_safetensors(rt, "/nonexistent.safetensors", NULL, NULL, NULL, &ckpt) ==
        TIERCACHE_ERR_NOT_FOUND);
  CHECK_OK(tiercache_register_safetensors(rt, dir, "model.layers.", "ck/", NULL, &ckpt));
  size_t count = 0;
  CHECK_OK(tiercache_checkpoint_tensor_count(rt, ckpt, &count));
  CHECK(count == 4);
  CHECK(tiercache_checkpoint_tensor_count(rt, ckpt + 7, &count) == TIERCACHE_ERR_NOT_FOUND);
  tiercache_block layer0 = 0;
  CHECK_OK(tiercache_find_block(rt, "ck/model.layers.0", &layer0));
  for (size_t i = 0; i < count; ++i) {
    char name[64];
    size_t needed = 0;
    CHECK_OK(tiercache_checkpoint_tensor_name(rt, ckpt, i, name, sizeof name, &needed));
    CHECK(strcmp(name, names[i]) == 0);
    tiercache_tensor_info info;
    CHECK_OK(tiercache_checkpoint_tensor(rt, ckpt, i, &info));
    CHECK(strcmp(info.dtype, "BF16") == 0 && info.ndim == 1 && info.bytes == sizes[i]);
    uint64_t dims[2] = {0, 0};
    size_t ndim = 0;
    CHECK_OK(tiercache_checkpoint_tensor_shape(rt, ckpt, i, dims, 2, &ndim));
    CHECK(ndim == 1 && dims[0] == sizes[i] / 2);
    CHECK(tiercache_checkpoint_tensor_shape(rt, ckpt, i, NULL, 0, &ndim) == TIERCACHE_ERR_OUT_OF_SPACE);
    if (i == 1 || i == 2) CHECK(info.block == layer0);
    size_t index = 99;
    CHECK_OK(tiercache_checkpoint_find_tensor(rt, ckpt, names[i], &index));
    CHECK(index == i);
    void* ptr = NULL;
    CHECK_OK(tiercache_acquire(rt, info.block, stream, &ptr));
    unsigned char* want = malloc(sizes[i]);
    fill(want, sizes[i], 100 + (unsigned)i);
    CHECK(ptr != NULL && same_on_device(rt, (const unsigned char*)ptr + info.offset, want, sizes[i], stream));
    free(want);
    CHECK_OK(tiercache_release(rt, info.block, stream));
  }
  tiercache_tensor_info info;
  CHECK(tiercache_checkpoint_tensor(rt, ckpt, count, &info) == TIERCACHE_ERR_NOT_FOUND);
  CHECK(tiercache_checkpoint_tensor(rt, ckpt, 0, NULL) == TIERCACHE_ERR_INVALID_ARGUMENT);
  size_t index = 0;
  CHECK(tiercache_checkpoint_find_tensor(rt, ckpt, "nope", &index) == TIERCACHE_ERR_NOT_FOUND);
  size_t needed = 0;
  CHECK(tiercache_checkpoint_json(rt, ckpt, NULL, 0, &needed) == TIERCACHE_ERR_OUT_OF_SPACE);
  char* json = malloc(needed);
  CHECK_OK(tiercache_checkpoint_json(rt, ckpt, json, needed, NULL));
  CHECK(strstr(json, "\"name\":\"ck/model.layers.1\"") != NULL);
  free(json);
  /* The same names again are taken; nothing is registered then. */
  tiercache_checkpoint again = 0;
  CHECK(tiercache_register_safetensors(rt, path, "model.layers.", "ck/", NULL, &again) ==
        TIERCACHE_ERR_ALREADY_EXISTS);
  void* held = NULL;
  CHECK_OK(tiercache_acquire(rt, layer0, stream, &held));
  CHECK(tiercache_checkpoint_close(rt, ckpt) == TIERCACHE_ERR_BUSY);
  CHECK_OK(tiercache_release(rt, layer0, stream));
  CHECK_OK(tiercache_drain(rt));
  CHECK_OK(tiercache_checkpoint_close(rt, ckpt));
  CHECK(tiercache_checkpoint_close(rt, ckpt) == TIERCACHE_ERR_NOT_FOUND);
  CHECK(tiercache_find_block(rt, "ck/model.layers.0", &layer0) == TIERCACHE_ERR_NOT_FOUND);
  /* A malformed header: the tensor sizes disagree with the shapes. */
  FILE* f = fopen(path, "r+b");
  if (f != NULL) {
    fseek(f, 8, SEEK_SET);
    fputs("{\"model.embed.weight\":{\"dtype\":\"F32\" ", f);  /* was BF16 */
    fclose(f);
  }
  CHECK(tiercache_register_safetensors(rt, path, NULL, NULL, NULL, &ckpt) ==
        TIERCACHE_ERR_INVALID_ARGUMENT);
  CHECK(strstr(tiercache_last_error(), "model.embed.weight") != NULL);
  remove(path);
}

int main(void) {
  test_library_and_config();

  char dir[] = "/tmp/tiercache-c-api-XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  tiercache_config* config = NULL;
  CHECK_OK(tiercache_config_create(&config));
  CHECK_OK(tiercache_config_set(config, "gpu_budget_bytes", "64MiB"));
  CHECK_OK(tiercache_config_set(config, "gpu_cache_bytes", "2MiB"));
  CHECK_OK(tiercache_config_set(config, "dram_bytes", "8MiB"));
  CHECK_OK(tiercache_config_set(config, "chunk_bytes", "256KiB"));
  CHECK_OK(tiercache_config_set(config, "nvme_path", dir));
  CHECK_OK(tiercache_config_set(config, "nvme_bytes", "32MiB"));
  CHECK_OK(tiercache_config_set(config, "nvme_direct", "false"));

  tiercache_runtime* rt = NULL;
  CHECK(tiercache_open(config, NULL) == TIERCACHE_ERR_INVALID_ARGUMENT);
  CHECK_OK(tiercache_open(config, &rt));
  tiercache_config_destroy(config);  /* the runtime keeps a copy */
  if (rt == NULL) {
    fprintf(stderr, "cannot open a runtime: %s\n", tiercache_last_error());
    return 1;
  }
  int emulated = -1;
  CHECK_OK(tiercache_is_emulated(rt, &emulated));
  CHECK(emulated == 0 || emulated == 1);

  void* stream = NULL;
  CHECK_OK(tiercache_stream_create(rt, &stream));

  /* ---- blocks: DRAM- and NVMe-homed, a file range, a group ---- */
  enum { kBytes = 700 * 1024 };
  static unsigned char a[kBytes], b[kBytes], c[kBytes];
  fill(a, kBytes, 1);
  fill(b, kBytes, 2);
  fill(c, kBytes, 3);
  tiercache_group layer = 0;
  CHECK_OK(tiercache_group_create(rt, "layer0", &layer));
  tiercache_block ba = 0, bb = 0, bc = 0, found = 0;
  CHECK_OK(tiercache_register_buffer(rt, "a", a, kBytes, "dram", layer, &ba));
  CHECK_OK(tiercache_register_buffer(rt, "b", b, kBytes, "nvme", layer, &bb));
  CHECK(tiercache_register_buffer(rt, "a", a, kBytes, "dram", TIERCACHE_NO_GROUP, &bc) ==
        TIERCACHE_ERR_ALREADY_EXISTS);
  CHECK(tiercache_register_buffer(rt, "x", a, kBytes, "tape", TIERCACHE_NO_GROUP, &bc) ==
        TIERCACHE_ERR_NOT_FOUND);
  CHECK(tiercache_register_buffer(rt, "x", NULL, kBytes, "dram", TIERCACHE_NO_GROUP, &bc) ==
        TIERCACHE_ERR_INVALID_ARGUMENT);
  char path[256];
  snprintf(path, sizeof path, "%s/weights.bin", dir);
  FILE* f = fopen(path, "wb");
  CHECK(f != NULL);
  if (f != NULL) {
    fwrite("pad!", 1, 4, f);
    fwrite(c, 1, kBytes, f);
    fclose(f);
  }
  CHECK_OK(tiercache_register_file(rt, "c", path, 4, kBytes, "nvme", TIERCACHE_NO_GROUP, &bc));
  CHECK_OK(tiercache_find_block(rt, "b", &found));
  CHECK(found == bb);
  CHECK(tiercache_find_block(rt, "zzz", &found) == TIERCACHE_ERR_NOT_FOUND);
  uint64_t size = 0;
  CHECK_OK(tiercache_block_size(rt, bc, &size));
  CHECK(size == kBytes);

  /* ---- acquire / release ---- */
  void* p = NULL;
  CHECK_OK(tiercache_acquire(rt, ba, stream, &p));
  CHECK(p != NULL && same_on_device(rt, p, a, kBytes, stream));
  CHECK_OK(tiercache_release(rt, ba, stream));
  CHECK(tiercache_release(rt, ba, stream) == TIERCACHE_ERR_INVALID_ARGUMENT);
  CHECK_OK(tiercache_acquire(rt, bb, stream, &p));
  CHECK(same_on_device(rt, p, b, kBytes, stream));
  CHECK_OK(tiercache_release(rt, bb, stream));

  /* A compressed block: bf16 values with few exponents, stored encoded, acquired decoded. */
  static unsigned char z[kBytes];
  for (size_t i = 0; i + 1 < kBytes; i += 2) {
    z[i] = (unsigned char)(i * 37);
    z[i + 1] = (unsigned char)(0x3C | ((i >> 1) & 0x80));
  }
  tiercache_block bz = 0;
  CHECK(tiercache_register_buffer_compressed(rt, "z", z, kBytes, "dram", TIERCACHE_NO_GROUP, "zstd", &bz) ==
        TIERCACHE_ERR_INVALID_ARGUMENT);
  CHECK(tiercache_register_buffer_compressed(rt, "z", z, kBytes, "nowhere", TIERCACHE_NO_GROUP, "bf16", &bz) ==
        TIERCACHE_ERR_NOT_FOUND);
  CHECK(tiercache_register_buffer_compressed(rt, "z", NULL, kBytes, "dram", TIERCACHE_NO_GROUP, "bf16", &bz) ==
        TIERCACHE_ERR_INVALID_ARGUMENT);
  CHECK_OK(tiercache_register_buffer_compressed(rt, "z", z, kBytes, "dram", TIERCACHE_NO_GROUP, "bf16", &bz));
  CHECK_OK(tiercache_block_size(rt, bz, &size));
  CHECK(size == kBytes);
  CHECK_OK(tiercache_acquire(rt, bz, stream, &p));
  CHECK(same_on_device(rt, p, z, kBytes, stream));
  CHECK_OK(tiercache_release(rt, bz, stream));
  CHECK_OK(tiercache_stream_synchronize(rt, stream));
  CHECK_OK(tiercache_unregister(rt, bz));
  /* Encoded on NVMe too: read piece by piece, decoded on acquire. */
  CHECK_OK(tiercache_register_buffer_compressed(rt, "zn", z, kBytes, "nvme", TIERCACHE_NO_GROUP, "bf16", &bz));
  CHECK_OK(tiercache_acquire(rt, bz, stream, &p));
  CHECK(same_on_device(rt, p, z, kBytes, stream));
  CHECK_OK(tiercache_release(rt, bz, stream));
  CHECK_OK(tiercache_stream_synchronize(rt, stream));
  CHECK_OK(tiercache_unregister(rt, bz));
  CHECK(tiercache_acquire(rt, 9999, stream, &p) == TIERCACHE_ERR_NOT_FOUND);
  CHECK(tiercache_acquire(NULL, ba, stream, &p) == TIERCACHE_ERR_INVALID_ARGUMENT);
  CHECK(tiercache_acquire(rt, ba, stream, NULL) == TIERCACHE_ERR_INVALID_ARGUMENT);

  /* try_acquire of a block not on the GPU: busy, then ready after a drain. */
  CHECK_OK(tiercache_evict(rt, bc));  /* not resident: nothing to do */
  CHECK(tiercache_try_acquire(rt, bc, stream, &p) == TIERCACHE_ERR_BUSY);
  CHECK_OK(tiercache_drain(rt));
  CHECK_OK(tiercache_try_acquire(rt, bc, stream, &p));
  CHECK(same_on_device(rt, p, c, kBytes, stream));
  CHECK(tiercache_evict(rt, bc) == TIERCACHE_ERR_BUSY);
  CHECK_OK(tiercache_release(rt, bc, stream));

  /* A group: the capacity is checked before anything is acquired. */
  void* ptrs[2] = {NULL, NULL};
  size_t count = 0;
  CHECK(tiercache_acquire_group(rt, layer, stream, ptrs, 1, &count) == TIERCACHE_ERR_OUT_OF_SPACE);
  CHECK(count == 2);
  CHECK_OK(tiercache_acquire_group(rt, layer, stream, ptrs, 2, &count));
  CHECK(count == 2 && same_on_device(rt, ptrs[0], a, kBytes, stream) &&
        same_on_device(rt, ptrs[1], b, kBytes, stream));
  CHECK_OK(tiercache_release_group(rt, layer, stream));

  /* Hints and prefetch. */
  tiercache_block order[3] = {ba, bb, bc};
  CHECK_OK(tiercache_hint_order(rt, order, 3));
  CHECK_OK(tiercache_hint_next_use(rt, ba, TIERCACHE_NEVER));
  CHECK_OK(tiercache_prefetch(rt, order, 3));
  CHECK(tiercache_prefetch(rt, NULL, 3) == TIERCACHE_ERR_INVALID_ARGUMENT);
  CHECK_OK(tiercache_drain(rt));

  /* ---- device memory and activations ---- */
  void* act = NULL;
  CHECK_OK(tiercache_device_alloc(rt, kBytes, stream, &act));
  CHECK_OK(tiercache_copy_to_device(rt, act, a, kBytes, stream));
  tiercache_activation h1 = 0, h2 = 0;
  CHECK_OK(tiercache_save(rt, act, kBytes, stream, 0, &h1));  /* frees `act` */
  void* keep = NULL;
  CHECK_OK(tiercache_device_alloc(rt, kBytes, stream, &keep));
  CHECK_OK(tiercache_copy_to_device(rt, keep, b, kBytes, stream));
  CHECK_OK(tiercache_save(rt, keep, kBytes, stream, TIERCACHE_SAVE_KEEP_DEVICE, &h2));
  CHECK(tiercache_save(rt, keep, kBytes, stream, 0x80, &h2) == TIERCACHE_ERR_INVALID_ARGUMENT);
  /* Once the stream has waited for the save, `keep` may be overwritten. */
  CHECK_OK(tiercache_save_wait(rt, h2, stream));
  CHECK_OK(tiercache_stream_synchronize(rt, stream));
  CHECK_OK(tiercache_copy_to_device(rt, keep, a, kBytes, stream));
  CHECK(tiercache_save_wait(rt, 987654, stream) == TIERCACHE_ERR_NOT_FOUND);
  CHECK(tiercache_save_wait(NULL, h2, stream) == TIERCACHE_ERR_INVALID_ARGUMENT);
  tiercache_activation backward[2] = {h2, h1};
  CHECK_OK(tiercache_prefetch_restore(rt, backward, 2));
  void* r1 = NULL;
  CHECK_OK(tiercache_restore(rt, h1, stream, &r1));
  CHECK(same_on_device(rt, r1, a, kBytes, stream));
  CHECK(tiercache_restore(rt, h1, stream, &r1) == TIERCACHE_ERR_NOT_FOUND);
  void* r2 = NULL;
  CHECK_OK(tiercache_restore(rt, h2, stream, &r2));
  CHECK(same_on_device(rt, r2, b, kBytes, stream)); /* saved before `keep` was overwritten */
  CHECK(tiercache_save_wait(rt, h2, stream) == TIERCACHE_ERR_NOT_FOUND); /* consumed */
  tiercache_activation h3 = 0;
  CHECK_OK(tiercache_save(rt, keep, kBytes, stream, TIERCACHE_SAVE_KEEP_DEVICE, &h3));
  CHECK_OK(tiercache_discard(rt, h3));
  CHECK_OK(tiercache_device_free(rt, r2, stream));
  CHECK_OK(tiercache_device_free(rt, r1, stream));
  /* Ranges of the runtime's memory must lie inside one live allocation: an
   * overrun, a freed block or a save that is to free an interior pointer is
   * refused before anything is enqueued. */
  char* k = (char*)keep;
  CHECK(tiercache_copy_to_device(rt, k + 1, a, kBytes, stream) == TIERCACHE_ERR_INVALID_ARGUMENT);
  CHECK(tiercache_copy_to_host(rt, a, k, kBytes + 1, stream) == TIERCACHE_ERR_INVALID_ARGUMENT);
  CHECK(strstr(tiercache_last_error(), "not inside one live allocation") != NULL);
  CHECK_OK(tiercache_copy_to_host(rt, a, k + 16, kBytes - 16, stream));
  CHECK(tiercache_save(rt, k + 256, 64, stream, 0, &h3) == TIERCACHE_ERR_INVALID_ARGUMENT);
  CHECK(strstr(tiercache_last_error(), "does not start an allocation") != NULL);
  CHECK_OK(tiercache_save(rt, k + 256, 64, stream, TIERCACHE_SAVE_KEEP_DEVICE, &h3));
  CHECK_OK(tiercache_discard(rt, h3));
  CHECK_OK(tiercache_stream_synchronize(rt, stream));
  CHECK_OK(tiercache_device_free(rt, keep, stream));
  CHECK(tiercache_copy_to_device(rt, keep, a, 16, stream) == TIERCACHE_ERR_INVALID_ARGUMENT);
  CHECK(tiercache_device_free(rt, NULL, stream) == TIERCACHE_ERR_INVALID_ARGUMENT);

  /* ---- stats ---- */
  size_t needed = 0;
  CHECK(tiercache_stats_json(rt, NULL, 0, &needed) == TIERCACHE_ERR_OUT_OF_SPACE);
  CHECK_OK(tiercache_drain(rt));  /* nothing completes in between: the size holds */
  CHECK(tiercache_stats_json(rt, NULL, 0, &needed) == TIERCACHE_ERR_OUT_OF_SPACE);
  char* stats = malloc(needed);
  CHECK_OK(tiercache_stats_json(rt, stats, needed, NULL));
  CHECK(strstr(stats, "\"name\":\"gpu\"") != NULL);
  CHECK(strstr(stats, "\"activations\"") != NULL);
  free(stats);

  test_checkpoint(rt, stream, dir);

  /* ---- teardown ---- */
  CHECK_OK(tiercache_unregister(rt, bc));
  CHECK(tiercache_find_block(rt, "c", &found) == TIERCACHE_ERR_NOT_FOUND);
  CHECK_OK(tiercache_stream_synchronize(rt, stream));
  CHECK_OK(tiercache_stream_destroy(rt, stream));
  CHECK(tiercache_stream_destroy(rt, NULL) == TIERCACHE_ERR_INVALID_ARGUMENT);
  CHECK_OK(tiercache_close(rt));
  CHECK_OK(tiercache_close(NULL));
  remove(path);
  char nvme_file[256];
  snprintf(nvme_file, sizeof nvme_file, "%s/tiercache.nvme", dir);
  remove(nvme_file);
  rmdir(dir);

  if (failures != 0) {
    fprintf(stderr, "%d check(s) failed\n", failures);
    return 1;
  }
  printf("c_api_test: all checks passed\n");
  return 0;
}
