#include "tools/bench/json_output.h"

#include <cmath>
#include <cstdio>
#include <fstream>

#include "common/check.h"

namespace tiercache::bench {

void JsonWriter::BeforeValue() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  TC_CHECK(open_.empty() || open_.back() == '[', "JSON object members need a Key() first");
  TC_CHECK(!open_.empty() || text_.empty(), "JSON text has one top-level value");
  if (!open_.empty()) {
    if (has_member_.back()) text_ += ',';
    has_member_.back() = true;
  }
}

void JsonWriter::AppendQuoted(std::string_view value) {
  text_ += '"';
  for (char c : value) {
    switch (c) {
      case '"': text_ += "\\\""; break;
      case '\\': text_ += "\\\\"; break;
      case '\n': text_ += "\\n"; break;
      case '\t': text_ += "\\t"; break;
      case '\r': text_ += "\\r"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char escaped[8];
          std::snprintf(escaped, sizeof(escaped), "\\u%04x", static_cast<unsigned>(c));
          text_ += escaped;
        } else {
          text_ += c;
        }
    }
  }
  text_ += '"';
}

JsonWriter& JsonWriter::BeginObject() {
  BeforeValue();
  text_ += '{';
  open_.push_back('{');
  has_member_.push_back(false);
  return *this;
}

JsonWriter& JsonWriter::EndObject() {
  TC_CHECK(!open_.empty() && open_.back() == '{' && !after_key_, "unbalanced EndObject");
  text_ += '}';
  open_.pop_back();
  has_member_.pop_back();
  return *this;
}

JsonWriter& JsonWriter::BeginArray() {
  BeforeValue();
  text_ += '[';
  open_.push_back('[');
  has_member_.push_back(false);
  return *this;
}

JsonWriter& JsonWriter::EndArray() {
  TC_CHECK(!open_.empty() && open_.back() == '[', "unbalanced EndArray");
  text_ += ']';
  open_.pop_back();
  has_member_.pop_back();
  return *this;
}

JsonWriter& JsonWriter::Key(std::string_view key) {
  TC_CHECK(!open_.empty() && open_.back() == '{' && !after_key_, "Key() outside an object");
  if (has_member_.back()) text_ += ',';
  has_member_.back() = true;
  AppendQuoted(key);
  text_ += ':';
  after_key_ = true;
  return *this;
}

JsonWriter& JsonWriter::String(std::string_view value) {
  BeforeValue();
  AppendQuoted(value);
  return *this;
}

JsonWriter& JsonWriter::Uint(uint64_t value) {
  BeforeValue();
  text_ += std::to_string(value);
  return *this;
}

JsonWriter& JsonWriter::Double(double value) {
  BeforeValue();
  if (!std::isfinite(value)) {
    text_ += "null";
    return *this;
  }
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.6g", value);
  text_ += buffer;
  return *this;
}

JsonWriter& JsonWriter::Bool(bool value) {
  BeforeValue();
  text_ += value ? "true" : "false";
  return *this;
}

JsonWriter& JsonWriter::Null() {
  BeforeValue();
  text_ += "null";
  return *this;
}

const std::string& JsonWriter::text() const {
  TC_CHECK(open_.empty() && !after_key_, "JSON text read before every container was closed");
  return text_;
}

