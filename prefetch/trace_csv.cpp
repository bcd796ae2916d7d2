#include "prefetch/trace_csv.h"

#include <charconv>
#include <vector>

namespace tiercache {

namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> Split(std::string_view line) {
  std::vector<std::string_view> fields;
  size_t start = 0;
  while (true) {
    const size_t comma = line.find(',', start);
    fields.push_back(Trim(line.substr(start, comma == std::string_view::npos ? comma : comma - start)));
    if (comma == std::string_view::npos) return fields;
    start = comma + 1;
  }
}

bool ParseUint(std::string_view text, uint64_t* value) {
  if (text.empty()) return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *value);
  return ec == std::errc() && end == text.data() + text.size();
}

Status LineError(size_t line, const std::string& what) {
  return Status::InvalidArgument("trace line " + std::to_string(line) + ": " + what);
}

Status FieldError(size_t line, const char* field, std::string_view text) {
  return LineError(line, std::string(field) + " '" + std::string(text.substr(0, 40)) +
                             "' is not an unsigned 64-bit integer");
}

// Parses the first line of tiercache-csv: the banner and its id limit.
Status ParseBanner(std::string_view line, Trace* trace) {
  line = Trim(line);
  if (line.substr(0, kTiercacheCsvBanner.size()) != kTiercacheCsvBanner) {
    return Status::Corruption("trace line 1: expected '" + std::string(kTiercacheCsvBanner) + "'");
  }
  std::string_view rest = Trim(line.substr(kTiercacheCsvBanner.size()));
  if (rest.empty()) return Status::Ok();
  constexpr std::string_view kLimit = "id_limit=";
  if (rest.substr(0, kLimit.size()) != kLimit || !ParseUint(rest.substr(kLimit.size()), &trace->id_limit)) {
    return Status::Corruption("trace line 1: bad banner suffix '" + std::string(rest.substr(0, 40)) + "'");
  }
  return Status::Ok();
}

Result<TraceOp> ParseOp(std::string_view text) {
  if (text == "read") return TraceOp::kRead;
  if (text == "write") return TraceOp::kWrite;
  if (text == "free") return TraceOp::kFree;
  return Status::InvalidArgument("op '" + std::string(text.substr(0, 40)) +
                                 "' is not read, write or free");
}

const char* OpName(TraceOp op) {
  switch (op) {
    case TraceOp::kRead: return "read";
    case TraceOp::kWrite: return "write";
    case TraceOp::kFree: return "free";
  }
  return "read";
}

Status ParseRow(const std::vector<std::string_view>& f, size_t line, bool ours, Trace* trace) {
  const size_t want = ours ? 5 : 3;
  if (f.size() != want) {
    return LineError(line, "expected " + std::to_string(want) + " comma-separated fields (" +
                               (ours ? "time_ns,block_id,bytes,op,phase" : "timestamp,obj_id,obj_size") +
                               "), found " + std::to_string(f.size()));
  }
  TraceRecord r;
  if (!ParseUint(f[0], &r.time_ns)) return FieldError(line, "timestamp", f[0]);
  if (!ParseUint(f[1], &r.id)) return FieldError(line, "id", f[1]);
  if (!ParseUint(f[2], &r.bytes)) return FieldError(line, "size", f[2]);
  if (ours) {
    Result<TraceOp> op = ParseOp(f[3]);
    if (!op.ok()) return LineError(line, op.status().message());
    r.op = *op;
    uint64_t phase = 0;
    if (!ParseUint(f[4], &phase) || phase > UINT32_MAX) return LineError(line, "phase out of range");
    r.phase = static_cast<uint32_t>(phase);
  }
  if (r.id == kInvalidBlockId) return LineError(line, "id 2^64-1 is reserved");
  if (trace->id_limit != 0 && r.id >= trace->id_limit) {
    return LineError(line, "id " + std::to_string(r.id) + " is out of range (id_limit " +
                               std::to_string(trace->id_limit) + ")");
  }
  if (r.bytes == 0 && r.op != TraceOp::kFree) return LineError(line, "size 0");
  trace->records.push_back(r);
  return Status::Ok();
}

}  // namespace

Result<Trace> ParseCsvTrace(std::string_view text, bool ours) {
  Trace trace;
  size_t line_number = 0;
  bool header_allowed = true;
  while (!text.empty()) {
    const size_t newline = text.find('\n');
    std::string_view line = text.substr(0, newline);
    text.remove_prefix(newline == std::string_view::npos ? text.size() : newline + 1);
    ++line_number;
    if (line.find('\0') != std::string_view::npos) {
      return Status::Corruption("trace line " + std::to_string(line_number) + ": binary data in a text trace");
    }
    if (line_number == 1 && ours) {
      TC_RETURN_IF_ERROR(ParseBanner(line, &trace));
      continue;
    }
    line = Trim(line);
    if (line.empty() || line.front() == '#') continue;
    std::vector<std::string_view> fields = Split(line);
    // One column-name line may precede the data.
    if (header_allowed && !fields.empty() && !fields[0].empty() &&
        (fields[0].front() < '0' || fields[0].front() > '9')) {
      header_allowed = false;
      continue;
    }
    header_allowed = false;
    TC_RETURN_IF_ERROR(ParseRow(fields, line_number, ours, &trace));
  }
  return trace;
}

std::string SerializeCsvTrace(const Trace& trace, bool ours) {
  std::string out;
  if (ours) {
    out += kTiercacheCsvBanner;
    if (trace.id_limit != 0) out += " id_limit=" + std::to_string(trace.id_limit);
    out += "\ntime_ns,block_id,bytes,op,phase\n";
  } else {
    out += "timestamp,obj_id,obj_size\n";
  }
  for (const TraceRecord& r : trace.records) {
    if (!ours && r.op != TraceOp::kRead) continue;
    out += std::to_string(r.time_ns) + ',' + std::to_string(r.id) + ',' + std::to_string(r.bytes);
    if (ours) out += std::string(",") + OpName(r.op) + ',' + std::to_string(r.phase);
    out += '\n';
  }
  return out;
}

}  // namespace tiercache
