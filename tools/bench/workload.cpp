#include "tools/bench/workload.h"

#include <unordered_map>

#include "prefetch/trace_generators.h"
#include "prefetch/trace_io.h"

namespace tiercache::bench {

uint64_t Workload::WorkingSetBytes() const {
  uint64_t total = 0;
  for (uint64_t bytes : block_bytes) total += bytes;
  return total;
}

uint64_t Workload::UniformBlockBytes() const {
  if (block_bytes.empty()) return 0;
  for (uint64_t bytes : block_bytes) {
    if (bytes != block_bytes.front()) return 0;
  }
  return block_bytes.front();
}

Workload MakeWorkload(std::string description, Trace trace) {
  Workload workload;
  workload.description = std::move(description);
  std::unordered_map<BlockId, uint64_t> dense;
  uint32_t phase = 0;
  for (const TraceRecord& record : trace.records) {
    if (record.op != TraceOp::kRead) continue;
    auto [it, inserted] = dense.try_emplace(record.id, workload.block_bytes.size());
    if (inserted) workload.block_bytes.push_back(record.bytes);
    if (workload.requests.empty() || record.phase != phase) {
      workload.step_starts.push_back(workload.requests.size());
      phase = record.phase;
    }
    workload.requests.push_back(it->second);
  }
  workload.trace = std::move(trace);
  return workload;
}

Result<Workload> GenerateWorkload(const std::string& spec) {
  Result<Trace> trace = GenerateTrace(spec);
  if (!trace.ok()) {
    return Status::InvalidArgument("--workload " + spec + ": " + trace.status().message());
  }
  return MakeWorkload(spec, std::move(*trace));
}

Result<Workload> LoadTrace(const std::string& path, const std::string& format) {
  std::optional<TraceFormat> parsed;
  if (format != "auto") {
    Result<TraceFormat> named = ParseTraceFormat(format);
    if (!named.ok()) return Status::InvalidArgument("--trace-format: " + named.status().message());
    parsed = *named;
  }
  Result<Trace> trace = ReadTraceFile(path, parsed);
  if (!trace.ok()) {
    ErrorCode code = trace.status().code();
    // Whatever is wrong with the file, the user gave it: bad input.
    if (code != ErrorCode::kNotFound && code != ErrorCode::kInvalidArgument) code = ErrorCode::kCorruption;
    return Status(code, "--trace " + path + ": " + trace.status().message());
  }
  Workload workload = MakeWorkload(path, std::move(*trace));
  if (workload.requests.empty()) return Status::InvalidArgument("--trace " + path + ": no reads");
  return workload;
}

Status SaveTrace(const Workload& workload, const std::string& path, const std::string& format) {
  Result<TraceFormat> parsed = ParseTraceFormat(format);
  if (!parsed.ok()) return Status::InvalidArgument("--format: " + parsed.status().message());
  Status written = WriteTraceFile(path, workload.trace, *parsed);
  if (!written.ok() && written.code() == ErrorCode::kInvalidArgument) {
    return Status::InvalidArgument("--format " + format + ": " + written.message());
  }
  return written;
}

}  // namespace tiercache::bench
