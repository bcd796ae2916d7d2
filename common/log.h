// Logging: one line per event on stderr, prefixed "tiercache: ".
//
// The level comes from TIERCACHE_LOG (error, warn, info, debug; default warn),
// read once. RecordFallback() is how a part that drops to its fallback path
// (emulated device, pread pool, first-touch placement) says so: the first call
// for a given name logs a warning, every call is counted, and Fallbacks()
// returns them for the stats exporters.
//
// Thread safety: every function here may be called from any thread.
#ifndef TIERCACHE_COMMON_LOG_H_
#define TIERCACHE_COMMON_LOG_H_

#include <cstdint>
#include <string>
#include <vector>

namespace tiercache {

enum class LogLevel { kError = 0, kWarn = 1, kInfo = 2, kDebug = 3 };

bool LogEnabled(LogLevel level);
void Log(LogLevel level, const char* format, ...) __attribute__((format(printf, 2, 3)));

struct FallbackEvent {
  std::string name;    // e.g. "nvme.io_engine" or "device"
  std::string reason;  // the first reason given
  uint64_t count = 0;  // how many times it was taken
};

// Logs `name: reason` at warn level the first time `name` is seen.
void RecordFallback(const std::string& name, const std::string& reason);
std::vector<FallbackEvent> Fallbacks();

}  // namespace tiercache

#define TC_LOG_ERROR(...) ::tiercache::Log(::tiercache::LogLevel::kError, __VA_ARGS__)
#define TC_LOG_WARN(...) ::tiercache::Log(::tiercache::LogLevel::kWarn, __VA_ARGS__)
#define TC_LOG_INFO(...)                                                         \
  do {                                                                           \
    if (::tiercache::LogEnabled(::tiercache::LogLevel::kInfo))                   \
      ::tiercache::Log(::tiercache::LogLevel::kInfo, __VA_ARGS__);               \
  } while (0)
#define TC_LOG_DEBUG(...)                                                        \
  do {                                                                           \
    if (::tiercache::LogEnabled(::tiercache::LogLevel::kDebug))                  \
      ::tiercache::Log(::tiercache::LogLevel::kDebug, __VA_ARGS__);              \
  } while (0)

#endif  // TIERCACHE_COMMON_LOG_H_
