// Fuzz target: the C API as an engine (or a broken one) would drive it. Each
// input opens a runtime on the emulated device (DRAM and NVMe tiers), runs
// up to 96 calls chosen by the input with arguments chosen by the input:
// live handles and pointers, stale ones (unregistered blocks, freed device
// memory, destroyed streams), made-up ones, NULL, odd sizes; then closes it
// with whatever is still acquired. Every call must return a status code
// (never crash, hang or leak), a failing call must say why, and an acquired
// block must hold exactly the bytes it was registered with.
//
// Host buffers passed in are the target's own and never shorter than the
// size passed with them: the API cannot check a host pointer beyond NULL,
// and the contract asks that of callers. Device pointers and streams are
// fair game, with one limit: a pointer to an acquired block is only read
// from (freeing or overwriting the runtime's own memory is outside the
// contract, and the runtime does not tell it from the engine's).
#include <stdlib.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "tests/fuzz/byte_reader.h"
#include "tiercache/tiercache.h"

namespace {

constexpr size_t kHostBytes = 256 * 1024;

struct Harness {
  std::string dir;
  std::string file;  // a file to register from
  std::vector<unsigned char> source = std::vector<unsigned char>(kHostBytes);
  std::vector<unsigned char> sink = std::vector<unsigned char>(kHostBytes);  // copy_to_host calls
  // The acquire check reads into its own buffer: a copy_to_host the input
  // left in flight on another stream may still be writing `sink`.
  std::vector<unsigned char> check = std::vector<unsigned char>(kHostBytes);
};

Harness& Global() {
  static Harness* h = [] {
    setenv("TIERCACHE_DEVICE", "emulated", 1);
    setenv("TIERCACHE_LOG", "error", 0);
    auto* h = new Harness;
    const char* tmp = std::getenv("TMPDIR");
    h->dir = std::string(tmp != nullptr && *tmp ? tmp : "/tmp") + "/tcfuzz-api-XXXXXX";
    if (mkdtemp(h->dir.data()) == nullptr) std::abort();
    std::atexit([] { std::filesystem::remove_all(Global().dir); });
    for (size_t i = 0; i < kHostBytes; ++i) h->source[i] = static_cast<unsigned char>(i * 31 + 7);
    h->file = h->dir + "/weights.bin";
    FILE* f = std::fopen(h->file.c_str(), "wb");
    if (f == nullptr || std::fwrite(h->source.data(), 1, kHostBytes, f) != kHostBytes) std::abort();
    std::fclose(f);
    return h;
  }();
  return *h;
}

// Values an engine holds: live ones, stale ones and made-up ones mixed.
template <typename T>
T Pick(tiercache::fuzz::ByteReader& in, const std::vector<T>& seen, T made_up) {
  if (seen.empty() || in.ConsumeIntegralInRange<int>(0, 4) == 0) return made_up;
  return seen[in.ConsumeIntegralInRange<size_t>(0, seen.size() - 1)];
}

// TIERCACHE_FUZZ_TRACE=1 prints each call and its status (to replay a crash).
bool Tracing() {
  static const bool on = std::getenv("TIERCACHE_FUZZ_TRACE") != nullptr;
  return on;
}

void Check(int status) {
  if (Tracing()) std::fprintf(stderr, "  -> %d %s\n", status, status == 0 ? "" : tiercache_last_error());
  if (status > 0 || status < TIERCACHE_ERR_INTERNAL) std::abort();  // not a status code
  if (status == TIERCACHE_ERR_INTERNAL) std::abort();                // a bug, by definition
  if (status != TIERCACHE_OK && tiercache_last_error()[0] == '\0') std::abort();
  if (tiercache_status_name(status) == nullptr) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Harness& h = Global();
  tiercache::fuzz::ByteReader in(data, size);
  tiercache_config* config = nullptr;
  Check(tiercache_config_create(&config));
  const char* settings[][2] = {{"gpu_budget_bytes", "8MiB"}, {"gpu_cache_bytes", "2MiB"},
                               {"dram_bytes", "2MiB"}, {"chunk_bytes", "64KiB"},
                               {"staging_buffers", "2"}, {"nvme_bytes", "4MiB"},
                               {"acquire_wait_ms", "20"}, {"nvme_direct", "false"}};
  for (auto& kv : settings) Check(tiercache_config_set(config, kv[0], kv[1]));
  Check(tiercache_config_set(config, "nvme_path", h.dir.c_str()));
  tiercache_runtime* rt = nullptr;
  int opened = tiercache_open(config, &rt);
  tiercache_config_destroy(config);
  Check(opened);
  if (opened != TIERCACHE_OK) return 0;

  std::vector<tiercache_block> blocks;
  std::vector<uint64_t> block_bytes;  // parallel to blocks: what each holds
  std::vector<tiercache_group> groups;
  std::vector<tiercache_activation> activations;
  // Device memory the engine owns (from device_alloc and restore; stale once
  // freed) and pointers to acquired blocks (the runtime's: only read).
  std::vector<void*> owned, block_ptrs, streams = {nullptr};
  const char* tiers[] = {"dram", "nvme", "pmem", "", "gpu"};
  for (int step = 0; step < 96 && in.remaining_bytes() > 0; ++step) {
    tiercache_runtime* r = in.ConsumeIntegralInRange<int>(0, 15) == 0 ? nullptr : rt;
    void* stream = Pick<void*>(in, streams, reinterpret_cast<void*>(in.ConsumeIntegral<uintptr_t>()));
    const tiercache_block block = Pick<tiercache_block>(in, blocks, in.ConsumeIntegral<uint64_t>());
    const uint64_t bytes = in.ConsumeIntegralInRange<uint64_t>(0, kHostBytes);
    void* dptr = Pick<void*>(in, owned, reinterpret_cast<void*>(in.ConsumeIntegral<uintptr_t>()));
    if (!owned.empty() && in.ConsumeBool()) {
      dptr = reinterpret_cast<void*>(reinterpret_cast<uintptr_t>(dptr) + 1);  // inside, not at the start
    }
    void* out_ptr = nullptr;
    uint64_t out_u64 = 0;
    const int op = in.ConsumeIntegralInRange<int>(0, 27);
    if (Tracing()) {
      std::fprintf(stderr, "step %d op %d rt %s block %llu bytes %llu dptr %p stream %p\n", step, op,
                   r == nullptr ? "null" : "live", static_cast<unsigned long long>(block),
                   static_cast<unsigned long long>(bytes), dptr, stream);
    }
    switch (op) {
      case 0: case 1: {
        tiercache_block id = 0;
        const std::string name = in.ConsumeBool() ? "" : in.ConsumeRandomLengthString(12);
        const char* home = tiers[in.ConsumeIntegralInRange<int>(0, 4)];
        const tiercache_group group = Pick<tiercache_group>(in, groups, TIERCACHE_NO_GROUP);
        int s = tiercache_register_buffer(r, name.c_str(), in.ConsumeBool() ? h.source.data() : nullptr,
                                          bytes, home, group, &id);
        if (Tracing()) std::fprintf(stderr, "  register '%s' home '%s'\n", name.c_str(), home);
        Check(s);
        if (s == TIERCACHE_OK) blocks.push_back(id), block_bytes.push_back(bytes);
        break;
      }
      case 2: {
        tiercache_block id = 0;
        const uint64_t offset = in.ConsumeIntegralInRange<uint64_t>(0, kHostBytes + 10);
        const std::string path = in.ConsumeBool() ? h.file : h.dir + "/missing";
        Check(tiercache_register_file(r, nullptr, path.c_str(), offset, bytes, "nvme",
                                      TIERCACHE_NO_GROUP, &id));
        break;  // its bytes start at `offset`: not checked on acquire
      }
      case 3: Check(tiercache_unregister(r, block)); break;
      case 4: case 5: case 6: {
        int s = in.ConsumeBool() ? tiercache_acquire(r, block, stream, &out_ptr)
                                 : tiercache_try_acquire(r, block, stream, &out_ptr);
        Check(s);
        if (s != TIERCACHE_OK) break;
        block_ptrs.push_back(out_ptr);
        if (Tracing()) std::fprintf(stderr, "  acquired at %p\n", out_ptr);
        for (size_t i = 0; i < blocks.size(); ++i) {
          if (blocks[i] != block) continue;
          const uint64_t n = block_bytes[i];
          if (tiercache_copy_to_host(rt, h.check.data(), out_ptr, n, stream) == TIERCACHE_OK &&
              tiercache_stream_synchronize(rt, stream) == TIERCACHE_OK &&
              std::memcmp(h.check.data(), h.source.data(), n) != 0) {
            if (Tracing()) {
              uint64_t first = 0, wrong = 0;
              for (uint64_t k = n; k-- > 0;) {
                if (h.check[k] != h.source[k]) first = k, ++wrong;
              }
              std::fprintf(stderr, "mismatch at %p: %llu of %llu bytes differ from offset %llu\n", out_ptr,
                           (unsigned long long)wrong, (unsigned long long)n, (unsigned long long)first);
            }
            std::abort();  // an acquired block does not hold its bytes
          }
        }
        break;
      }
      case 7: case 8: Check(tiercache_release(r, block, stream)); break;
      case 9: {
        std::vector<tiercache_block> list(in.ConsumeIntegralInRange<size_t>(0, 6));
        for (auto& b : list) b = Pick<tiercache_block>(in, blocks, in.ConsumeIntegral<uint64_t>());
        Check(in.ConsumeBool() ? tiercache_prefetch(r, list.data(), list.size())
                               : tiercache_hint_order(r, list.empty() ? nullptr : list.data(), list.size()));
        break;
      }
      case 10: Check(tiercache_evict(r, block)); break;
      case 11: Check(tiercache_hint_next_use(r, block, in.ConsumeIntegral<uint64_t>())); break;
      case 12: {
        tiercache_group g = 0;
        int s = tiercache_group_create(r, in.ConsumeRandomLengthString(8).c_str(), &g);
        Check(s);
        if (s == TIERCACHE_OK) groups.push_back(g);
        break;
      }
      case 13: {
        void* ptrs[8];
        size_t count = 0;
        const tiercache_group g = Pick<tiercache_group>(in, groups, in.ConsumeIntegral<uint64_t>());
        if (in.ConsumeBool()) {
          Check(tiercache_acquire_group(r, g, stream, ptrs, in.ConsumeIntegralInRange<size_t>(0, 8), &count));
        } else {
          Check(tiercache_release_group(r, g, stream));
        }
        break;
      }
      case 14: {
        int s = tiercache_device_alloc(r, in.ConsumeIntegralInRange<uint64_t>(0, 4 << 20), stream, &out_ptr);
        Check(s);
        if (s == TIERCACHE_OK) owned.push_back(out_ptr);
        if (Tracing() && s == TIERCACHE_OK) std::fprintf(stderr, "  allocated %p\n", out_ptr);
        break;
      }
      case 15: Check(tiercache_device_free(r, dptr, stream)); break;
      case 16: {
        tiercache_activation a = 0;
        int s = tiercache_save(r, dptr, bytes, stream, in.ConsumeIntegralInRange<unsigned>(0, 3), &a);
        Check(s);
        if (s == TIERCACHE_OK) activations.push_back(a);
        break;
      }
      case 17: {
        const tiercache_activation a = Pick<tiercache_activation>(in, activations, in.ConsumeIntegral<uint64_t>());
        int s = in.ConsumeBool() ? tiercache_restore(r, a, stream, &out_ptr) : tiercache_discard(r, a);
        Check(s);
        if (s == TIERCACHE_OK && out_ptr != nullptr) owned.push_back(out_ptr);
        if (Tracing() && s == TIERCACHE_OK) std::fprintf(stderr, "  restored at %p\n", out_ptr);
        break;
      }
      case 18: {
        const tiercache_activation a = Pick<tiercache_activation>(in, activations, in.ConsumeIntegral<uint64_t>());
        Check(tiercache_prefetch_restore(r, &a, in.ConsumeIntegralInRange<size_t>(0, 1)));
        break;
      }
      case 19: {
        void* s_new = nullptr;
        int s = tiercache_stream_create(r, &s_new);
        Check(s);
        if (s == TIERCACHE_OK) streams.push_back(s_new);
        break;
      }
      case 20: Check(tiercache_stream_destroy(r, stream)); break;  // the handle stays: stale
      case 21: Check(tiercache_stream_synchronize(r, stream)); break;
      case 22: {
        void* src = in.ConsumeBool() ? dptr : Pick<void*>(in, block_ptrs, dptr);
        Check(tiercache_copy_to_host(r, h.sink.data(), src, bytes, stream));
        break;
      }
      case 23: Check(tiercache_copy_to_device(r, dptr, h.source.data(), bytes, stream)); break;
      case 24: {
        size_t needed = 0;
        std::vector<char> buffer(in.ConsumeIntegralInRange<size_t>(0, 1 << 16));
        Check(tiercache_stats_json(r, buffer.empty() ? nullptr : buffer.data(), buffer.size(),
                                   in.ConsumeBool() ? &needed : nullptr));
        break;
      }
      case 25: Check(tiercache_block_size(r, block, in.ConsumeBool() ? &out_u64 : nullptr)); break;
      case 26: {
        tiercache_block found = 0;
        Check(tiercache_find_block(r, in.ConsumeRandomLengthString(12).c_str(), &found));
        break;
      }
      default: Check(tiercache_drain(r)); break;
    }
  }
  // Streams the input destroyed are stale; the rest are the runtime's to
  // destroy at close, as an engine that forgets them would leave them.
  Check(tiercache_close(rt));
  return 0;
}
