#include "tools/preload/preload_options.h"

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "common/units.h"

extern char** environ;

namespace tiercache::preload {
namespace {

const char kPrefix[] = "TIERCACHE_";

std::string Upper(const std::string& text) {
  std::string out = text;
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

// 1/0, true/false, yes/no, on/off (any case).
bool ParseBool(const std::string& text, bool* out) {
  std::string v = Upper(text);
  if (v == "1" || v == "TRUE" || v == "YES" || v == "ON") return *out = true, true;
  if (v == "0" || v == "FALSE" || v == "NO" || v == "OFF") return *out = false, true;
  return false;
}

bool ParseCount(const std::string& text, int64_t min, int64_t max, int64_t* out) {
  if (text.empty()) return false;
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(text.c_str(), &end, 10);
  if (errno != 0 || *end != '\0' || v < min || v > max) return false;
  *out = v;
  return true;
}

bool ParsePositiveDouble(const std::string& text, double* out) {
  if (text.empty()) return false;
  errno = 0;
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  if (errno != 0 || *end != '\0' || !(v > 0) || v > 1e6) return false;
  *out = v;
  return true;
}

bool ParseSize(const std::string& text, uint64_t min, uint64_t* out) {
  Result<uint64_t> v = ParseBytes(text);
  if (!v.ok() || v.value() < min) return false;
  *out = v.value();
  return true;
}

// The default's text in the runtime config's JSON ("gpu_policy": "lru").
std::string RuntimeDefault(const std::string& field, const RuntimeConfig& defaults) {
  std::string json = ConfigToJson(defaults);
  std::string key = "\"" + field + "\":";
  size_t at = json.find(key);
  if (at == std::string::npos) return "its default";
  size_t begin = at + key.size();
  while (begin < json.size() && json[begin] == ' ') ++begin;
  size_t end = json.find_first_of(",}\n", begin);
  return json.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
}

bool AcceptedElsewhere(const std::string& name) {
  static const char* const kOthers[] = {"TIERCACHE_DEVICE", "TIERCACHE_LOG",
                                        "TIERCACHE_EMULATED_MEMORY", "TIERCACHE_CONFIG"};
  for (const char* other : kOthers) {
    if (name == other) return true;
  }
  return name.rfind("TIERCACHE_BENCH_", 0) == 0;
}

}  // namespace

const std::vector<VariableDoc>& PreloadVariableDocs() {
  static const std::vector<VariableDoc> docs = {
      {"TIERCACHE_TRACE", "(none)", "write the allocation and copy trace (tiercache-csv) to this path"},
      {"TIERCACHE_REPORT", "0", "1: print a one-screen summary at exit"},
      {"TIERCACHE_PRELOAD_ALLOC", "1", "0: pass every allocation through to CUDA"},
      {"TIERCACHE_STAGE", "1", "0: pass every pageable copy through to CUDA"},
      {"TIERCACHE_STAGE_MIN_BYTES", "4MiB", "smallest pageable host-to-device copy that is staged"},
      {"TIERCACHE_STAGE_CHUNK_BYTES", "16MiB", "size of one pinned staging buffer (at least 64KiB)"},
      {"TIERCACHE_STAGE_BUFFERS", "4", "pinned staging buffers in the ring (2..64)"},
      {"TIERCACHE_STAGE_THREADS", "0", "host copy threads; 0: the GPU node's cores, at most 16"},
      {"TIERCACHE_PAGEABLE_GBPS", "6.5", "the driver's pageable rate, for the report's time saved"},
      {"TIERCACHE_FREE_SYNC", "1", "0: cudaFree/cuMemFree of pooled memory skip the device sync"},
  };
  return docs;
}

std::map<std::string, std::string> ProcessTiercacheVariables() {
  std::map<std::string, std::string> out;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    if (std::strncmp(*e, kPrefix, sizeof(kPrefix) - 1) != 0) continue;
    const char* eq = std::strchr(*e, '=');
    if (eq == nullptr) continue;
    out.emplace(std::string(*e, static_cast<size_t>(eq - *e)), std::string(eq + 1));
  }
  return out;
}

ParsedOptions ParsePreloadOptions(const std::map<std::string, std::string>& variables) {
  ParsedOptions parsed;
  PreloadOptions& o = parsed.options;
  o.runtime.dram_bytes = 0;  // the library stages through its own ring; a DRAM tier only on request
  auto warn = [&](const std::string& name, const std::string& value, const std::string& fallback) {
    parsed.warnings.push_back("ignoring " + name + "='" + value + "': using the default " + fallback);
  };
  if (auto it = variables.find("TIERCACHE_CONFIG"); it != variables.end() && !it->second.empty()) {
    RuntimeConfig loaded = o.runtime;
    Status s = LoadConfigFile(it->second, &loaded);
    if (s.ok()) {
      o.runtime = loaded;
    } else {
      parsed.warnings.push_back("ignoring TIERCACHE_CONFIG='" + it->second + "' (" + s.message() +
                                "): using the built-in runtime settings");
    }
  }
  std::vector<std::string> fields = ConfigFieldNames();
  for (const auto& [name, value] : variables) {
    bool ok = true;
    std::string fallback;
    if (name == "TIERCACHE_TRACE") {
      o.trace_path = value;
    } else if (name == "TIERCACHE_REPORT") {
      ok = ParseBool(value, &o.report), fallback = "0";
    } else if (name == "TIERCACHE_PRELOAD_ALLOC") {
      ok = ParseBool(value, &o.route_allocations), fallback = "1";
    } else if (name == "TIERCACHE_STAGE") {
      ok = ParseBool(value, &o.stage_copies), fallback = "1";
    } else if (name == "TIERCACHE_FREE_SYNC") {
      ok = ParseBool(value, &o.free_synchronizes), fallback = "1";
    } else if (name == "TIERCACHE_STAGE_MIN_BYTES") {
      ok = ParseSize(value, 1, &o.stage_min_bytes), fallback = "4MiB";
    } else if (name == "TIERCACHE_STAGE_CHUNK_BYTES") {
      ok = ParseSize(value, 64ull << 10, &o.stage_chunk_bytes), fallback = "16MiB";
    } else if (name == "TIERCACHE_STAGE_BUFFERS") {
      ok = ParseCount(value, 2, 64, &o.stage_buffers), fallback = "4";
    } else if (name == "TIERCACHE_STAGE_THREADS") {
      ok = ParseCount(value, 0, 256, &o.stage_threads), fallback = "0";
    } else if (name == "TIERCACHE_PAGEABLE_GBPS") {
      ok = ParsePositiveDouble(value, &o.pageable_gbps), fallback = "6.5";
    } else if (AcceptedElsewhere(name)) {
      continue;
    } else {
      std::string field = name.substr(sizeof(kPrefix) - 1);
      for (char& c : field) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      bool known = false;
      for (const std::string& f : fields) known = known || f == field;
      if (!known) {
        parsed.warnings.push_back("ignoring unknown variable " + name +
                                  " (docs/preload.md lists the variables)");
        continue;
      }
      RuntimeConfig updated = o.runtime;
      if (SetConfigField(field, value, &updated).ok() && ValidateConfig(updated).ok()) {
        o.runtime = updated;
      } else {
        ok = false;
        RuntimeConfig defaults;
        defaults.dram_bytes = 0;
        fallback = RuntimeDefault(field, defaults);
      }
    }
    if (!ok) warn(name, value, fallback);
  }
  return parsed;
}

}  // namespace tiercache::preload
