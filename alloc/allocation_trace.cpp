#include "alloc/allocation_trace.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <random>
#include <unordered_map>
#include <unordered_set>

namespace tiercache {
namespace {

// Splits `line` on spaces into at most 6 fields.
std::vector<std::string_view> Fields(std::string_view line) {
  std::vector<std::string_view> out;
  size_t at = 0;
  while (at < line.size() && out.size() < 6) {
    while (at < line.size() && (line[at] == ' ' || line[at] == '\t' || line[at] == '\r')) ++at;
    size_t end = at;
    while (end < line.size() && line[end] != ' ' && line[end] != '\t' && line[end] != '\r') ++end;
    if (end > at) out.push_back(line.substr(at, end - at));
    at = end;
  }
  return out;
}

bool ToNumber(std::string_view text, uint64_t* value) {
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), *value);
  return error == std::errc() && end == text.data() + text.size();
}

}  // namespace

std::string FormatTrace(const std::vector<TraceEvent>& trace) {
  std::string out = "# tiercache allocation trace: a <id> <bytes> <stream> <time_ns> | f <id> <stream> <time_ns>\n";
  for (const TraceEvent& event : trace) {
    if (event.op == TraceEvent::Op::kAlloc) {
      out += "a " + std::to_string(event.id) + " " + std::to_string(event.bytes) + " " +
             std::to_string(event.stream) + " " + std::to_string(event.time_ns) + "\n";
    } else {
      out += "f " + std::to_string(event.id) + " " + std::to_string(event.stream) + " " +
             std::to_string(event.time_ns) + "\n";
    }
  }
  return out;
}

Result<std::vector<TraceEvent>> ParseTrace(std::string_view text) {
  std::vector<TraceEvent> trace;
  size_t line_number = 0;
  while (!text.empty()) {
    size_t newline = text.find('\n');
    std::string_view line = text.substr(0, newline);
    text = newline == std::string_view::npos ? std::string_view() : text.substr(newline + 1);
    ++line_number;
    std::vector<std::string_view> fields = Fields(line);
    if (fields.empty() || fields[0][0] == '#') continue;
    auto bad = [&](const char* why) {
      return Status::InvalidArgument("trace line " + std::to_string(line_number) + ": " + why);
    };
    TraceEvent event;
    uint64_t stream = 0;
    bool ok;
    if (fields[0] == "a") {
      if (fields.size() != 5) return bad("expected 'a <id> <bytes> <stream> <time_ns>'");
      event.op = TraceEvent::Op::kAlloc;
      ok = ToNumber(fields[1], &event.id) && ToNumber(fields[2], &event.bytes) &&
           ToNumber(fields[3], &stream) && ToNumber(fields[4], &event.time_ns);
    } else if (fields[0] == "f") {
      if (fields.size() != 4) return bad("expected 'f <id> <stream> <time_ns>'");
      event.op = TraceEvent::Op::kFree;
      ok = ToNumber(fields[1], &event.id) && ToNumber(fields[2], &stream) &&
           ToNumber(fields[3], &event.time_ns);
    } else {
      return bad("unknown operation (expected 'a' or 'f')");
    }
    if (!ok) return bad("malformed number");
    if (stream > UINT32_MAX) return bad("stream index out of range");
    event.stream = static_cast<uint32_t>(stream);
    trace.push_back(event);
  }
  return trace;
}

Status ValidateTrace(const std::vector<TraceEvent>& trace) {
  std::unordered_set<uint64_t> live;
  for (size_t i = 0; i < trace.size(); ++i) {
    const TraceEvent& event = trace[i];
    std::string where = "trace event " + std::to_string(i) + " (id " + std::to_string(event.id) + ")";
    if (event.op == TraceEvent::Op::kAlloc) {
      if (event.bytes == 0) return Status::InvalidArgument(where + ": allocation of 0 bytes");
      if (!live.insert(event.id).second) return Status::InvalidArgument(where + ": id already live");
    } else if (live.erase(event.id) == 0) {
      return Status::InvalidArgument(where + ": free of an id that is not live");
    }
  }
  return Status::Ok();
}

uint64_t PeakRequestedBytes(const std::vector<TraceEvent>& trace) {
  std::unordered_map<uint64_t, uint64_t> live;
  uint64_t current = 0, peak = 0;
  for (const TraceEvent& event : trace) {
    if (event.op == TraceEvent::Op::kAlloc) {
      live[event.id] = event.bytes;
      current += event.bytes;
      peak = std::max(peak, current);
    } else if (auto it = live.find(event.id); it != live.end()) {
      current -= it->second;
      live.erase(it);
    }
  }
  return peak;
}

