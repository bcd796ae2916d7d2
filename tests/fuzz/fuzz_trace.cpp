// Fuzz target: one trace reader (TIERCACHE_FUZZ_TRACE_FORMAT picks which at
// build time, one executable per format, each with its own corpus). Any
// bytes must parse or be refused with a Status; an accepted trace must
// serialise again, and re-parsing that must give the same records.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "prefetch/trace_io.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tiercache;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const TraceFormat format = TraceFormat::TIERCACHE_FUZZ_TRACE_FORMAT;
  (void)DetectTraceFormat(bytes);
  Result<Trace> trace = ParseTrace(bytes, format);
  if (!trace.ok()) return 0;
  for (const TraceRecord& record : trace->records) {
    if (record.id == kInvalidBlockId) std::abort();
  }
  Result<std::string> again = SerializeTrace(*trace, format);
  if (!again.ok()) return 0;  // e.g. oracleGeneral's 32-bit fields
  Result<Trace> reparsed = ParseTrace(*again, format);
  if (!reparsed.ok() || reparsed->records.size() != trace->records.size()) std::abort();
  for (size_t i = 0; i < trace->records.size(); ++i) {
    if (reparsed->records[i].id != trace->records[i].id ||
        reparsed->records[i].bytes != trace->records[i].bytes) {
      std::abort();
    }
  }
  return 0;
}
