// codec_bench: the bf16 block codec, measured against the link it beats.
//
// 1. ratio     the encoded size on several value distributions (trained-
//              weight-like normals, a per-row-scaled mix, uniform, Laplace,
//              Student-t, random bits, zeros), with CPU encode and decode
//              rates. Honest figures: only exponent-skewed data shrinks.
// 2. kernel    the decode kernel on one block already in device memory:
//              decoded bytes per second (target >= 1 TB/s), against a
//              device-to-device copy of the same bytes in the same run;
//              the decoded block is compared with its source.
// 3. streaming TIERCACHE_BENCH_BLOCKS blocks of TIERCACHE_BENCH_BLOCK_BYTES
//              (default 16 x 350 MiB on a GPU, 4 x 8 MiB emulated) of
//              normal(0, 0.02) bf16 in pinned host memory, delivered to the
//              GPU plainly (the pinned copy peak, 64 MiB copies on one
//              stream) and encoded through EncodedUploader (runs of chunks
//              through a device staging ring, decoded on the GPU): effective
//              bandwidth in decoded bytes per second against the peak
//              (target >= 1.3), every block compared with its source.
// 4. runtime   the same stack registered in a Runtime's pinned DRAM tier
//              with compression=off and then compression=bf16, each streamed
//              through acquire -> touch (a device-to-device copy of the
//              block) -> release with room for 3 blocks on the GPU and the
//              next block prefetched: step time of each, their ratio, and
//              the compressed run's bytes compared with the source.
// 5. nvme      TIERCACHE_BENCH_NVME_BLOCKS (default 8 on a GPU, 4 emulated)
//              blocks homed on a Runtime's NVMe tier (O_DIRECT through
//              io_uring) in TIERCACHE_BENCH_NVME_DIR (default /var/tmp),
//              streamed with room for 3 on the GPU, LRU and the next block
//              prefetched, so every block is read from the disk once a pass:
//              compression=off, then bf16 (read piece by piece into the
//              staging ring, decoded on the GPU). Read rate in decoded bytes
//              per second of each against two peers from the same run: the
//              disk's sequential O_DIRECT read rate (16 MiB reads, one
//              stream) on a file of the same size, and the off run (the
//              tier's own O_DIRECT reads, io_uring at its queue depth). The
//              target (bf16 >= 1.3 x) is against the faster of the two.
//              Every block is compared with its source on the first pass.
//
// Run: build/bench/codec_bench (TIERCACHE_DEVICE=cuda on the GPU machine).
// Knobs (environment): TIERCACHE_BENCH_BLOCKS, TIERCACHE_BENCH_BLOCK_BYTES,
// TIERCACHE_BENCH_SAMPLE_BYTES (ratio table, default 64 MiB),
// TIERCACHE_CODEC_SLOT_BYTES / TIERCACHE_CODEC_SLOTS (the ring, default
// 32 MiB x 3), TIERCACHE_BENCH_STEPS (passes, best taken; default 3),
// TIERCACHE_BENCH_NVME_DIR, TIERCACHE_BENCH_NVME_BLOCKS,
// TIERCACHE_BENCH_SECTIONS (a comma list of ratio,kernel,streaming,runtime,
// nvme; default all).
// Exit status 1 when any decoded byte differs from its source.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "alloc/device.h"
#include "codec/bf16_decoder.h"
#include "codec/bf16_encoder.h"
#include "codec/bf16_format.h"
#include "common/units.h"
#include "runtime/encoded_upload.h"
#include "runtime/runtime.h"

namespace tiercache {
namespace {

using Clock = std::chrono::steady_clock;

uint64_t EnvBytes(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr) return fallback;
  Result<uint64_t> parsed = ParseBytes(v);
  return parsed.ok() && *parsed > 0 ? *parsed : fallback;
}

double Since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

uint16_t ToBf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((bits >> 16) | 0x40);
  return static_cast<uint16_t>((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
}

// values[i] = draw(rng, i) for every i, on all cores (one generator per slice).
void Fill(std::vector<uint16_t>& values, uint64_t seed,
          const std::function<float(std::mt19937_64&, size_t)>& draw) {
  const unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  const size_t per = (values.size() + threads - 1) / threads;
  std::vector<std::thread> workers;
  for (unsigned t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      std::mt19937_64 rng(seed * 1000003 + t);
      for (size_t i = t * per; i < std::min(values.size(), (t + 1) * per); ++i) values[i] = ToBf16(draw(rng, i));
    });
  }
  for (std::thread& w : workers) w.join();
}