namespace {

void WritePrefetch(JsonWriter& json, const PrefetchReport& prefetch) {
  json.BeginObject();
  json.Key("enabled").Bool(prefetch.enabled);
  json.Key("issued").Uint(prefetch.issued);
  json.Key("useful").Uint(prefetch.useful);
  json.Key("late").Uint(prefetch.late);
  json.Key("wasted_bytes").Uint(prefetch.wasted_bytes);
  json.Key("demand_misses").Uint(prefetch.demand_misses);
  json.Key("lookahead").Uint(prefetch.lookahead);
  json.Key("accuracy").Double(prefetch.Accuracy());
  json.Key("coverage").Double(prefetch.Coverage());
  json.Key("lateness").Double(prefetch.Lateness());
  json.EndObject();
}

void WriteTier(JsonWriter& json, const TierReport& tier, uint64_t all_requests) {
  json.BeginObject();
  json.Key("name").String(tier.name);
  json.Key("capacity_bytes").Uint(tier.capacity_bytes);
  json.Key("homed_bytes").Uint(tier.homed_bytes);
  json.Key("requests_reaching").Uint(tier.requests_reaching);
  json.Key("hits").Uint(tier.hits);
  json.Key("misses").Uint(tier.misses());
  json.Key("hit_ratio_of_all_requests").Double(tier.GlobalHitRatio(all_requests));
  json.Key("hit_ratio_of_requests_reaching").Double(tier.LocalHitRatio());
  json.Key("transfers_up").Uint(tier.transfers_up);
  json.Key("bytes_up").Uint(tier.bytes_up);
  json.Key("transfers_down").Uint(tier.transfers_down);
  json.Key("bytes_down").Uint(tier.bytes_down);
  json.Key("evictions").Uint(tier.evictions);
  json.Key("stall_ns").Uint(tier.stall_ns);
  json.Key("link_bytes").Uint(tier.link_bytes);
  json.Key("transfer_ns").Uint(tier.transfer_ns);
  json.Key("achieved_bytes_per_second").Double(tier.AchievedBytesPerSecond());
  json.Key("link").BeginObject();
  json.Key("name").String(tier.link.name);
  json.Key("peak_bytes_per_second").Double(tier.link.bytes_per_second);
  json.Key("source").String(tier.link.source);
  json.EndObject();
  json.Key("fraction_of_peak").Double(tier.FractionOfPeak());
  json.EndObject();
}

void WriteCurve(JsonWriter& json, const PolicyCurve& curve) {
  json.BeginObject();
  json.Key("policy").String(curve.policy);
  json.Key("points").BeginArray();
  for (const PolicyPoint& point : curve.points) {
    json.BeginObject();
    json.Key("cache_bytes").Uint(point.cache_bytes);
    json.Key("fraction_of_working_set").Double(point.fraction_of_working_set);
    json.Key("requests").Uint(point.requests);
    json.Key("hits").Uint(point.hits);
    json.Key("misses").Uint(point.misses);
    json.Key("bytes_missed").Uint(point.bytes_missed);
    json.Key("hit_ratio").Double(point.HitRatio());
    if (point.prefetch) {
      json.Key("prefetch");
      WritePrefetch(json, *point.prefetch);
    }
    json.EndObject();
  }
  json.EndArray();
  json.EndObject();
}

void WriteStrings(JsonWriter& json, const std::vector<std::string>& values) {
  json.BeginArray();
  for (const std::string& value : values) json.String(value);
  json.EndArray();
}

}  // namespace

std::string ReportToJson(const Report& report) {
  JsonWriter json;
  json.BeginObject();
  json.Key("tool").String("tiercache-bench");
  json.Key("schema_version").Uint(1);
  json.Key("mode").String(report.mode);
  json.Key("workload").String(report.workload);
  json.Key("device").String(report.device);
  json.Key("policy").String(report.policy);
  json.Key("requests").Uint(report.requests);
  json.Key("unique_blocks").Uint(report.unique_blocks);
  json.Key("working_set_bytes").Uint(report.working_set_bytes);
  json.Key("block_bytes").Uint(report.block_bytes);
  json.Key("steps").Uint(report.steps);
  json.Key("wall_seconds").Double(report.wall_seconds);
  json.Key("tiers").BeginArray();
  for (const TierReport& tier : report.tiers) WriteTier(json, tier, report.requests);
  json.EndArray();
  json.Key("prefetch");
  WritePrefetch(json, report.prefetch);
  json.Key("belady");
  if (report.belady_hit_ratio) {
    json.BeginObject();
    json.Key("min_hit_ratio").Double(*report.belady_hit_ratio);
    json.Key("achieved_hit_ratio").Double(report.GpuHitRatio());
    json.Key("gap").Double(*report.belady_hit_ratio - report.GpuHitRatio());
    json.EndObject();
  } else {
    json.Null();
  }
  json.Key("policies").BeginArray();
  for (const PolicyCurve& curve : report.curves) WriteCurve(json, curve);
  json.EndArray();
  json.Key("step_time").BeginObject();
  std::vector<double> means = report.MeanStepMillisecondsByTier();
  json.Key("steps_timed").Uint(report.step_times.size());
  json.Key("mean_ms").Double(report.MeanStepMilliseconds());
  json.Key("mean_ms_by_part").BeginObject();
  for (size_t i = 0; i < report.tiers.size(); ++i) json.Key(report.tiers[i].name).Double(means[i]);
  json.Key("compute").Double(means.back());
  json.EndObject();
  json.EndObject();
  json.Key("fallbacks");
  WriteStrings(json, report.fallbacks);
  json.Key("notes");
  WriteStrings(json, report.notes);
  json.EndObject();
  return json.text();
}

Status WriteReportJson(const Report& report, const std::string& path) {
  std::ofstream file(path, std::ios::trunc);
  if (!file) return Status::IoError("cannot write " + path);
  file << ReportToJson(report) << "\n";
  file.close();
  if (!file) return Status::IoError("short write to " + path);
  return Status::Ok();
}

}  // namespace tiercache::bench
