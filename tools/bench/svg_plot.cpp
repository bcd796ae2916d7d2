#include "tools/bench/svg_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

namespace tiercache::bench {
namespace {

constexpr int kWidth = 720;
constexpr int kHeight = 440;
constexpr int kLeft = 70;
constexpr int kRight = 170;  // room for the legend
constexpr int kTop = 40;
constexpr int kBottom = 60;
constexpr int kPlotWidth = kWidth - kLeft - kRight;
constexpr int kPlotHeight = kHeight - kTop - kBottom;

// A palette that stays distinguishable for common colour-vision deficiencies.
const char* Colour(size_t index) {
  static const char* kColours[] = {"#0072b2", "#e69f00", "#009e73", "#cc79a7",
                                   "#d55e00", "#56b4e9", "#f0e442", "#000000"};
  return kColours[index % (sizeof(kColours) / sizeof(kColours[0]))];
}

std::string Number(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.1f", value);
  return buffer;
}

// Axis labels: no trailing ".0", three significant digits for small values.
std::string Label(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.3g", value);
  return buffer;
}

void Header(std::ostringstream& svg, const std::string& title) {
  svg << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      << "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"" << kWidth
      << "\" height=\"" << kHeight << "\" viewBox=\"0 0 " << kWidth << " " << kHeight
      << "\" font-family=\"sans-serif\" font-size=\"12\">\n"
      << "<rect x=\"0\" y=\"0\" width=\"" << kWidth << "\" height=\"" << kHeight
      << "\" fill=\"#ffffff\"/>\n"
      << "<text x=\"" << kWidth / 2 << "\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">"
      << XmlEscape(title) << "</text>\n";
}

// Axes with `ticks` + 1 labelled gridlines on y from 0 to y_max.
void Axes(std::ostringstream& svg, double y_max, int ticks, const std::string& y_unit,
          const std::string& x_label, const std::string& y_label) {
  for (int i = 0; i <= ticks; ++i) {
    double y = kTop + kPlotHeight - kPlotHeight * i / static_cast<double>(ticks);
    svg << "<line x1=\"" << kLeft << "\" y1=\"" << Number(y) << "\" x2=\"" << kLeft + kPlotWidth
        << "\" y2=\"" << Number(y) << "\" stroke=\"#dddddd\"/>\n"
        << "<text x=\"" << kLeft - 6 << "\" y=\"" << Number(y + 4) << "\" text-anchor=\"end\">"
        << XmlEscape(Label(y_max * i / ticks) + y_unit) << "</text>\n";
  }
  svg << "<line x1=\"" << kLeft << "\" y1=\"" << kTop + kPlotHeight << "\" x2=\""
      << kLeft + kPlotWidth << "\" y2=\"" << kTop + kPlotHeight << "\" stroke=\"#000000\"/>\n"
      << "<line x1=\"" << kLeft << "\" y1=\"" << kTop << "\" x2=\"" << kLeft << "\" y2=\""
      << kTop + kPlotHeight << "\" stroke=\"#000000\"/>\n"
      << "<text x=\"" << kLeft + kPlotWidth / 2 << "\" y=\"" << kHeight - 14
      << "\" text-anchor=\"middle\">" << XmlEscape(x_label) << "</text>\n"
      << "<text x=\"16\" y=\"" << kTop + kPlotHeight / 2 << "\" text-anchor=\"middle\" "
      << "transform=\"rotate(-90 16 " << kTop + kPlotHeight / 2 << ")\">" << XmlEscape(y_label)
      << "</text>\n";
}

void LegendEntry(std::ostringstream& svg, size_t index, const std::string& label,
                 const char* colour) {
  int y = kTop + 10 + static_cast<int>(index) * 20;
  svg << "<rect x=\"" << kLeft + kPlotWidth + 16 << "\" y=\"" << y - 9 << "\" width=\"14\" "
      << "height=\"10\" fill=\"" << colour << "\"/>\n"
      << "<text x=\"" << kLeft + kPlotWidth + 36 << "\" y=\"" << y << "\">" << XmlEscape(label)
      << "</text>\n";
}

// The smallest 1, 2 or 5 x 10^k multiple of 5 ticks at or above `value`,
// so the axis reads in round numbers.
double NiceCeiling(double value) {
  if (!(value > 0)) return 1.0;
  double tick = value / 5;
  double magnitude = std::pow(10.0, std::floor(std::log10(tick)));
  for (double step : {1.0, 2.0, 5.0, 10.0}) {
    if (step * magnitude >= tick) return 5 * step * magnitude;
  }
  return 50 * magnitude;
}

double PlotX(double fraction) { return kLeft + kPlotWidth * std::clamp(fraction, 0.0, 1.0); }
double PlotY(double ratio) { return kTop + kPlotHeight * (1.0 - std::clamp(ratio, 0.0, 1.0)); }

}  // namespace

std::string XmlEscape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default:
        // Control characters are not allowed in XML 1.0 text.
        if (static_cast<unsigned char>(c) >= 0x20 || c == '\n' || c == '\t') out += c;
    }
  }
  return out;
}