Result<ReplayResult> ReplayTrace(const std::vector<TraceEvent>& trace, const ReplayTarget& target) {
  TC_RETURN_IF_ERROR(ValidateTrace(trace));
  struct Live {
    void* pointer;
    uint32_t stream;
  };
  std::unordered_map<uint64_t, Live> live;
  live.reserve(trace.size() / 2 + 1);
  ReplayResult result;
  result.peak_requested_bytes = PeakRequestedBytes(trace);
  Status first_error;
  auto start = std::chrono::steady_clock::now();
  for (const TraceEvent& event : trace) {
    if (event.op == TraceEvent::Op::kAlloc) {
      Result<void*> pointer = target.allocate(event.bytes, event.stream);
      if (!pointer.ok()) {
        ++result.failures;
        continue;
      }
      live[event.id] = Live{*pointer, event.stream};
      ++result.allocations;
    } else {
      auto it = live.find(event.id);
      if (it == live.end()) continue;  // its allocation failed
      Status freed = target.free(it->second.pointer, event.stream);
      if (!freed.ok() && first_error.ok()) first_error = freed;
      live.erase(it);
      ++result.frees;
    }
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (target.peak_reserved_bytes) result.peak_reserved_bytes = target.peak_reserved_bytes();
  for (auto& [id, block] : live) (void)target.free(block.pointer, block.stream);
  if (result.peak_reserved_bytes > 0) {
    result.fragmentation_at_peak =
        1.0 - static_cast<double>(std::min(result.peak_requested_bytes, result.peak_reserved_bytes)) /
                  static_cast<double>(result.peak_reserved_bytes);
  }
  if (!first_error.ok()) return first_error;
  return result;
}

std::vector<TraceEvent> MakeInferenceTrace(const InferenceTraceOptions& options) {
  std::mt19937_64 random(options.seed);
  std::vector<TraceEvent> trace;
  uint64_t next_id = 1, clock = 0;
  auto alloc = [&](uint64_t bytes, uint32_t stream) {
    trace.push_back({TraceEvent::Op::kAlloc, next_id, bytes, stream, clock += 1000});
    return next_id++;
  };
  auto release = [&](uint64_t id, uint32_t stream) {
    trace.push_back({TraceEvent::Op::kFree, id, 0, stream, clock += 1000});
  };
  const uint64_t token_bytes = options.hidden * options.bytes_per_element;
  const uint64_t kv_bytes_per_token = 2 * token_bytes;  // K and V of one layer

  struct Sequence {
    int tokens = 0;
    int kv_capacity = 0;              // tokens the KV buffers hold
    std::vector<uint64_t> kv;         // one buffer per layer
  };
  std::vector<Sequence> batch;
  auto grow_kv = [&](Sequence& sequence) {
    int capacity = ((sequence.tokens + options.kv_growth_tokens) / options.kv_growth_tokens) *
                   options.kv_growth_tokens;
    for (int layer = 0; layer < options.layers; ++layer) {
      uint64_t fresh = alloc(static_cast<uint64_t>(capacity) * kv_bytes_per_token, 0);
      if (!sequence.kv.empty() && sequence.kv[layer] != 0) release(sequence.kv[layer], 0);  // copied over
      if (sequence.kv.size() < static_cast<size_t>(options.layers)) sequence.kv.resize(options.layers, 0);
      sequence.kv[layer] = fresh;
    }
    sequence.kv_capacity = capacity;
  };
  // Prefill of one sequence: the prompt staged on stream 1, then per layer
  // an activation and a workspace proportional to the prompt length.
  std::uniform_int_distribution<int> prompt(options.min_prompt_tokens, options.max_prompt_tokens);
  auto prefill = [&]() {
    Sequence sequence;
    sequence.tokens = prompt(random);
    uint64_t staging = alloc(static_cast<uint64_t>(sequence.tokens) * 8, 1);  // token ids
    uint64_t previous = alloc(static_cast<uint64_t>(sequence.tokens) * token_bytes, 0);
    release(staging, 1);
    grow_kv(sequence);
    for (int layer = 0; layer < options.layers; ++layer) {
      uint64_t workspace = alloc(static_cast<uint64_t>(sequence.tokens) * token_bytes * 4, 0);
      uint64_t output = alloc(static_cast<uint64_t>(sequence.tokens) * token_bytes, 0);
      release(workspace, 0);
      release(previous, 0);
      previous = output;
    }
    release(previous, 0);
    batch.push_back(std::move(sequence));
  };
  auto finish = [&](size_t index) {
    for (uint64_t id : batch[index].kv) release(id, 0);
    batch.erase(batch.begin() + static_cast<long>(index));
  };

  for (int i = 0; i < options.batch; ++i) prefill();
  std::uniform_real_distribution<double> coin(0.0, 1.0);
  for (int step = 0; step < options.decode_steps; ++step) {
    // The batch drifts by one: a sequence ends, and now and then none or two join.
    if (coin(random) < options.finish_probability && !batch.empty()) {
      finish(std::uniform_int_distribution<size_t>(0, batch.size() - 1)(random));
      int joining = static_cast<int>(batch.size()) < options.batch ? 1 + (coin(random) < 0.5)
                                                                   : (coin(random) < 0.5);
      for (int j = 0; j < joining; ++j) prefill();
    }
    uint64_t width = batch.size();
    uint64_t previous = alloc(width * token_bytes, 0);
    for (int layer = 0; layer < options.layers; ++layer) {
      uint64_t workspace = alloc(width * token_bytes * 4, 0);
      uint64_t output = alloc(width * token_bytes, 0);
      release(workspace, 0);
      release(previous, 0);
      previous = output;
    }
    release(previous, 0);
    for (Sequence& sequence : batch) {
      ++sequence.tokens;
      if (sequence.tokens >= sequence.kv_capacity) grow_kv(sequence);
    }
  }
  while (!batch.empty()) finish(batch.size() - 1);
  return trace;
}

}  // namespace tiercache
