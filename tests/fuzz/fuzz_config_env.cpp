// Fuzz target: the runtime's TIERCACHE_<KEY> environment parser. The input
// is lines of KEY=VALUE; each becomes a TIERCACHE_KEY variable (cleared
// again afterwards), then the environment is applied to a default config:
// it must apply or be refused, never crash. SetConfigField, which the C
// API's tiercache_config_set uses, sees the same pairs.
#include <stdlib.h>

#include <cctype>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tiercache;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> names;
  RuntimeConfig direct;
  while (!text.empty() && names.size() < 16) {
    const size_t end = std::min(text.find('\n'), text.size());
    std::string_view line = text.substr(0, end);
    text.remove_prefix(std::min(end + 1, text.size()));
    const size_t eq = line.find('=');
    if (eq == std::string_view::npos || eq == 0) continue;
    const std::string key(line.substr(0, eq)), value(line.substr(eq + 1));
    if (key.find('\0') != std::string::npos || value.find('\0') != std::string::npos) continue;
    std::string field = key;
    for (char& c : field) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    (void)SetConfigField(field, value, &direct);
    std::string name = "TIERCACHE_" + key;
    if (name == "TIERCACHE_CONFIG") continue;  // a path: the JSON target covers the file
    if (setenv(name.c_str(), value.c_str(), 1) == 0) names.push_back(name);
  }
  RuntimeConfig config;
  Status applied = ApplyConfigEnvironment(&config);
  if (applied.ok()) (void)ValidateConfig(config), (void)ConfigToJson(config);
  for (const std::string& name : names) unsetenv(name.c_str());
  return 0;
}
