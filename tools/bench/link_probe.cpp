#include "tools/bench/link_probe.h"

#include <algorithm>
#include <chrono>
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

double ProbeTierRead(Tier* tier, void* buffer, uint64_t bytes) {
  Result<Extent> extent = tier->Allocate(bytes);
  if (!extent.ok()) return 0;
  std::memset(buffer, 0x5a, bytes);
  double rate = 0;
  if (tier->Write(*extent, 0, buffer, bytes).ok()) {
    rate = BestRate([&] { return tier->Read(*extent, 0, buffer, bytes).ok(); }, bytes);
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