std::vector<uint16_t> Normal(size_t n, float sigma, uint64_t seed) {
  std::vector<uint16_t> v(n);
  Fill(v, seed, [sigma](std::mt19937_64& rng, size_t) {
    std::normal_distribution<float> d(0.0f, sigma);
    return d(rng);
  });
  return v;
}

struct Distribution {
  const char* name;
  std::function<float(std::mt19937_64&, size_t)> draw;
};

std::vector<Distribution> Distributions() {
  return {
      {"normal(0,0.02)", [](std::mt19937_64& r, size_t) { return std::normal_distribution<float>(0, 0.02f)(r); }},
      {"normal(0,0.006)", [](std::mt19937_64& r, size_t) { return std::normal_distribution<float>(0, 0.006f)(r); }},
      {"normal(0,1)", [](std::mt19937_64& r, size_t) { return std::normal_distribution<float>(0, 1.0f)(r); }},
      {"rows: normal, per-4096-row sigma log-uniform 0.002..0.2",
       [](std::mt19937_64& r, size_t i) {
         uint64_t h = (i / 4096 + 1) * 0x9E3779B97F4A7C15ull;  // splitmix64 of the row index
         h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9ull;
         h = (h ^ (h >> 27)) * 0x94D049BB133111EBull;
         h ^= h >> 31;
         const float sigma = 0.002f * std::pow(100.0f, static_cast<float>(h >> 11) * 0x1p-53f);
         return std::normal_distribution<float>(0, sigma)(r);
       }},
      {"uniform(-0.05,0.05)", [](std::mt19937_64& r, size_t) { return std::uniform_real_distribution<float>(-0.05f, 0.05f)(r); }},
      {"laplace(0.02)",
       [](std::mt19937_64& r, size_t) {
         const float u = std::uniform_real_distribution<float>(-0.5f, 0.5f)(r);
         return -0.02f * std::copysign(std::log1p(-2 * std::fabs(u)), u);
       }},
      {"student-t(3)*0.02", [](std::mt19937_64& r, size_t) { return 0.02f * std::student_t_distribution<float>(3)(r); }},
      {"random bits",
       [](std::mt19937_64& r, size_t) {
         uint32_t bits = static_cast<uint32_t>(r()) << 16;
         float f;
         std::memcpy(&f, &bits, 4);
         return f;
       }},
      {"zeros", [](std::mt19937_64&, size_t) { return 0.0f; }},
  };
}

void RatioTable(uint64_t sample_bytes) {
  std::printf("== ratio: %llu MiB per distribution (encoded / raw; CPU rates are one block, encode multi-threaded)\n",
              static_cast<unsigned long long>(sample_bytes >> 20));
  for (const Distribution& d : Distributions()) {
    std::vector<uint16_t> values(sample_bytes / 2);
    Fill(values, 17, d.draw);
    const auto start = Clock::now();
    Result<std::vector<uint8_t>> encoded = codec::EncodeBf16(values.data(), sample_bytes);
    const double encode_s = Since(start);
    if (!encoded.ok()) {
      std::printf("%-56s encode failed: %s\n", d.name, encoded.status().ToString().c_str());
      continue;
    }
    const codec::Bf16Layout layout = *codec::ParseBf16(encoded->data(), encoded->size());
    std::vector<uint16_t> back(values.size());
    const auto decode_start = Clock::now();
    Status decoded = codec::DecodeBf16(encoded->data(), encoded->size(), back.data(), sample_bytes);
    const double decode_s = Since(decode_start);
    const bool exact = decoded.ok() && back == values;
    std::printf("%-56s ratio %.4f  code bits %u  escapes/value %.5f  cpu encode %.2f GB/s  decode %.2f GB/s  %s\n",
                d.name, static_cast<double>(encoded->size()) / sample_bytes, layout.header.code_bits,
                static_cast<double>(layout.header.escape_count) / values.size(), sample_bytes / encode_s / 1e9,
                sample_bytes / decode_s / 1e9, exact ? "bit-exact" : "MISMATCH");
  }
}

