// Terminal table: the human-readable summary of a Report on stdout.
//
// The per-tier table labels its two hit ratios "hit% of all" (hits divided
// by every request) and "hit% of reaching" (hits divided by the requests that
// missed every faster tier); docs/bench.md walks through an example.
//
// Thread safety: pure functions.
#ifndef TIERCACHE_TOOLS_BENCH_TABLE_H_
#define TIERCACHE_TOOLS_BENCH_TABLE_H_

#include <string>
#include <vector>

#include "tools/bench/report.h"

namespace tiercache::bench {

// Aligned columns: the first left-aligned, the rest right-aligned.
class TextTable {
 public:
  explicit TextTable(std::vector<std::string> header);
  void AddRow(std::vector<std::string> row);  // REQUIRES: as many cells as the header
  std::string Render() const;

 private:
  std::vector<std::vector<std::string>> rows_;
};

// The whole summary: header lines, the tier table (if any), prefetch and
// Belady lines, step times, the policy table of simulate mode, fallbacks.
std::string RenderReport(const Report& report);

// "12.5%", "-" for a ratio that has no denominator.
std::string FormatPercent(double ratio, bool defined = true);

}  // namespace tiercache::bench

#endif  // TIERCACHE_TOOLS_BENCH_TABLE_H_
