// Config file: the settings file tiercache-bench shares with the runtime.
//
// The format is the runtime's (runtime/config.h): one JSON object whose keys
// are setting names and whose values are strings, numbers or booleans
// ({"gpu_cache_bytes": "6GiB", "gpu_policy": "next-use"}). The reader returns
// the pairs in file order with each value as text, so the same parsers as
// for flags and environment variables apply and their messages match.
//
// Thread safety: pure functions apart from reading the file.
#ifndef TIERCACHE_TOOLS_BENCH_CONFIG_FILE_H_
#define TIERCACHE_TOOLS_BENCH_CONFIG_FILE_H_

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace tiercache::bench {

using ConfigEntries = std::vector<std::pair<std::string, std::string>>;

// kNotFound when the file cannot be opened; kInvalidArgument with the byte
// offset for malformed text or nested values.
Result<ConfigEntries> ReadConfigFile(const std::string& path);
Result<ConfigEntries> ParseConfigText(std::string_view text);

// True for keys the runtime understands (so a shared file is accepted even
// where this tool has no use for a key).
bool IsRuntimeConfigKey(const std::string& key);

}  // namespace tiercache::bench

#endif  // TIERCACHE_TOOLS_BENCH_CONFIG_FILE_H_
