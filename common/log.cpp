#include "common/log.h"

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

#include "common/check.h"

namespace tiercache {
namespace {

LogLevel LevelFromEnvironment() {
  const char* value = std::getenv("TIERCACHE_LOG");
  if (value == nullptr) return LogLevel::kWarn;
  if (std::strcmp(value, "error") == 0) return LogLevel::kError;
  if (std::strcmp(value, "info") == 0) return LogLevel::kInfo;
  if (std::strcmp(value, "debug") == 0) return LogLevel::kDebug;
  return LogLevel::kWarn;
}

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kError: return "error";
    case LogLevel::kWarn: return "warning";
    case LogLevel::kInfo: return "info";
    case LogLevel::kDebug: return "debug";
  }
  return "";
}

struct FallbackRegistry {
  std::mutex mutex;
  std::map<std::string, FallbackEvent> events;
};

FallbackRegistry& Registry() {
  static FallbackRegistry* registry = new FallbackRegistry();  // never destroyed: usable at exit
  return *registry;
}

}  // namespace

bool LogEnabled(LogLevel level) {
  static const LogLevel threshold = LevelFromEnvironment();
  return static_cast<int>(level) <= static_cast<int>(threshold);
}

void Log(LogLevel level, const char* format, ...) {
  if (!LogEnabled(level)) return;
  char line[1024];
  va_list args;
  va_start(args, format);
  std::vsnprintf(line, sizeof(line), format, args);
  va_end(args);
  std::fprintf(stderr, "tiercache: %s: %s\n", LevelName(level), line);
}

void RecordFallback(const std::string& name, const std::string& reason) {
  FallbackRegistry& registry = Registry();
  bool first = false;
  {
    std::lock_guard<std::mutex> lock(registry.mutex);
    FallbackEvent& event = registry.events[name];
    if (event.count == 0) {
      event.name = name;
      event.reason = reason;
      first = true;
    }
    ++event.count;
  }
  if (first) Log(LogLevel::kWarn, "fallback %s: %s", name.c_str(), reason.c_str());
}

std::vector<FallbackEvent> Fallbacks() {
  FallbackRegistry& registry = Registry();
  std::lock_guard<std::mutex> lock(registry.mutex);
  std::vector<FallbackEvent> out;
  for (const auto& entry : registry.events) out.push_back(entry.second);
  return out;
}

void ThrowLogicError(const char* file, int line, const char* condition,
                     const std::string& message) {
  std::string what = std::string(file) + ":" + std::to_string(line) + ": ";
  if (condition[0] != '\0') what += std::string("check failed: ") + condition + ": ";
  what += message;
  throw LogicError(what);
}

}  // namespace tiercache
