// The two text trace formats (see trace_io.h): used by trace_io.cpp, kept
// apart so each file stays one concern.
//
// Thread safety: pure functions.
#ifndef TIERCACHE_PREFETCH_TRACE_CSV_H_
#define TIERCACHE_PREFETCH_TRACE_CSV_H_

#include <string>
#include <string_view>

#include "common/status.h"
#include "prefetch/trace.h"

namespace tiercache {

constexpr std::string_view kTiercacheCsvBanner = "# tiercache trace v1";

// `ours` selects tiercache-csv (banner, five columns) over plain csv.
Result<Trace> ParseCsvTrace(std::string_view text, bool ours);
std::string SerializeCsvTrace(const Trace& trace, bool ours);

}  // namespace tiercache

#endif  // TIERCACHE_PREFETCH_TRACE_CSV_H_