// Device memory that frees itself.
struct DeviceBuffer {
  Device* device = nullptr;
  void* pointer = nullptr;
  DeviceBuffer(Device& d, uint64_t bytes) : device(&d) {
    Result<void*> p = d.AllocateMemory(bytes);
    if (p.ok()) pointer = *p;
    else std::fprintf(stderr, "codec_bench: device allocation of %llu bytes: %s\n",
                      static_cast<unsigned long long>(bytes), p.status().ToString().c_str());
  }
  ~DeviceBuffer() {
    if (pointer != nullptr) (void)device->FreeMemory(pointer);
  }
  unsigned char* bytes() const { return static_cast<unsigned char*>(pointer); }
};

bool SameOnDevice(Device& d, Stream s, const void* device, const void* host, uint64_t bytes) {
  std::vector<unsigned char> back(bytes);
  if (!d.CopyAsync(back.data(), device, bytes, CopyKind::kDeviceToHost, s).ok()) return false;
  if (!d.StreamSynchronize(s).ok()) return false;
  return std::memcmp(back.data(), host, bytes) == 0;
}

bool KernelThroughput(Device& d, uint64_t block_bytes, int steps) {
  std::printf("== kernel: one %llu MiB normal(0,0.02) block in device memory\n",
              static_cast<unsigned long long>(block_bytes >> 20));
  const std::vector<uint16_t> values = Normal(block_bytes / 2, 0.02f, 1);
  Result<std::vector<uint8_t>> encoded = codec::EncodeBf16(values.data(), block_bytes);
  if (!encoded.ok()) return false;
  const codec::Bf16Layout layout = *codec::ParseBf16(encoded->data(), encoded->size());
  Stream s = d.CreateStream().value();
  DeviceBuffer source(d, encoded->size()), output(d, block_bytes), copy(d, block_bytes);
  if (source.pointer == nullptr || output.pointer == nullptr || copy.pointer == nullptr) return false;
  (void)d.CopyAsync(source.pointer, encoded->data(), encoded->size(), CopyKind::kHostToDevice, s);
  codec::Bf16DecodeJob job = codec::MakeBf16DecodeJob(layout, 0, layout.chunk_count(),
                                                      source.bytes() + layout.directory_offset,
                                                      source.bytes() + layout.records_offset,
                                                      layout.header.records_bytes, output.pointer, block_bytes)
                                 .value();
  (void)d.DecodeAsync(job, s);  // warm-up
  (void)d.StreamSynchronize(s);
  constexpr int kLaunches = 20;
  double decode_best = 0, copy_best = 0;
  for (int step = 0; step < steps; ++step) {
    auto start = Clock::now();
    for (int i = 0; i < kLaunches; ++i) (void)d.DecodeAsync(job, s);
    (void)d.StreamSynchronize(s);
    decode_best = std::max(decode_best, kLaunches * block_bytes / Since(start));
    start = Clock::now();
    for (int i = 0; i < kLaunches; ++i) {
      (void)d.CopyAsync(copy.pointer, output.pointer, block_bytes, CopyKind::kDeviceToDevice, s);
    }
    (void)d.StreamSynchronize(s);
    copy_best = std::max(copy_best, kLaunches * block_bytes / Since(start));
  }
  const bool exact = SameOnDevice(d, s, output.pointer, values.data(), block_bytes);
  std::printf("kernel: decode %.0f GB/s of decoded bytes (reads %.0f GB/s encoded), device-to-device copy %.0f GB/s "
              "of bytes copied, decode/copy %.2f; target decode >= 1000 GB/s: %s; %s\n",
              decode_best / 1e9, decode_best * encoded->size() / block_bytes / 1e9, copy_best / 1e9,
              decode_best / copy_best, decode_best >= 1e12 ? "met" : "NOT met", exact ? "bit-exact" : "MISMATCH");
  (void)d.DestroyStream(s);
  return exact;
}