std::string HitRatioSvg(const std::vector<PolicyCurve>& curves, const std::string& title,
                        double marker_fraction, double marker_hit_ratio,
                        const std::string& marker_label) {
  std::ostringstream svg;
  Header(svg, title);
  Axes(svg, 100, 5, "%", "cache size (% of the working set)", "hit ratio (% of all requests)");
  for (int i = 0; i <= 10; ++i) {
    svg << "<text x=\"" << Number(PlotX(i / 10.0)) << "\" y=\"" << kTop + kPlotHeight + 18
        << "\" text-anchor=\"middle\">" << i * 10 << "</text>\n";
  }
  for (size_t c = 0; c < curves.size(); ++c) {
    const PolicyCurve& curve = curves[c];
    std::ostringstream points;
    for (const PolicyPoint& point : curve.points) {
      points << Number(PlotX(point.fraction_of_working_set)) << "," << Number(PlotY(point.HitRatio()))
             << " ";
    }
    bool dashed = curve.policy == "min";
    svg << "<polyline fill=\"none\" stroke=\"" << Colour(c) << "\" stroke-width=\"2\""
        << (dashed ? " stroke-dasharray=\"6,4\"" : "") << " points=\"" << points.str() << "\"/>\n";
    for (const PolicyPoint& point : curve.points) {
      svg << "<circle cx=\"" << Number(PlotX(point.fraction_of_working_set)) << "\" cy=\""
          << Number(PlotY(point.HitRatio())) << "\" r=\"3\" fill=\"" << Colour(c) << "\"/>\n";
    }
    LegendEntry(svg, c, curve.policy == "min" ? "Belady MIN" : curve.policy, Colour(c));
  }
  if (marker_fraction > 0) {
    svg << "<circle cx=\"" << Number(PlotX(marker_fraction)) << "\" cy=\""
        << Number(PlotY(marker_hit_ratio)) << "\" r=\"6\" fill=\"none\" stroke=\"#000000\" "
        << "stroke-width=\"2\"/>\n";
    LegendEntry(svg, curves.size(), marker_label, "#000000");
  }
  svg << "</svg>\n";
  return svg.str();
}

