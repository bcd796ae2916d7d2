#include "runtime/stats.h"

#include <chrono>

#include "common/check.h"

namespace tiercache {

uint64_t MonotonicNanoseconds() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

double TierTraffic::bandwidth_gbps() const {
  if (busy_ns == 0) return 0.0;
  return static_cast<double>(bytes_in + bytes_out) / static_cast<double>(busy_ns);
}

int RuntimeStats::AddTier(std::string name) {
  std::lock_guard<std::mutex> lock(add_mutex_);
  const int index = count_.load(std::memory_order_relaxed);
  TC_CHECK(index < kMaxTiers, "RuntimeStats: too many tiers");
  slots_[index].name = std::move(name);
  count_.store(index + 1, std::memory_order_release);
  return index;
}

void RuntimeStats::TransferBegin(int tier, uint64_t now_ns) {
  if (tier < 0 || tier >= tier_count()) return;
  Slot& slot = slots_[tier];
  slot.transfers.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard<std::mutex> lock(slot.busy_mutex);
  if (slot.in_flight++ == 0) slot.busy_since = now_ns;
}

void RuntimeStats::TransferEnd(int tier, uint64_t now_ns) {
  if (tier < 0 || tier >= tier_count()) return;
  Slot& slot = slots_[tier];
  std::lock_guard<std::mutex> lock(slot.busy_mutex);
  if (slot.in_flight == 0) return;  // unmatched: ignore rather than corrupt
  if (--slot.in_flight == 0 && now_ns > slot.busy_since) {
    slot.busy_ns.fetch_add(now_ns - slot.busy_since, std::memory_order_relaxed);
  }
}

double RuntimeStats::Bandwidth(int tier) const {
  if (tier < 0 || tier >= tier_count()) return 0;
  const Slot& s = slots_[tier];
  const uint64_t busy = s.busy_ns.load(std::memory_order_relaxed);
  if (busy == 0) return 0;
  const uint64_t bytes = s.bytes_in.load(std::memory_order_relaxed) + s.bytes_out.load(std::memory_order_relaxed);
  return static_cast<double>(bytes) * 1e9 / static_cast<double>(busy);
}

TierTraffic RuntimeStats::Snapshot(int tier) const {
  TierTraffic t;
  if (tier < 0 || tier >= tier_count()) return t;
  const Slot& s = slots_[tier];
  t.name = s.name;
  t.hits = s.hits.load(std::memory_order_relaxed);
  t.misses = s.misses.load(std::memory_order_relaxed);
  t.bytes_in = s.bytes_in.load(std::memory_order_relaxed);
  t.bytes_out = s.bytes_out.load(std::memory_order_relaxed);
  t.evictions = s.evictions.load(std::memory_order_relaxed);
  t.stall_ns = s.stall_ns.load(std::memory_order_relaxed);
  t.busy_ns = s.busy_ns.load(std::memory_order_relaxed);
  t.transfers = s.transfers.load(std::memory_order_relaxed);
  t.errors = s.errors.load(std::memory_order_relaxed);
  t.encoded_uploads = s.encoded_uploads.load(std::memory_order_relaxed);
  t.encoded_bytes = s.encoded_bytes.load(std::memory_order_relaxed);
  t.decoded_bytes = s.decoded_bytes.load(std::memory_order_relaxed);
  t.encoded_ns = s.encoded_ns.load(std::memory_order_relaxed);
  return t;
}

std::vector<TierTraffic> RuntimeStats::SnapshotAll() const {
  std::vector<TierTraffic> all;
  for (int i = 0; i < tier_count(); ++i) all.push_back(Snapshot(i));
  return all;
}

void RuntimeStats::AppendJson(JsonWriter* w) const {
  w->BeginArray();
  for (const TierTraffic& t : SnapshotAll()) {
    w->BeginObject()
        .Key("name").String(t.name)
        .Key("hits").Uint(t.hits)
        .Key("misses").Uint(t.misses)
        .Key("bytes_in").Uint(t.bytes_in)
        .Key("bytes_out").Uint(t.bytes_out)
        .Key("evictions").Uint(t.evictions)
        .Key("stall_ns").Uint(t.stall_ns)
        .Key("busy_ns").Uint(t.busy_ns)
        .Key("transfers").Uint(t.transfers)
        .Key("errors").Uint(t.errors)
        .Key("bandwidth_gbps").Double(t.bandwidth_gbps())
        .EndObject();
  }
  w->EndArray();
}

}  // namespace tiercache