bool Streaming(std::shared_ptr<Device> device, uint64_t block_bytes, uint64_t count, int steps) {
  Device& d = *device;
  std::printf("== streaming: %llu blocks x %llu MiB of normal(0,0.02) bf16, pinned host -> GPU\n",
              static_cast<unsigned long long>(count), static_cast<unsigned long long>(block_bytes >> 20));
  std::vector<std::vector<uint16_t>> raw;
  std::vector<std::vector<uint8_t>> encoded;
  uint64_t encoded_total = 0;
  for (uint64_t i = 0; i < count; ++i) {
    raw.push_back(Normal(block_bytes / 2, 0.02f, 100 + i));
    encoded.push_back(codec::EncodeBf16(raw.back().data(), block_bytes).value());
    encoded_total += encoded.back().size();
    (void)d.RegisterHost(raw.back().data(), block_bytes);
    (void)d.RegisterHost(encoded.back().data(), encoded.back().size());
  }
  EncodedUploadOptions options;
  options.slot_bytes = EnvBytes("TIERCACHE_CODEC_SLOT_BYTES", options.slot_bytes);
  options.slots = static_cast<int>(EnvBytes("TIERCACHE_CODEC_SLOTS", options.slots));
  Result<std::unique_ptr<EncodedUploader>> made = EncodedUploader::Create(device, options);
  if (!made.ok()) {
    std::printf("streaming: %s\n", made.status().ToString().c_str());
    return false;
  }
  EncodedUploader& uploader = **made;
  std::vector<std::unique_ptr<DeviceBuffer>> outputs;
  for (uint64_t i = 0; i < count; ++i) {
    outputs.push_back(std::make_unique<DeviceBuffer>(d, block_bytes));
    if (outputs.back()->pointer == nullptr) return false;
  }
  Stream s = d.CreateStream().value();
  Event done = d.CreateEvent().value();
  const double total = static_cast<double>(block_bytes) * count;

  for (auto& out : outputs) (void)d.MemsetAsync(out->pointer, 0, block_bytes, s);
  (void)d.StreamSynchronize(s);
  double compressed_best = 0;
  for (int step = 0; step < steps; ++step) {
    const auto start = Clock::now();
    for (uint64_t i = 0; i < count; ++i) {
      Status up = uploader.Upload(encoded[i].data(), encoded[i].size(), outputs[i]->pointer, block_bytes, nullptr, done);
      if (!up.ok()) {
        std::printf("streaming: upload: %s\n", up.ToString().c_str());
        return false;
      }
    }
    (void)d.EventSynchronize(done);
    compressed_best = std::max(compressed_best, total / Since(start));
  }
  bool exact = true;
  for (uint64_t i = 0; i < count; ++i) exact = exact && SameOnDevice(d, s, outputs[i]->pointer, raw[i].data(), block_bytes);

  const uint64_t chunk = 64 * kMiB;
  double peak = 0;
  for (int step = 0; step < steps; ++step) {
    const auto start = Clock::now();
    for (uint64_t i = 0; i < count; ++i) {
      for (uint64_t off = 0; off < block_bytes; off += chunk) {
        (void)d.CopyAsync(outputs[i]->bytes() + off, reinterpret_cast<const unsigned char*>(raw[i].data()) + off,
                          std::min(chunk, block_bytes - off), CopyKind::kHostToDevice, s);
      }
    }
    (void)d.StreamSynchronize(s);
    peak = std::max(peak, total / Since(start));
  }
  const double ratio = static_cast<double>(encoded_total) / total;
  std::printf("streaming: pinned copy peak %.1f GB/s; compressed (ratio %.4f, ring %d x %llu MiB) effective %.1f GB/s "
              "of decoded bytes; compressed/peak %.3f (target >= 1.30: %s); link-bound ideal 1/ratio = %.3f; %s\n",
              peak / 1e9, ratio, options.slots, static_cast<unsigned long long>(options.slot_bytes >> 20),
              compressed_best / 1e9, compressed_best / peak, compressed_best / peak >= 1.3 ? "met" : "NOT met",
              1 / ratio, exact ? "all blocks bit-exact" : "MISMATCH");
  const EncodedUploadStats st = uploader.stats();
  std::printf("streaming: uploader moved %.2f GB encoded for %.2f GB decoded in %llu runs\n", st.encoded_bytes / 1e9,
              st.decoded_bytes / 1e9, static_cast<unsigned long long>(st.runs));
  (void)d.DestroyEvent(done);
  (void)d.DestroyStream(s);
  made->reset();
  outputs.clear();
  for (uint64_t i = 0; i < count; ++i) {
    (void)d.UnregisterHost(raw[i].data());
    (void)d.UnregisterHost(encoded[i].data());
  }
  return exact;
}

struct StreamRun {
  double step_s = 0;        // best pass
  uint64_t read_bytes = 0;  // from the home tier in that pass
  uint64_t misses = 0;      // blocks read from the home in that pass
  bool exact = false;
  CodecStats codec;
};

