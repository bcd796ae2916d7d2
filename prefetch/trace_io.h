// Trace formats: reading and writing traces on disk.
//
// Four formats (docs/traces.md has the byte layouts):
//   tiercache      our binary format: a 48-byte header (magic "TCTRACE\0",
//                  version, record size, record count, id limit, checksums)
//                  then 32-byte little-endian records.
//   tiercache-csv  our text format: "# tiercache trace v1 id_limit=N", a
//                  column header, then "time_ns,block_id,bytes,op,phase".
//   oracleGeneral  libCacheSim's binary records, 24 bytes packed: uint32
//                  timestamp, uint64 obj_id, uint32 obj_size, int64
//                  next_access_vtime (-1: never); no header.
//   csv            plain "timestamp,obj_id,obj_size" lines, with an
//                  optional header line.
//
// Parsers take untrusted bytes: they never crash, throw or allocate beyond
// what the input's length justifies, and report the first problem as a
// Status naming the record (0-based) or line (1-based): kCorruption for
// truncated or garbled data, kInvalidArgument for values out of range (size
// 0, reserved ids, ids at or above the declared limit), kUnsupported for a
// newer version, kInvalidArgument for an unknown format name.
//
// Thread safety: pure functions.
#ifndef TIERCACHE_PREFETCH_TRACE_IO_H_
#define TIERCACHE_PREFETCH_TRACE_IO_H_

#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"
#include "prefetch/trace.h"

namespace tiercache {

enum class TraceFormat { kTiercache, kTiercacheCsv, kOracleGeneral, kCsv };

constexpr char kTraceMagic[8] = {'T', 'C', 'T', 'R', 'A', 'C', 'E', '\0'};
constexpr uint32_t kTraceVersion = 1;
constexpr size_t kTraceHeaderBytes = 48;
constexpr size_t kTraceRecordBytes = 32;
constexpr size_t kOracleGeneralRecordBytes = 24;

// "tiercache", "tiercache-csv", "oracleGeneral" (or "oracle-general"), "csv".
Result<TraceFormat> ParseTraceFormat(std::string_view name);
std::string_view TraceFormatName(TraceFormat format);

// Guesses the format from the first bytes: our magic, our CSV banner, text
// (plain CSV), or a binary length that is a multiple of 24 (oracleGeneral).
Result<TraceFormat> DetectTraceFormat(std::string_view bytes);

Result<Trace> ParseTrace(std::string_view bytes, TraceFormat format);
// Reads a whole file; `format` nullopt detects it.
Result<Trace> ReadTraceFile(const std::string& path,
                            std::optional<TraceFormat> format = std::nullopt);

// Every format can be written. oracleGeneral gets its next_access_vtime
// computed, and (like csv) keeps only reads: it has no op or phase; its
// timestamps and sizes must fit in 32 bits (kInvalidArgument otherwise).
Result<std::string> SerializeTrace(const Trace& trace, TraceFormat format);
Status WriteTraceFile(const std::string& path, const Trace& trace, TraceFormat format);

}  // namespace tiercache

#endif  // TIERCACHE_PREFETCH_TRACE_IO_H_
