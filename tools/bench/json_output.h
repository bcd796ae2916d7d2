// JSON output of a Report (--json) and the small writer behind it.
//
// The schema is documented in docs/bench.md. Every ratio is written next to
// the counts it comes from (hits, requests_reaching, ...) so a reader can
// recompute it; byte counts are integers, times are integer nanoseconds,
// bandwidths are bytes per second.
//
// Thread safety: JsonWriter is a value used by one thread; the functions are
// pure apart from writing the file.
#ifndef TIERCACHE_TOOLS_BENCH_JSON_OUTPUT_H_
#define TIERCACHE_TOOLS_BENCH_JSON_OUTPUT_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "tools/bench/report.h"

namespace tiercache::bench {

// Builds compact JSON text; commas are placed automatically. Keys are only
// allowed directly inside objects (TC_CHECK otherwise).
class JsonWriter {
 public:
  JsonWriter& BeginObject();
  JsonWriter& EndObject();
  JsonWriter& BeginArray();
  JsonWriter& EndArray();
  JsonWriter& Key(std::string_view key);
  JsonWriter& String(std::string_view value);
  JsonWriter& Uint(uint64_t value);
  JsonWriter& Double(double value);  // non-finite values are written as null
  JsonWriter& Bool(bool value);
  JsonWriter& Null();

  // REQUIRES: every object and array has been closed.
  const std::string& text() const;

 private:
  void BeforeValue();
  void AppendQuoted(std::string_view value);
  std::string text_;
  std::vector<char> open_;        // '{' or '['
  std::vector<bool> has_member_;  // per open container
  bool after_key_ = false;
};

std::string ReportToJson(const Report& report);
Status WriteReportJson(const Report& report, const std::string& path);

}  // namespace tiercache::bench

#endif  // TIERCACHE_TOOLS_BENCH_JSON_OUTPUT_H_
