#include "common/fault_injector.h"

#include <utility>

namespace tiercache {

const char* FaultSiteName(FaultSite site) {
  switch (site) {
    case FaultSite::kTierRead: return "tier.read";
    case FaultSite::kTierWrite: return "tier.write";
    case FaultSite::kTierAllocate: return "tier.allocate";
    case FaultSite::kDeviceAllocate: return "device.allocate";
    case FaultSite::kDeviceRegisterHost: return "device.register_host";
    case FaultSite::kIoUringSetup: return "io_uring.setup";
  }
  return "unknown";
}

const char* FaultActionName(FaultAction action) {
  switch (action) {
    case FaultAction::kNone: return "none";
    case FaultAction::kIoError: return "io-error";
    case FaultAction::kShortRead: return "short-read";
    case FaultAction::kCorruptRead: return "corrupt-read";
    case FaultAction::kCorruptPage: return "corrupt-page";
    case FaultAction::kTornWrite: return "torn-write";
    case FaultAction::kOutOfSpace: return "out-of-space";
    case FaultAction::kOutOfMemory: return "out-of-memory";
    case FaultAction::kRefuse: return "refuse";
    case FaultAction::kDelay: return "delay";
  }
  return "unknown";
}

void FaultInjector::Add(FaultRule rule) {
  std::lock_guard<std::mutex> lock(mutex_);
  rules_.push_back(Entry{std::move(rule)});
}

void FaultInjector::Clear() {
  std::lock_guard<std::mutex> lock(mutex_);
  rules_.clear();
}

InjectedFault FaultInjector::Next(FaultSite site, std::string_view target) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (Entry& entry : rules_) {
    const FaultRule& rule = entry.rule;
    if (rule.site != site || (!rule.target.empty() && rule.target != target)) continue;
    if (entry.seen++ < rule.skip) continue;
    if (rule.count >= 0 && entry.fired >= rule.count) continue;
    if (rule.probability < 1.0 &&
        std::uniform_real_distribution<double>(0.0, 1.0)(random_) >= rule.probability) {
      continue;
    }
    ++entry.fired;
    ++fired_[static_cast<int>(site)];
    return InjectedFault{rule.action, rule.delay};
  }
  return {};
}

uint64_t FaultInjector::injected(FaultSite site) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return fired_[static_cast<int>(site)];
}

uint64_t FaultInjector::injected_total() const {
  std::lock_guard<std::mutex> lock(mutex_);
  uint64_t total = 0;
  for (uint64_t n : fired_) total += n;
  return total;
}

}  // namespace tiercache