// A Runtime made from `config`, `raw` registered on its tier `home`, then
// streamed `steps` passes (after a first that checks every block's bytes):
// per block, the next one prefetched, acquire, (with `touch`) a
// device-to-device copy of the block, release. The best pass is kept, with
// what the home tier served in it.
StreamRun StreamThroughRuntime(const std::vector<std::vector<uint16_t>>& raw, uint64_t block_bytes,
                               const RuntimeConfig& config, const char* home, const char* label,
                               bool touch, int steps) {
  StreamRun run;
  const char* compression = config.compression.c_str();
  Result<std::unique_ptr<Runtime>> made = Runtime::Create(config);
  if (!made.ok()) {
    std::printf("%s (%s): %s\n", label, compression, made.status().ToString().c_str());
    return run;
  }
  Runtime& rt = **made;
  BlockCache& cache = rt.cache();
  Tier* tier = rt.tier(home);
  if (tier == nullptr) {
    std::printf("%s (%s): the runtime has no %s tier\n", label, compression, home);
    return run;
  }
  std::vector<BlockId> ids;
  for (size_t i = 0; i < raw.size(); ++i) {
    Result<BlockId> id = cache.RegisterFromBuffer("layer" + std::to_string(i), raw[i].data(), block_bytes, tier);
    if (!id.ok()) {
      std::printf("%s (%s): register: %s\n", label, compression, id.status().ToString().c_str());
      return run;
    }
    ids.push_back(*id);
  }
  const int slot = cache.StatsSlotOf(tier);
  Device& d = rt.device();
  Stream compute = d.CreateStream().value();
  void* scratch = touch ? rt.allocator().Allocate(block_bytes, compute).value() : nullptr;
  run.exact = true;
  run.step_s = 1e30;
  for (int step = 0; step <= steps && run.exact; ++step) {  // step 0 warms up and checks the bytes
    const TierTraffic before = cache.stats().Snapshot(slot);
    const auto start = Clock::now();
    for (size_t i = 0; i < ids.size(); ++i) {
      (void)cache.Prefetch({ids[(i + 1) % ids.size()]});
      Result<void*> ptr = cache.Acquire(ids[i], compute);
      if (!ptr.ok()) {
        std::printf("%s (%s): acquire: %s\n", label, compression, ptr.status().ToString().c_str());
        run.exact = false;
        break;
      }
      if (step == 0) run.exact = run.exact && SameOnDevice(d, compute, *ptr, raw[i].data(), block_bytes);
      if (touch) (void)d.CopyAsync(scratch, *ptr, block_bytes, CopyKind::kDeviceToDevice, compute);
      (void)cache.Release(ids[i], compute);
    }
    (void)d.StreamSynchronize(compute);
    const double seconds = Since(start);
    (void)cache.Drain();
    const TierTraffic after = cache.stats().Snapshot(slot);
    if (std::getenv("TIERCACHE_BENCH_VERBOSE") != nullptr) {
      std::printf("  %s %s pass %d: %.1f ms, %llu blocks from %s\n", label, compression, step, seconds * 1e3,
                  static_cast<unsigned long long>(after.hits - before.hits), home);
    }
    if (step > 0 && seconds < run.step_s) {
      run.step_s = seconds;
      run.read_bytes = after.bytes_out - before.bytes_out;
      run.misses = after.hits - before.hits;
    }
  }
  run.codec = cache.codec_stats();
  if (scratch != nullptr) (void)rt.allocator().Free(scratch, compute);
  (void)d.StreamSynchronize(compute);
  (void)d.DestroyStream(compute);
  return run;
}

// The DRAM-homed stack with `compression`.
StreamRun RuntimeStreaming(const std::vector<std::vector<uint16_t>>& raw, uint64_t block_bytes,
                           const char* compression, int steps) {
  RuntimeConfig config;
  config.compression = compression;
  config.chunk_bytes = 64 * kMiB;
  config.staging_buffers = 2;
  config.dram_bytes = raw.size() * AlignUp(block_bytes, 4096) + 256 * kMiB;
  config.gpu_cache_bytes = 3 * block_bytes;
  return StreamThroughRuntime(raw, block_bytes, config, "dram", "runtime", /*touch=*/true, steps);
}

