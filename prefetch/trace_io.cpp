#include "prefetch/trace_io.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <unordered_map>

#include "prefetch/trace_csv.h"

namespace tiercache {

namespace {

// Explicit little-endian encoding: a trace written here reads the same on
// any host.
uint64_t Load(const unsigned char* p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

void Store(std::string* out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint64_t Fnv1a(const unsigned char* p, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

Status RecordError(uint64_t index, const std::string& what) {
  return Status::InvalidArgument("trace record " + std::to_string(index) + ": " + what);
}

Status CheckId(uint64_t index, BlockId id, uint64_t id_limit) {
  if (id == kInvalidBlockId) return RecordError(index, "id 2^64-1 is reserved");
  if (id_limit != 0 && id >= id_limit) {
    return RecordError(index, "id " + std::to_string(id) + " is out of range (id_limit " +
                                  std::to_string(id_limit) + ")");
  }
  return Status::Ok();
}

Result<Trace> ParseTiercache(std::string_view bytes) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  if (bytes.size() < kTraceHeaderBytes) {
    return Status::Corruption("trace truncated: " + std::to_string(bytes.size()) +
                              " bytes, the header alone is " + std::to_string(kTraceHeaderBytes));
  }
  if (std::memcmp(p, kTraceMagic, sizeof(kTraceMagic)) != 0) {
    return Status::Corruption("not a tiercache trace (bad magic)");
  }
  if (Fnv1a(p, 40) != Load(p + 40, 8)) return Status::Corruption("trace header checksum mismatch");
  const uint64_t version = Load(p + 8, 4);
  if (version != kTraceVersion) {
    return Status::Unsupported("trace version " + std::to_string(version) + " (this build reads " +
                               std::to_string(kTraceVersion) + ")");
  }
  if (Load(p + 12, 4) != kTraceRecordBytes) return Status::Corruption("trace record size is not 32");
  Trace trace;
  const uint64_t count = Load(p + 16, 8);
  trace.id_limit = Load(p + 24, 8);
  const uint64_t available = (bytes.size() - kTraceHeaderBytes) / kTraceRecordBytes;
  if (count > available) {
    return Status::Corruption("trace truncated at record " + std::to_string(available) + " of " +
                              std::to_string(count));
  }
  if (bytes.size() != kTraceHeaderBytes + count * kTraceRecordBytes) {
    return Status::Corruption("trace has " + std::to_string(bytes.size() - kTraceHeaderBytes -
                                                             count * kTraceRecordBytes) +
                              " bytes after its last record (" + std::to_string(count) + ")");
  }
  trace.records.reserve(count);
  for (uint64_t i = 0; i < count; ++i) {
    const unsigned char* r = p + kTraceHeaderBytes + i * kTraceRecordBytes;
    TraceRecord rec;
    rec.time_ns = Load(r, 8);
    rec.id = Load(r + 8, 8);
    rec.bytes = Load(r + 16, 8);
    const uint64_t op = r[24];
    if (op > static_cast<uint64_t>(TraceOp::kFree)) return RecordError(i, "op " + std::to_string(op) + " is unknown");
    if (Load(r + 25, 3) != 0) return RecordError(i, "reserved bytes are not zero");
    rec.op = static_cast<TraceOp>(op);
    rec.phase = static_cast<uint32_t>(Load(r + 28, 4));
    TC_RETURN_IF_ERROR(CheckId(i, rec.id, trace.id_limit));
    if (rec.bytes == 0 && rec.op != TraceOp::kFree) return RecordError(i, "size 0");
    trace.records.push_back(rec);
  }
  if (Fnv1a(p + kTraceHeaderBytes, count * kTraceRecordBytes) != Load(p + 32, 8)) {
    return Status::Corruption("trace record checksum mismatch (records were altered)");
  }
  return trace;
}

std::string SerializeTiercache(const Trace& trace) {
  std::string records;
  records.reserve(trace.records.size() * kTraceRecordBytes);
  for (const TraceRecord& r : trace.records) {
    Store(&records, r.time_ns, 8);
    Store(&records, r.id, 8);
    Store(&records, r.bytes, 8);
    Store(&records, static_cast<uint64_t>(r.op), 4);  // op byte + 3 reserved zero bytes
    Store(&records, r.phase, 4);
  }
  std::string out(kTraceMagic, sizeof(kTraceMagic));
  Store(&out, kTraceVersion, 4);
  Store(&out, kTraceRecordBytes, 4);
  Store(&out, trace.records.size(), 8);
  Store(&out, trace.id_limit, 8);
  Store(&out, Fnv1a(reinterpret_cast<const unsigned char*>(records.data()), records.size()), 8);
  Store(&out, Fnv1a(reinterpret_cast<const unsigned char*>(out.data()), 40), 8);
  return out + records;
}

Result<Trace> ParseOracleGeneral(std::string_view bytes) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  const uint64_t count = bytes.size() / kOracleGeneralRecordBytes;
  if (bytes.size() % kOracleGeneralRecordBytes != 0) {
    return Status::Corruption("oracleGeneral trace truncated: record " + std::to_string(count) +
                              " has " + std::to_string(bytes.size() % kOracleGeneralRecordBytes) +
                              " of 24 bytes");
  }
  Trace trace;
  trace.records.reserve(count);
  for (uint64_t i = 0; i < count; ++i) {
    const unsigned char* r = p + i * kOracleGeneralRecordBytes;
    TraceRecord rec;
    rec.time_ns = Load(r, 4);
    rec.id = Load(r + 4, 8);
    rec.bytes = Load(r + 12, 4);
    const auto next_vtime = static_cast<int64_t>(Load(r + 16, 8));
    TC_RETURN_IF_ERROR(CheckId(i, rec.id, 0));
    if (rec.bytes == 0) return RecordError(i, "size 0");
    if (next_vtime < -1) return RecordError(i, "next_access_vtime " + std::to_string(next_vtime) + " < -1");
    trace.records.push_back(rec);
  }
  return trace;
}

Result<std::string> SerializeOracleGeneral(const Trace& trace) {
  std::vector<const TraceRecord*> reads;
  for (const TraceRecord& r : trace.records) {
    if (r.op == TraceOp::kRead) reads.push_back(&r);
  }
  std::vector<int64_t> next(reads.size(), -1);
  std::unordered_map<BlockId, size_t> seen;
  for (size_t i = reads.size(); i-- > 0;) {
    auto [it, fresh] = seen.try_emplace(reads[i]->id, i);
    if (!fresh) {
      next[i] = static_cast<int64_t>(it->second);
      it->second = i;
    }
  }
  std::string out;
  out.reserve(reads.size() * kOracleGeneralRecordBytes);
  for (size_t i = 0; i < reads.size(); ++i) {
    if (reads[i]->time_ns > UINT32_MAX || reads[i]->bytes > UINT32_MAX) {
      return Status::InvalidArgument("record " + std::to_string(i) +
                                     ": oracleGeneral holds 32-bit timestamps and sizes");
    }
    Store(&out, reads[i]->time_ns, 4);
    Store(&out, reads[i]->id, 8);
    Store(&out, reads[i]->bytes, 4);
    Store(&out, static_cast<uint64_t>(next[i]), 8);
  }
  return out;
}

}  // namespace

Result<TraceFormat> ParseTraceFormat(std::string_view name) {
  if (name == "tiercache") return TraceFormat::kTiercache;
  if (name == "tiercache-csv") return TraceFormat::kTiercacheCsv;
  if (name == "oracleGeneral" || name == "oracle-general") return TraceFormat::kOracleGeneral;
  if (name == "csv") return TraceFormat::kCsv;
  return Status::InvalidArgument("unknown trace format '" + std::string(name.substr(0, 40)) +
                                 "' (expected tiercache, tiercache-csv, oracleGeneral or csv)");
}

std::string_view TraceFormatName(TraceFormat format) {
  switch (format) {
    case TraceFormat::kTiercache: return "tiercache";
    case TraceFormat::kTiercacheCsv: return "tiercache-csv";
    case TraceFormat::kOracleGeneral: return "oracleGeneral";
    case TraceFormat::kCsv: return "csv";
  }
  return "tiercache";
}

Result<TraceFormat> DetectTraceFormat(std::string_view bytes) {
  if (bytes.empty()) return Status::InvalidArgument("empty trace: cannot tell its format");
  if (bytes.size() >= sizeof(kTraceMagic) && std::memcmp(bytes.data(), kTraceMagic, sizeof(kTraceMagic)) == 0) {
    return TraceFormat::kTiercache;
  }
  if (bytes.substr(0, kTiercacheCsvBanner.size()) == kTiercacheCsvBanner) return TraceFormat::kTiercacheCsv;
  bool text = true;
  for (unsigned char c : bytes.substr(0, 4096)) {
    if (c < 0x20 && c != '\n' && c != '\r' && c != '\t') text = false;
    if (c >= 0x7f) text = false;
  }
  if (text) return TraceFormat::kCsv;
  if (bytes.size() % kOracleGeneralRecordBytes == 0) return TraceFormat::kOracleGeneral;
  return Status::InvalidArgument("unrecognised trace format (not tiercache, text, or 24-byte oracleGeneral records)");
}

Result<Trace> ParseTrace(std::string_view bytes, TraceFormat format) {
  switch (format) {
    case TraceFormat::kTiercache: return ParseTiercache(bytes);
    case TraceFormat::kTiercacheCsv: return ParseCsvTrace(bytes, /*ours=*/true);
    case TraceFormat::kOracleGeneral: return ParseOracleGeneral(bytes);
    case TraceFormat::kCsv: return ParseCsvTrace(bytes, /*ours=*/false);
  }
  return Status::InvalidArgument("unknown trace format");
}

Result<std::string> SerializeTrace(const Trace& trace, TraceFormat format) {
  switch (format) {
    case TraceFormat::kTiercache: return SerializeTiercache(trace);
    case TraceFormat::kTiercacheCsv: return SerializeCsvTrace(trace, /*ours=*/true);
    case TraceFormat::kOracleGeneral: return SerializeOracleGeneral(trace);
    case TraceFormat::kCsv: return SerializeCsvTrace(trace, /*ours=*/false);
  }
  return Status::InvalidArgument("unknown trace format");
}

Result<Trace> ReadTraceFile(const std::string& path, std::optional<TraceFormat> format) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) return Status::FromErrno(errno, "open trace " + path);
  std::string bytes;
  char buffer[1 << 16];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), file)) > 0) bytes.append(buffer, n);
  const bool failed = std::ferror(file) != 0;
  std::fclose(file);
  if (failed) return Status::IoError("read trace " + path);
  if (!format) {
    Result<TraceFormat> detected = DetectTraceFormat(bytes);
    if (!detected.ok()) return Status(detected.status().code(), path + ": " + detected.status().message());
    format = *detected;
  }
  Result<Trace> trace = ParseTrace(bytes, *format);
  if (!trace.ok()) return Status(trace.status().code(), path + ": " + trace.status().message());
  return trace;
}

Status WriteTraceFile(const std::string& path, const Trace& trace, TraceFormat format) {
  TC_ASSIGN_OR_RETURN(std::string bytes, SerializeTrace(trace, format));
  std::FILE* file = std::fopen(path.c_str(), "wb");
  if (file == nullptr) return Status::FromErrno(errno, "create trace " + path);
  const bool wrote = std::fwrite(bytes.data(), 1, bytes.size(), file) == bytes.size();
  const bool closed = std::fclose(file) == 0;
  if (!wrote || !closed) return Status::IoError("write trace " + path);
  return Status::Ok();
}

}  // namespace tiercache
