#include "tools/bench/link_probe.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <cstring>
#include <vector>

namespace tiercache::bench {
namespace {

constexpr int kRounds = 4;

}  // namespace

double BestRate(const std::function<bool()>& move_once, uint64_t bytes_each) {
  using Clock = std::chrono::steady_clock;
  if (bytes_each == 0 || !move_once()) return 0;  // the warm-up
  double best = 0;
  for (int round = 0; round < kRounds; ++round) {
    uint64_t moved = 0;
    auto start = Clock::now();
    while (moved < kProbeBytes / kRounds) {
      if (!move_once()) return 0;
      moved += bytes_each;
    }
    double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    if (seconds > 0) best = std::max(best, static_cast<double>(moved) / seconds);
  }
  return best;
}

namespace {

// Reads [0, bytes) of `extent` in `chunk` pieces, `in_flight` at a time.
bool ReadConcurrently(Tier* tier, const Extent& extent, void* buffer, uint64_t bytes, uint64_t chunk,
                      int in_flight) {
  std::mutex mutex;
  std::condition_variable cv;
  int outstanding = 0;
  bool ok = true;
  auto* out = static_cast<unsigned char*>(buffer);
  for (uint64_t offset = 0; offset < bytes; offset += chunk) {
    {
      std::unique_lock<std::mutex> lock(mutex);
      cv.wait(lock, [&] { return outstanding < in_flight; });
      ++outstanding;
    }
    tier->ReadAsync(extent, offset, out + offset, std::min(chunk, bytes - offset), [&](Status s) {
      std::lock_guard<std::mutex> lock(mutex);
      ok = ok && s.ok();
      --outstanding;
      cv.notify_all();
    });
  }
  std::unique_lock<std::mutex> lock(mutex);
  cv.wait(lock, [&] { return outstanding == 0; });
  return ok;
}

}  // namespace

double ProbeTierRead(Tier* tier, void* buffer, uint64_t bytes, uint64_t chunk, int in_flight) {
  if (chunk == 0 || chunk > bytes) chunk = bytes;
  Result<Extent> extent = tier->Allocate(bytes);
  if (!extent.ok()) return 0;
  std::memset(buffer, 0x5a, bytes);
  double rate = 0;
  if (tier->Write(*extent, 0, buffer, bytes).ok()) {
    rate = BestRate([&] { return ReadConcurrently(tier, *extent, buffer, bytes, chunk, std::max(1, in_flight)); },
                    bytes);
  }
  (void)tier->Free(*extent);
  return rate;
}

double ProbeHostToDevice(Device* device, Stream stream, const void* host, uint64_t bytes) {
  Result<void*> target = device->AllocateMemory(bytes);
  if (!target.ok()) return 0;
  double rate = BestRate(
      [&] {
        return device->CopyAsync(*target, host, bytes, CopyKind::kHostToDevice, stream).ok() &&
               device->StreamSynchronize(stream).ok();
      },
      bytes);
  (void)device->FreeMemory(*target);
  return rate;
}

}  // namespace tiercache::bench