std::string StepTimeSvg(const Report& report) {
  // Bars: steps, merged into at most kMaxBars groups so the chart stays legible.
  constexpr size_t kMaxBars = 64;
  size_t parts = report.tiers.size() + 1;
  size_t steps = report.step_times.size();
  size_t group = std::max<size_t>(1, (steps + kMaxBars - 1) / kMaxBars);
  std::vector<std::vector<double>> bars;  // ms per part
  for (size_t first = 0; first < steps; first += group) {
    std::vector<double> bar(parts, 0.0);
    size_t count = std::min(group, steps - first);
    for (size_t s = first; s < first + count; ++s) {
      const StepTime& step = report.step_times[s];
      uint64_t stalled = 0;
      for (size_t t = 0; t + 1 < parts && t < step.stall_ns_by_tier.size(); ++t) {
        bar[t] += step.stall_ns_by_tier[t] / 1e6 / count;
        stalled += step.stall_ns_by_tier[t];
      }
      bar[parts - 1] += (step.total_ns > stalled ? step.total_ns - stalled : 0) / 1e6 / count;
    }
    bars.push_back(bar);
  }
  double y_max = 0;
  for (const auto& bar : bars) {
    double total = 0;
    for (double value : bar) total += value;
    y_max = std::max(y_max, total);
  }
  y_max = NiceCeiling(y_max);

  std::ostringstream svg;
  Header(svg, "time per step by tier waited on: " + report.workload);
  Axes(svg, y_max, 5, "", group > 1 ? "step (groups of " + std::to_string(group) + ")" : "step",
       "milliseconds");
  double slot = bars.empty() ? kPlotWidth : kPlotWidth / static_cast<double>(bars.size());
  for (size_t b = 0; b < bars.size(); ++b) {
    double base = 0;
    for (size_t p = 0; p < parts; ++p) {
      double height = kPlotHeight * bars[b][p] / y_max;
      if (height <= 0) continue;
      double y = kTop + kPlotHeight - kPlotHeight * base / y_max - height;
      svg << "<rect x=\"" << Number(kLeft + slot * b + slot * 0.15) << "\" y=\"" << Number(y)
          << "\" width=\"" << Number(slot * 0.7) << "\" height=\"" << Number(height)
          << "\" fill=\"" << Colour(p) << "\"/>\n";
      base += bars[b][p];
    }
    if (bars.size() <= 16 || b % (bars.size() / 8) == 0) {
      svg << "<text x=\"" << Number(kLeft + slot * (b + 0.5)) << "\" y=\"" << kTop + kPlotHeight + 18
          << "\" text-anchor=\"middle\">" << b * group + 1 << "</text>\n";
    }
  }
  for (size_t p = 0; p < parts; ++p) {
    std::string label = p + 1 < parts ? "waiting on " + report.tiers[p].name : "compute";
    LegendEntry(svg, p, label, Colour(p));
  }
  svg << "</svg>\n";
  return svg.str();
}

std::string PlotPath(const std::string& json_path, const std::string& plot) {
  std::string stem = json_path;
  size_t slash = stem.find_last_of('/');
  size_t dot = stem.find_last_of('.');
  if (dot != std::string::npos && (slash == std::string::npos || dot > slash)) stem.resize(dot);
  return stem + "." + plot + ".svg";
}

Status WritePlots(const Report& report, const std::string& json_path,
                  std::vector<std::string>* written) {
  auto write = [written](const std::string& path, const std::string& text) -> Status {
    std::ofstream file(path, std::ios::trunc);
    file << text;
    file.close();
    if (!file) return Status::IoError("cannot write " + path);
    written->push_back(path);
    return Status::Ok();
  };
  if (!report.curves.empty()) {
    double marker_fraction = 0;
    if (!report.tiers.empty() && report.working_set_bytes > 0) {
      marker_fraction = static_cast<double>(report.tiers.front().capacity_bytes) /
                        static_cast<double>(report.working_set_bytes);
    }
    TC_RETURN_IF_ERROR(write(PlotPath(json_path, "hit-ratio"),
                             HitRatioSvg(report.curves, "hit ratio by cache size: " + report.workload,
                                         marker_fraction, report.GpuHitRatio(),
                                         report.prefetch.enabled ? "run (prefetching)" : "replayed run")));
  }
  if (!report.step_times.empty()) {
    TC_RETURN_IF_ERROR(write(PlotPath(json_path, "step-time"), StepTimeSvg(report)));
  }
  return Status::Ok();
}

}  // namespace tiercache::bench
