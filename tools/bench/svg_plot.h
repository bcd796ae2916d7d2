// SVG plots written next to the JSON report: hit ratio against cache size,
// one line per policy, and time per step as stacked bars, one colour per
// tier waited on (plus compute). Self-contained SVG 1.1 with no scripts or
// external references, so a browser or an image viewer shows it as is.
//
// Thread safety: pure functions apart from writing files.
#ifndef TIERCACHE_TOOLS_BENCH_SVG_PLOT_H_
#define TIERCACHE_TOOLS_BENCH_SVG_PLOT_H_

#include <string>
#include <vector>

#include "common/status.h"
#include "tools/bench/report.h"

namespace tiercache::bench {

// x: cache size as % of the working set; y: hit ratio in %. An optional
// marker shows where the replayed GPU capacity sits (marker_fraction > 0).
std::string HitRatioSvg(const std::vector<PolicyCurve>& curves, const std::string& title,
                        double marker_fraction = 0, double marker_hit_ratio = 0,
                        const std::string& marker_label = "replayed run");

// One stacked bar per step (up to 64; longer runs are averaged into 64 bars).
std::string StepTimeSvg(const Report& report);

// "dir/run.json" -> "dir/run.hit-ratio.svg" and "dir/run.step-time.svg".
std::string PlotPath(const std::string& json_path, const std::string& plot);

// Writes the plots the report has data for; appends the paths to `written`.
Status WritePlots(const Report& report, const std::string& json_path,
                  std::vector<std::string>* written);

// Escapes &, <, >, " and ' for XML text and attributes.
std::string XmlEscape(const std::string& text);

}  // namespace tiercache::bench

#endif  // TIERCACHE_TOOLS_BENCH_SVG_PLOT_H_
