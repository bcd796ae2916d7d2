#include "tools/bench/simulate.h"

#include <algorithm>
#include <cmath>

#include "prefetch/belady.h"
#include "prefetch/simulator.h"
#include "tools/bench/progress.h"

namespace tiercache::bench {
namespace {

// The tool's policy names -> the simulator's. "tiercache" is the product's
// eviction: next-use fed by the learning prefetcher, on demand only, so it
// compares with MIN (also demand-only); "tiercache+prefetch" also fetches
// the predicted blocks ahead, and its prefetched reads count as hits.
std::string SimulatorPolicy(const std::string& policy) {
  if (policy == "tiercache") return "next-use";
  if (policy == "tiercache+prefetch") return "next-use+prefetch";
  return policy;
}

PolicyPoint ToPoint(const SimResult& result, uint64_t working_set) {
  PolicyPoint point;
  point.cache_bytes = result.capacity_bytes;
  point.fraction_of_working_set =
      working_set > 0 ? static_cast<double>(result.capacity_bytes) / static_cast<double>(working_set) : 0;
  point.requests = result.reads;
  point.hits = result.hits;
  point.misses = result.misses;
  point.bytes_missed = result.miss_bytes;
  if (result.prefetches > 0) {
    PrefetchReport prefetch;
    prefetch.enabled = true;
    prefetch.issued = result.prefetches;
    prefetch.useful = result.prefetch_hits;
    prefetch.wasted_bytes = result.prefetch_wasted_bytes;
    prefetch.demand_misses = result.misses;
    point.prefetch = prefetch;
  }
  return point;
}

}  // namespace

Result<std::vector<PolicyCurve>> SimulatePolicies(const Workload& workload,
                                                  const std::vector<std::string>& policies,
                                                  const std::vector<double>& fractions,
                                                  ProgressBar* progress) {
  uint64_t working_set = WorkingSetBytes(workload.trace);
  std::vector<PolicyCurve> curves;
  uint64_t done = 0;
  for (const std::string& policy : policies) {
    PolicyCurve curve;
    curve.policy = policy;
    for (double fraction : fractions) {
      SimOptions options;
      options.policy = SimulatorPolicy(policy);
      options.capacity_bytes =
          std::max<uint64_t>(1, static_cast<uint64_t>(std::llround(fraction * working_set)));
      Result<SimResult> result = Simulate(workload.trace, options);
      if (!result.ok()) {
        return Status(result.status().code(), "simulate " + policy + ": " + result.status().message());
      }
      curve.points.push_back(ToPoint(*result, working_set));
      if (progress != nullptr) progress->Update(++done);
    }
    curves.push_back(std::move(curve));
  }
  return curves;
}

Result<double> BeladyHitRatio(const Workload& workload, uint64_t cache_bytes) {
  // The classic farthest-next-use rule: optimal for equal sizes, the usual
  // bound quoted for mixed ones.
  BeladyVariant variant = BeladyVariant::kFarthest;
  TC_ASSIGN_OR_RETURN(SimResult result, RunBelady(workload.trace, cache_bytes, variant));
  return result.hit_ratio();
}

Result<Report> SimulateCommand(const Options& options, const Workload& workload) {
  ProgressBar progress("simulate", options.policies.size() * options.cache_fractions.size(),
                       options.progress);
  TC_ASSIGN_OR_RETURN(std::vector<PolicyCurve> curves,
                      SimulatePolicies(workload, options.policies, options.cache_fractions, &progress));
  progress.Finish();
  Report report;
  report.mode = "simulate";
  report.workload = workload.description;
  report.requests = workload.requests.size();
  report.unique_blocks = workload.block_bytes.size();
  report.working_set_bytes = workload.WorkingSetBytes();
  report.block_bytes = workload.UniformBlockBytes();
  report.steps = workload.step_starts.size();
  report.curves = std::move(curves);
  return report;
}

}  // namespace tiercache::bench
