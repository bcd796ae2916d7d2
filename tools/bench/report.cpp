#include "tools/bench/report.h"

namespace tiercache::bench {
namespace {

double Ratio(double numerator, double denominator) {
  return denominator > 0 ? numerator / denominator : 0.0;
}

}  // namespace

double TierReport::GlobalHitRatio(uint64_t all_requests) const {
  return Ratio(static_cast<double>(hits), static_cast<double>(all_requests));
}

double TierReport::LocalHitRatio() const {
  return Ratio(static_cast<double>(hits), static_cast<double>(requests_reaching));
}

double TierReport::AchievedBytesPerSecond() const {
  return Ratio(static_cast<double>(link_bytes) * 1e9, static_cast<double>(transfer_ns));
}

double TierReport::FractionOfPeak() const {
  return Ratio(AchievedBytesPerSecond(), link.bytes_per_second);
}

double PrefetchReport::Accuracy() const {
  return Ratio(static_cast<double>(useful), static_cast<double>(issued));
}

double PrefetchReport::Coverage() const {
  return Ratio(static_cast<double>(useful), static_cast<double>(useful + demand_misses));
}

double PrefetchReport::Lateness() const {
  return Ratio(static_cast<double>(late), static_cast<double>(useful));
}

double PolicyPoint::HitRatio() const {
  return Ratio(static_cast<double>(hits), static_cast<double>(requests));
}

double Report::GpuHitRatio() const {
  return tiers.empty() ? 0.0 : tiers.front().GlobalHitRatio(requests);
}

std::vector<double> Report::MeanStepMillisecondsByTier() const {
  std::vector<double> mean(tiers.size() + 1, 0.0);
  if (step_times.empty()) return mean;
  for (const StepTime& step : step_times) {
    uint64_t stalled = 0;
    for (size_t i = 0; i < tiers.size() && i < step.stall_ns_by_tier.size(); ++i) {
      mean[i] += static_cast<double>(step.stall_ns_by_tier[i]);
      stalled += step.stall_ns_by_tier[i];
    }
    // Compute (and bookkeeping) is whatever the step spent not waiting.
    mean[tiers.size()] += static_cast<double>(step.total_ns > stalled ? step.total_ns - stalled : 0);
  }
  for (double& value : mean) value /= 1e6 * static_cast<double>(step_times.size());
  return mean;
}

double Report::MeanStepMilliseconds() const {
  if (step_times.empty()) return 0;
  double total = 0;
  for (const StepTime& step : step_times) total += static_cast<double>(step.total_ns);
  return total / 1e6 / static_cast<double>(step_times.size());
}

}  // namespace tiercache::bench
