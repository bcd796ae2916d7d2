#include "tools/bench/table.h"

#include <algorithm>
#include <cstdio>
#include <sstream>

#include "common/check.h"
#include "common/units.h"

namespace tiercache::bench {
namespace {

std::string Fixed(double value, int decimals) {
  char buffer[48];
  std::snprintf(buffer, sizeof(buffer), "%.*f", decimals, value);
  return buffer;
}

std::string Gigabytes(double bytes_per_second) {
  return bytes_per_second > 0 ? Fixed(bytes_per_second / 1e9, 2) : "-";
}

std::string TierTable(const Report& report) {
  TextTable table({"tier", "capacity", "reaching", "hits", "hit% of all", "hit% of reaching",
                   "bytes up", "bytes down", "evictions", "stall ms", "GB/s", "peak GB/s",
                   "% of peak"});
  for (const TierReport& tier : report.tiers) {
    bool reached = tier.requests_reaching > 0;
    table.AddRow({tier.name, FormatBytes(tier.capacity_bytes), std::to_string(tier.requests_reaching),
                  std::to_string(tier.hits), FormatPercent(tier.GlobalHitRatio(report.requests)),
                  FormatPercent(tier.LocalHitRatio(), reached), FormatBytes(tier.bytes_up),
                  FormatBytes(tier.bytes_down), std::to_string(tier.evictions),
                  Fixed(static_cast<double>(tier.stall_ns) / 1e6, 1),
                  Gigabytes(tier.AchievedBytesPerSecond()), Gigabytes(tier.link.bytes_per_second),
                  FormatPercent(tier.FractionOfPeak(), tier.transfer_ns > 0 &&
                                                           tier.link.bytes_per_second > 0)});
  }
  return table.Render();
}

std::string PolicyTable(const Report& report) {
  std::vector<std::string> header = {"cache size"};
  for (const PolicyCurve& curve : report.curves) header.push_back(curve.policy);
  TextTable table(header);
  size_t rows = 0;
  for (const PolicyCurve& curve : report.curves) rows = std::max(rows, curve.points.size());
  for (size_t row = 0; row < rows; ++row) {
    std::vector<std::string> cells;
    const PolicyPoint* first = nullptr;
    for (const PolicyCurve& curve : report.curves) {
      if (row < curve.points.size() && first == nullptr) first = &curve.points[row];
    }
    cells.push_back(FormatBytes(first->cache_bytes) + " (" +
                    Fixed(first->fraction_of_working_set * 100, 0) + "%)");
    for (const PolicyCurve& curve : report.curves) {
      cells.push_back(row < curve.points.size() ? FormatPercent(curve.points[row].HitRatio()) : "-");
    }
    table.AddRow(cells);
  }
  return table.Render();
}

std::string PrefetchLine(const PrefetchReport& prefetch) {
  if (!prefetch.enabled) return "prefetch: off\n";
  std::ostringstream out;
  out << "prefetch: " << prefetch.issued << " issued; accuracy "
      << FormatPercent(prefetch.Accuracy(), prefetch.issued > 0) << " (used / issued), coverage "
      << FormatPercent(prefetch.Coverage(), prefetch.useful + prefetch.demand_misses > 0)
      << " (misses avoided), late " << FormatPercent(prefetch.Lateness(), prefetch.useful > 0)
      << " (of used), wasted " << FormatBytes(prefetch.wasted_bytes);
  if (prefetch.lookahead > 0) out << ", lookahead " << prefetch.lookahead << " blocks (derived)";
  out << "\n";
  return out.str();
}

std::string StepLine(const Report& report) {
  if (report.step_times.empty()) return "";
  std::vector<double> parts = report.MeanStepMillisecondsByTier();
  std::ostringstream out;
  out << "time per step: " << Fixed(report.MeanStepMilliseconds(), 2) << " ms = ";
  for (size_t i = 0; i < report.tiers.size(); ++i) {
    out << "waiting on " << report.tiers[i].name << " " << Fixed(parts[i], 2) << " + ";
  }
  out << "compute " << Fixed(parts.back(), 2) << " (mean of " << report.step_times.size()
      << (report.step_times.size() == 1 ? " step)\n" : " steps)\n");
  return out.str();
}

}  // namespace

TextTable::TextTable(std::vector<std::string> header) { rows_.push_back(std::move(header)); }

void TextTable::AddRow(std::vector<std::string> row) {
  TC_CHECK(row.size() == rows_.front().size(), "row width differs from the header");
  rows_.push_back(std::move(row));
}

std::string TextTable::Render() const {
  std::vector<size_t> widths(rows_.front().size(), 0);
  for (const auto& row : rows_) {
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  std::string out;
  for (size_t r = 0; r < rows_.size(); ++r) {
    std::string line;
    for (size_t i = 0; i < widths.size(); ++i) {
      const std::string& cell = rows_[r][i];
      std::string pad(widths[i] - cell.size(), ' ');
      line += i == 0 ? cell + pad : "  " + pad + cell;
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
    if (r == 0) {
      size_t total = 0;
      for (size_t width : widths) total += width + 2;
      out += std::string(total - 2, '-') + "\n";
    }
  }
  return out;
}

std::string FormatPercent(double ratio, bool defined) {
  if (!defined) return "-";
  return Fixed(ratio * 100.0, 1) + "%";
}

std::string RenderReport(const Report& report) {
  std::ostringstream out;
  out << "tiercache-bench " << report.mode << ": " << report.workload << "\n";
  out << report.requests << " requests over " << report.unique_blocks << " blocks ("
      << FormatBytes(report.working_set_bytes) << " working set";
  if (report.steps > 0) out << ", " << report.steps << (report.steps == 1 ? " step" : " steps");
  out << ")";
  if (!report.device.empty()) out << " on " << report.device;
  if (!report.policy.empty()) out << ", GPU policy " << report.policy;
  out << ", " << Fixed(report.wall_seconds, 2) << " s\n\n";
  if (!report.tiers.empty()) {
    out << TierTable(report);
    out << "hit% of all = hits / all requests; hit% of reaching = hits / requests that missed "
           "every faster tier.\n";
    out << "bytes up = promoted toward the GPU from this tier, bytes down = written into it; GB/s = bytes over\n"
           "the tier's link (gpu: host->gpu copies; others: reads toward the GPU) / time moving them.\n\n";
    out << PrefetchLine(report.prefetch);
    if (report.belady_hit_ratio) {
      double gap = *report.belady_hit_ratio - report.GpuHitRatio();
      out << "Belady's MIN at the GPU capacity: " << FormatPercent(*report.belady_hit_ratio)
          << " hits; achieved " << FormatPercent(report.GpuHitRatio()) << " (gap "
          << Fixed(gap * 100.0, 1) << " points)";
      if (report.prefetch.enabled && report.prefetch.issued > 0) {
        out << "; MIN fetches on demand, the run prefetched (its hits include prefetched blocks)";
      }
      out << "\n";
    }
    out << StepLine(report);
  }
  if (!report.curves.empty()) {
    if (!report.tiers.empty()) out << "\n";
    out << "hit ratio by cache size (simulated, GPU tier):\n" << PolicyTable(report);
  }
  for (const std::string& fallback : report.fallbacks) out << "fallback: " << fallback << "\n";
  for (const std::string& note : report.notes) out << "note: " << note << "\n";
  return out.str();
}

}  // namespace tiercache::bench