bool RuntimeComparison(uint64_t block_bytes, uint64_t count, int steps) {
  std::printf("== runtime: %llu blocks x %llu MiB in a Runtime's DRAM tier, room for 3 on the GPU, next block prefetched\n",
              static_cast<unsigned long long>(count), static_cast<unsigned long long>(block_bytes >> 20));
  std::vector<std::vector<uint16_t>> raw;
  for (uint64_t i = 0; i < count; ++i) raw.push_back(Normal(block_bytes / 2, 0.02f, 200 + i));
  const StreamRun plain = RuntimeStreaming(raw, block_bytes, "off", steps);
  const StreamRun packed = RuntimeStreaming(raw, block_bytes, "bf16", steps);
  const double total = static_cast<double>(block_bytes) * count;
  std::printf("runtime: step off %.2f ms (%.1f GB/s), bf16 %.2f ms (%.1f GB/s), off/bf16 %.3f (target >= 1.30: %s); "
              "stored %.4f of raw, moved %.2f GB encoded for %.2f GB decoded; %s\n",
              plain.step_s * 1e3, total / plain.step_s / 1e9, packed.step_s * 1e3, total / packed.step_s / 1e9,
              plain.step_s / packed.step_s, plain.step_s / packed.step_s >= 1.3 ? "met" : "NOT met",
              packed.codec.raw_bytes ? static_cast<double>(packed.codec.stored_bytes) / packed.codec.raw_bytes : 0.0,
              packed.codec.moved_bytes / 1e9, packed.codec.decoded_bytes / 1e9,
              plain.exact && packed.exact ? "bytes on the GPU identical to the source" : "MISMATCH");
  return plain.exact && packed.exact && packed.codec.blocks == count;
}

// Sequential O_DIRECT reads of the whole file at `path` in 16 MiB reads,
// one stream: bytes per second (0 when the file cannot be read so).
double DirectReadRate(const std::string& path) {
  constexpr size_t kRead = 16 << 20;
  void* buffer = mmap(nullptr, kRead, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (buffer == MAP_FAILED) return 0;
  const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC);
  double rate = 0;
  if (fd >= 0) {
    uint64_t done = 0;
    const auto start = Clock::now();
    for (;;) {
      const ssize_t got = ::pread(fd, buffer, kRead, static_cast<off_t>(done));
      if (got <= 0) break;
      done += static_cast<uint64_t>(got);
    }
    rate = done / Since(start);
    ::close(fd);
  }
  munmap(buffer, kRead);
  return rate;
}

// Writes `bytes` of `data` repeated into a new file at `path`, flushed to
// the disk (so the O_DIRECT read measures the medium).
bool WriteFile(const std::string& path, const std::vector<uint16_t>& data, uint64_t bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  bool ok = true;
  for (uint64_t done = 0; ok && done < bytes;) {
    const uint64_t n = std::min<uint64_t>(bytes - done, data.size() * 2);
    ok = ::write(fd, data.data(), n) == static_cast<ssize_t>(n);
    done += n;
  }
  ok = ok && ::fsync(fd) == 0;
  ::close(fd);
  return ok;
}

// The stack homed on an NVMe tier in `dir`, with `compression`.
StreamRun NvmeStreaming(const std::vector<std::vector<uint16_t>>& raw, uint64_t block_bytes,
                        const std::string& dir, const char* compression, int steps) {
  RuntimeConfig config;
  config.compression = compression;
  config.chunk_bytes = 16 * kMiB;
  config.staging_buffers = 4;
  config.dram_bytes = 160 * kMiB;   // the staging ring and a little: no DRAM copies of blocks
  config.dram_prefetch_lookahead = 0;
  config.demote_on_evict = false;
  config.nvme_path = dir;
  config.nvme_bytes = raw.size() * AlignUp(block_bytes, 1 << 20) + 64 * kMiB;
  // LRU with room for 3 of a longer cycle keeps nothing a pass reuses, and
  // a prefetched block is never its victim (2 would evict the block
  // prefetched for the next acquire): every block read once per pass.
  config.gpu_cache_bytes = 3 * block_bytes;
  config.gpu_policy = "lru";
  config.prefetch = "off";          // only the explicit next-block prefetch
  return StreamThroughRuntime(raw, block_bytes, config, "nvme", "nvme", /*touch=*/false, steps);
}

