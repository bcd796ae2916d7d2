// BlockCache: statistics as JSON (traffic per tier, blocks, the GPU policy
// and its candidates, the prefetcher, host tiers, the allocator, fallbacks).
#include "common/log.h"
#include "runtime/block_cache.h"
#include "runtime/block_cache_internal.h"
#include "runtime/json.h"

namespace tiercache {
namespace {

// "gpu_policy_state": which policy chooses victims now and, for an adaptive
// one, the hit ratio each candidate's shadow cache had.
void AppendPolicyJson(const EvictionPolicy& policy, JsonWriter* w) {
  w->Key("gpu_policy_state").BeginObject()
      .Key("name").String(policy.name())
      .Key("active").String(policy.active())
      .Key("candidates").BeginArray();
  for (const EvictionPolicy::CandidateScore& c : policy.Candidates()) {
    w->BeginObject()
        .Key("name").String(c.name)
        .Key("hits").Uint(c.hits)
        .Key("requests").Uint(c.requests)
        .Key("hit_ratio").Double(c.requests == 0 ? 0.0 : static_cast<double>(c.hits) / c.requests)
        .EndObject();
  }
  w->EndArray().EndObject();
}

}  // namespace

// REQUIRES: mutex_.
void BlockCache::AppendPrefetchJson(JsonWriter* w) const {
  w->Key("prefetch").BeginObject()
      .Key("mode").String(config_.prefetch)
      .Key("predictor").String(learner_ != nullptr ? "learner" : predictor_ != nullptr ? "custom" : "none")
      .Key("lookahead").Uint(lookahead_)
      .Key("lookahead_cap").Int(config_.prefetch_lookahead)
      .Key("link_gbps").Double(stats_.Bandwidth(gpu_slot_) / 1e9)
      .Key("cycle_plan").BeginObject()
      .Key("period").Uint(plan_period_)
      .Key("kept_blocks").Uint(plan_kept_.size())
      .Key("ring_slots").Uint(plan_ring_slots_)
      .EndObject();
  if (learner_ != nullptr) {
    const PrefetchStats& p = learner_->stats();
    w->Key("accesses").Uint(p.accesses)
        .Key("issued").Uint(p.issued)
        .Key("issued_bytes").Uint(p.issued_bytes)
        .Key("useful").Uint(p.useful)
        .Key("late").Uint(p.late)
        .Key("wasted").Uint(p.wasted)
        .Key("wasted_bytes").Uint(p.wasted_bytes)
        .Key("accuracy").Double(p.accuracy())
        .Key("coverage").Double(p.coverage())
        .Key("lateness").Double(p.lateness())
        .Key("top1_accuracy").Double(p.top1_accuracy())
        .Key("compute_us").Double(static_cast<double>(learner_->compute_ns()) / 1e3);
  }
  w->EndObject();
}

std::string BlockCache::StatsJson() const {
  JsonWriter w;
  w.BeginObject().Key("tiers");
  stats_.AppendJson(&w);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    uint64_t resident = 0, pinned = 0, in_dram = 0, live = 0;
    for (const auto& b : blocks_) {
      if (!b->alive) continue;
      ++live;
      resident += b->gpu == Block::Gpu::kResident;
      pinned += b->pins > 0;
      in_dram += b->dram_valid;
    }
    w.Key("blocks").BeginObject()
        .Key("registered").Uint(live)
        .Key("gpu_resident").Uint(resident)
        .Key("pinned").Uint(pinned)
        .Key("dram_copies").Uint(in_dram)
        .Key("gpu_cached_bytes").Uint(cached_bytes_)
        .Key("gpu_cache_limit").Uint(config_.gpu_cache_bytes)
        .Key("gpu_policy").String(gpu_policy_->name())
        .Key("dram_policy").String(dram_policy_->name())
        .EndObject();
    AppendPolicyJson(*gpu_policy_, &w);
    AppendPrefetchJson(&w);
    w.Key("host_tiers").BeginArray();
    for (const AttachedTier& t : tiers_) {
      const TierStats s = t.tier->stats();
      w.BeginObject()
          .Key("name").String(t.tier->name())
          .Key("kind").String(TierKindName(t.tier->kind()))
          .Key("direct").Bool(t.direct)
          .Key("capacity").Uint(s.capacity)
          .Key("used").Uint(s.used)
          .Key("bytes_read").Uint(s.bytes_read)
          .Key("bytes_written").Uint(s.bytes_written)
          .Key("read_errors").Uint(s.read_errors)
          .Key("write_errors").Uint(s.write_errors)
          .EndObject();
    }
    w.EndArray();
  }
  const DeviceAllocatorStats a = allocator_->GetStats();
  w.Key("allocator").BeginObject()
      .Key("budget_bytes").Uint(a.budget_bytes)
      .Key("reserved_bytes").Uint(a.reserved_bytes)
      .Key("allocated_bytes").Uint(a.allocated_bytes)
      .Key("peak_allocated_bytes").Uint(a.peak_allocated_bytes)
      .Key("pressure_calls").Uint(a.pressure_calls)
      .Key("pressure_freed_bytes").Uint(a.pressure_freed_bytes)
      .Key("oom_events").Uint(a.oom_events)
      .EndObject();
  w.Key("fallbacks").BeginArray();
  for (const FallbackEvent& f : Fallbacks()) {
    w.BeginObject().Key("name").String(f.name).Key("reason").String(f.reason)
        .Key("count").Uint(f.count).EndObject();
  }
  w.EndArray().EndObject();
  return w.text();
}

}  // namespace tiercache
