// Command-line helpers the benchmark programs share. Plain C++17 and no
// tiercache header: engine_bench is built by nvcc on the public API alone.
#ifndef TIERCACHE_BENCH_BENCH_ARGS_H_
#define TIERCACHE_BENCH_BENCH_ARGS_H_

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

namespace tiercache::bench {

// The value of `arg` when it is "--key=value", else nullptr.
inline const char* FlagValue(const char* arg, const char* key) {
  const size_t n = std::strlen(key);
  if (std::strncmp(arg, "--", 2) != 0 || std::strncmp(arg + 2, key, n) != 0 || arg[2 + n] != '=') {
    return nullptr;
  }
  return arg + 3 + n;
}

// "key=value[,key=value...]" into pairs; false (and `out` untouched) when an
// item has no key or no '='.
inline bool ParseSettings(const std::string& list, std::vector<std::pair<std::string, std::string>>* out) {
  std::vector<std::pair<std::string, std::string>> settings;
  for (size_t at = 0; at <= list.size();) {
    const size_t comma = std::min(list.find(',', at), list.size());
    const std::string item = list.substr(at, comma - at);
    const size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0) return false;
    settings.emplace_back(item.substr(0, eq), item.substr(eq + 1));
    at = comma + 1;
  }
  *out = std::move(settings);
  return true;
}

}  // namespace tiercache::bench

#endif  // TIERCACHE_BENCH_BENCH_ARGS_H_
