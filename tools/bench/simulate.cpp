#include "tools/bench/simulate.h"

namespace tiercache::bench {

Result<std::vector<PolicyCurve>> SimulatePolicies(const Workload&, const std::vector<std::string>&,
                                                  const std::vector<double>&, bool, ProgressBar*) {
  return Status::Unavailable("simulate: the policy simulator is not built in yet");
}

Result<double> BeladyHitRatio(const Workload&, uint64_t) {
  return Status::Unavailable("simulate: Belady's MIN is not built in yet");
}

Result<Report> SimulateCommand(const Options& options, const Workload& workload) {
  TC_ASSIGN_OR_RETURN(std::vector<PolicyCurve> curves,
                      SimulatePolicies(workload, options.policies, options.cache_fractions,
                                       options.prefetch, nullptr));
  Report report;
  report.mode = "simulate";
  report.curves = std::move(curves);
  return report;
}

}  // namespace tiercache::bench