bool NvmeComparison(uint64_t block_bytes, uint64_t count, const std::string& dir, int steps) {
  std::printf("== nvme: %llu blocks x %llu MiB homed on a Runtime's NVMe tier in %s, room for 3 on the GPU, "
              "every acquire read from the disk\n",
              static_cast<unsigned long long>(count), static_cast<unsigned long long>(block_bytes >> 20),
              dir.c_str());
  std::vector<std::vector<uint16_t>> raw;
  for (uint64_t i = 0; i < count; ++i) raw.push_back(Normal(block_bytes / 2, 0.02f, 300 + i));
  const std::string peer_file = dir + "/codec_bench_direct_read.bin";
  double disk = 0;
  if (WriteFile(peer_file, raw[0], block_bytes * count)) disk = DirectReadRate(peer_file);
  ::unlink(peer_file.c_str());
  const StreamRun plain = NvmeStreaming(raw, block_bytes, dir, "off", steps);
  const StreamRun packed = NvmeStreaming(raw, block_bytes, dir, "bf16", steps);
  const double total = static_cast<double>(block_bytes) * count;
  const double plain_rate = total / plain.step_s, packed_rate = total / packed.step_s;
  const double peer = std::max(disk, plain_rate);
  std::printf("nvme: disk O_DIRECT read %.3f GB/s; off %.1f ms/pass (%.3f GB/s, %.3f x the disk, %llu blocks read, "
              "%.2f GB), bf16 %.1f ms/pass (%.3f GB/s decoded, %.3f x the disk, %.3f x off, %llu blocks read, "
              "%.2f GB; target >= 1.30 x the faster peer: %s); %s\n",
              disk / 1e9, plain.step_s * 1e3, plain_rate / 1e9, disk > 0 ? plain_rate / disk : 0.0,
              static_cast<unsigned long long>(plain.misses), plain.read_bytes / 1e9, packed.step_s * 1e3,
              packed_rate / 1e9, disk > 0 ? packed_rate / disk : 0.0, packed_rate / plain_rate,
              static_cast<unsigned long long>(packed.misses), packed.read_bytes / 1e9,
              packed_rate / peer >= 1.3 ? "met" : "NOT met",
              plain.exact && packed.exact ? "bytes on the GPU identical to the source" : "MISMATCH");
  return plain.exact && packed.exact && packed.codec.blocks == count;
}

bool Wanted(const char* section) {
  const char* list = std::getenv("TIERCACHE_BENCH_SECTIONS");
  if (list == nullptr || *list == 0) return true;
  const std::string s = std::string(",") + list + ",";
  return s.find(std::string(",") + section + ",") != std::string::npos;
}

int Main() {
  Result<std::shared_ptr<Device>> device = OpenDevice(0);
  if (!device.ok()) {
    std::fprintf(stderr, "codec_bench: %s\n", device.status().ToString().c_str());
    return 2;
  }
  const bool emulated = (*device)->info().kind == DeviceKind::kEmulated;
  std::printf("device: %s\n", (*device)->info().name.c_str());
  const int steps = static_cast<int>(EnvBytes("TIERCACHE_BENCH_STEPS", 3));
  if (Wanted("ratio")) RatioTable(EnvBytes("TIERCACHE_BENCH_SAMPLE_BYTES", emulated ? 8 * kMiB : 64 * kMiB));
  const uint64_t block_bytes = EnvBytes("TIERCACHE_BENCH_BLOCK_BYTES", emulated ? 8 * kMiB : 350 * kMiB) & ~uint64_t{1};
  const uint64_t blocks = EnvBytes("TIERCACHE_BENCH_BLOCKS", emulated ? 4 : 16);
  bool exact = true;
  if (Wanted("kernel")) exact = KernelThroughput(**device, block_bytes, steps) && exact;
  if (Wanted("streaming")) exact = Streaming(*device, block_bytes, blocks, steps) && exact;
  if (Wanted("runtime")) exact = RuntimeComparison(block_bytes, blocks, steps) && exact;
  if (Wanted("nvme")) {
    const char* dir = std::getenv("TIERCACHE_BENCH_NVME_DIR");
    exact = NvmeComparison(block_bytes, EnvBytes("TIERCACHE_BENCH_NVME_BLOCKS", emulated ? 4 : 8),
                           dir != nullptr && *dir != 0 ? dir : "/var/tmp", steps) && exact;
  }
  return exact ? 0 : 1;
}

}  // namespace
}  // namespace tiercache

int main() { return tiercache::Main(); }
