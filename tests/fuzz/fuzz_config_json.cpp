// Fuzz target: the runtime's JSON config parser (what TIERCACHE_CONFIG files
// and tiercache_config_load_file go through). Any text must apply or be
// refused; a config that applies and validates must print as JSON that
// applies again to the same config.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "runtime/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tiercache;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  RuntimeConfig config;
  if (!ApplyConfigJson(text, &config).ok()) return 0;
  if (!ValidateConfig(config).ok()) return 0;
  const std::string json = ConfigToJson(config);
  RuntimeConfig again;
  if (!ApplyConfigJson(json, &again).ok()) std::abort();
  if (ConfigToJson(again) != json) std::abort();
  return 0;
}
