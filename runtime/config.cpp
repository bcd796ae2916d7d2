#include "runtime/config.h"

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <variant>

#include "codec/compression.h"
#include "runtime/json.h"

namespace tiercache {
namespace {

// One row per field: the table drives the JSON reader, the environment
// reader and the printer, so a new knob is added in one place.
enum class FieldType { kBytes, kInt, kBool, kString };

struct Field {
  const char* name;
  FieldType type;
  std::variant<uint64_t RuntimeConfig::*, int64_t RuntimeConfig::*, bool RuntimeConfig::*,
               std::string RuntimeConfig::*>
      member;
};

const std::vector<Field>& Fields() {
  using C = RuntimeConfig;
  static const std::vector<Field> fields = {
      {"device_ordinal", FieldType::kInt, &C::device_ordinal},
      {"gpu_budget_bytes", FieldType::kBytes, &C::gpu_budget_bytes},
      {"gpu_cache_bytes", FieldType::kBytes, &C::gpu_cache_bytes},
      {"gpu_policy", FieldType::kString, &C::gpu_policy},
      {"dram_bytes", FieldType::kBytes, &C::dram_bytes},
      {"numa_node", FieldType::kInt, &C::numa_node},
      {"dram_policy", FieldType::kString, &C::dram_policy},
      {"pmem_path", FieldType::kString, &C::pmem_path},
      {"pmem_bytes", FieldType::kBytes, &C::pmem_bytes},
      {"nvme_path", FieldType::kString, &C::nvme_path},
      {"nvme_bytes", FieldType::kBytes, &C::nvme_bytes},
      {"nvme_queue_depth", FieldType::kInt, &C::nvme_queue_depth},
      {"nvme_direct", FieldType::kBool, &C::nvme_direct},
      {"checkpoint_read_mode", FieldType::kString, &C::checkpoint_read_mode},
      {"checkpoint_queue_depth", FieldType::kInt, &C::checkpoint_queue_depth},
      {"checkpoint_pin_page_cache", FieldType::kString, &C::checkpoint_pin_page_cache},
      {"chunk_bytes", FieldType::kBytes, &C::chunk_bytes},
      {"staging_buffers", FieldType::kInt, &C::staging_buffers},
      {"verify_checksums", FieldType::kBool, &C::verify_checksums},
      {"io_retries", FieldType::kInt, &C::io_retries},
      {"demote_on_evict", FieldType::kBool, &C::demote_on_evict},
      {"cycle_plan", FieldType::kBool, &C::cycle_plan},
      {"prefetch", FieldType::kString, &C::prefetch},
      {"prefetch_lookahead", FieldType::kInt, &C::prefetch_lookahead},
      {"dram_prefetch_lookahead", FieldType::kInt, &C::dram_prefetch_lookahead},
      {"acquire_wait_ms", FieldType::kInt, &C::acquire_wait_ms},
      {"compression", FieldType::kString, &C::compression},
      {"activation_spill_to_nvme", FieldType::kBool, &C::activation_spill_to_nvme},
      {"activation_pending_bytes", FieldType::kBytes, &C::activation_pending_bytes},
  };
  return fields;
}

const Field* FindField(std::string_view name) {
  for (const Field& f : Fields()) {
    if (name == f.name) return &f;
  }
  return nullptr;
}

Result<int64_t> ParseInt(std::string_view text) {
  std::string s(text);
  if (s.empty()) return Status::InvalidArgument("empty integer");
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  if (errno == ERANGE || end == s.c_str() || *end != '\0') {
    return Status::InvalidArgument("not an integer: '" + s + "'");
  }
  return static_cast<int64_t>(v);
}

Result<bool> ParseBool(std::string_view text) {
  std::string s;
  for (char c : text) s += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (s == "1" || s == "true" || s == "yes" || s == "on") return true;
  if (s == "0" || s == "false" || s == "no" || s == "off") return false;
  return Status::InvalidArgument("not a boolean: '" + std::string(text) + "'");
}

Status SetFromText(const Field& field, std::string_view text, RuntimeConfig* config) {
  switch (field.type) {
    case FieldType::kBytes: {
      TC_ASSIGN_OR_RETURN(uint64_t v, ParseBytes(text));
      config->*std::get<uint64_t RuntimeConfig::*>(field.member) = v;
      return Status::Ok();
    }
    case FieldType::kInt: {
      TC_ASSIGN_OR_RETURN(int64_t v, ParseInt(text));
      config->*std::get<int64_t RuntimeConfig::*>(field.member) = v;
      return Status::Ok();
    }
    case FieldType::kBool: {
      TC_ASSIGN_OR_RETURN(bool v, ParseBool(text));
      config->*std::get<bool RuntimeConfig::*>(field.member) = v;
      return Status::Ok();
    }
    case FieldType::kString:
      config->*std::get<std::string RuntimeConfig::*>(field.member) = std::string(text);
      return Status::Ok();
  }
  return Status::Internal("config: unknown field type");
}

Status SetFromJson(const Field& field, const JsonValue& value, RuntimeConfig* config) {
  if (value.type() == JsonValue::Type::kString) {
    return SetFromText(field, value.text(), config);  // "64MiB", "true", a path
  }
  switch (field.type) {
    case FieldType::kBytes: {
      TC_ASSIGN_OR_RETURN(uint64_t v, value.AsUint64());
      config->*std::get<uint64_t RuntimeConfig::*>(field.member) = v;
      return Status::Ok();
    }
    case FieldType::kInt: {
      TC_ASSIGN_OR_RETURN(int64_t v, value.AsInt64());
      config->*std::get<int64_t RuntimeConfig::*>(field.member) = v;
      return Status::Ok();
    }
    case FieldType::kBool: {
      TC_ASSIGN_OR_RETURN(bool v, value.AsBool());
      config->*std::get<bool RuntimeConfig::*>(field.member) = v;
      return Status::Ok();
    }
    case FieldType::kString:
      return Status::InvalidArgument("expected a string");
  }
  return Status::Internal("config: unknown field type");
}

bool KnownPolicy(const std::string& name) {
  return name == "lru" || name == "arc" || name == "s3fifo" || name == "next-use";
}

}  // namespace

Status SetConfigField(std::string_view field, std::string_view value, RuntimeConfig* config) {
  const Field* f = FindField(field);
  if (f == nullptr) return Status::NotFound("config: unknown field '" + std::string(field) + "'");
  Status s = SetFromText(*f, value, config);
  if (!s.ok()) return Status(s.code(), "config: " + std::string(field) + ": " + s.message());
  return s;
}

Status ApplyConfigJson(std::string_view json, RuntimeConfig* config) {
  TC_ASSIGN_OR_RETURN(JsonValue root, ParseJson(json));
  if (!root.is_object()) return Status::InvalidArgument("config: the document must be an object");
  RuntimeConfig updated = *config;  // all or nothing
  for (const auto& [key, value] : root.members()) {
    const Field* f = FindField(key);
    if (f == nullptr) return Status::InvalidArgument("config: unknown key '" + key + "'");
    Status s = SetFromJson(*f, value, &updated);
    if (!s.ok()) return Status::InvalidArgument("config: " + key + ": " + s.message());
  }
  *config = std::move(updated);
  return Status::Ok();
}

Status LoadConfigFile(const std::string& path, RuntimeConfig* config) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::FromErrno(errno, "config: cannot open " + path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  Status s = ApplyConfigJson(buffer.str(), config);
  if (!s.ok()) return Status(s.code(), path + ": " + s.message());
  return s;
}

Status ApplyConfigEnvironment(RuntimeConfig* config) {
  RuntimeConfig updated = *config;
  if (const char* path = std::getenv("TIERCACHE_CONFIG"); path != nullptr && *path != '\0') {
    TC_RETURN_IF_ERROR(LoadConfigFile(path, &updated));
  }
  for (const Field& f : Fields()) {
    std::string var = "TIERCACHE_";
    for (const char* p = f.name; *p; ++p) {
      var += static_cast<char>(std::toupper(static_cast<unsigned char>(*p)));
    }
    if (const char* value = std::getenv(var.c_str()); value != nullptr) {
      Status s = SetFromText(f, value, &updated);
      if (!s.ok()) return Status(s.code(), "config: " + var + ": " + s.message());
    }
  }
  *config = std::move(updated);
  return Status::Ok();
}

Result<RuntimeConfig> ConfigFromEnvironment() {
  RuntimeConfig config;
  TC_RETURN_IF_ERROR(ApplyConfigEnvironment(&config));
  TC_RETURN_IF_ERROR(ValidateConfig(config));
  return config;
}

Status ValidateConfig(const RuntimeConfig& c) {
  if (!KnownPolicy(c.gpu_policy)) {
    return Status::InvalidArgument("config: gpu_policy '" + c.gpu_policy +
                                   "' is not one of lru, arc, s3fifo, next-use");
  }
  if (!KnownPolicy(c.dram_policy)) {
    return Status::InvalidArgument("config: dram_policy '" + c.dram_policy +
                                   "' is not one of lru, arc, s3fifo, next-use");
  }
  if (Result<codec::Compression> mode = codec::ParseCompression(c.compression); !mode.ok()) {
    return Status::InvalidArgument("config: " + mode.status().message());
  }
  if (c.prefetch != "learn" && c.prefetch != "hints" && c.prefetch != "off") {
    return Status::InvalidArgument("config: prefetch '" + c.prefetch +
                                   "' is not one of learn, hints, off");
  }
  if (c.checkpoint_read_mode != "auto" && c.checkpoint_read_mode != "direct" &&
      c.checkpoint_read_mode != "buffered") {
    return Status::InvalidArgument("config: checkpoint_read_mode '" + c.checkpoint_read_mode +
                                   "' is not one of auto, direct, buffered");
  }
  if (c.checkpoint_pin_page_cache != "auto" && c.checkpoint_pin_page_cache != "on" &&
      c.checkpoint_pin_page_cache != "off") {
    return Status::InvalidArgument("config: checkpoint_pin_page_cache '" + c.checkpoint_pin_page_cache +
                                   "' is not auto, on or off");
  }
  if (c.checkpoint_queue_depth < 1 || c.checkpoint_queue_depth > 4096) {
    return Status::InvalidArgument("config: checkpoint_queue_depth must lie in [1, 4096]");
  }
  if (c.chunk_bytes < 64 * kKiB || c.chunk_bytes > 1 * kGiB) {
    return Status::InvalidArgument("config: chunk_bytes must lie in [64 KiB, 1 GiB]");
  }
  if (c.staging_buffers < 2 || c.staging_buffers > 64) {
    return Status::InvalidArgument("config: staging_buffers must lie in [2, 64]");
  }
  if (c.device_ordinal < 0) return Status::InvalidArgument("config: device_ordinal < 0");
  if (c.io_retries < 0 || c.io_retries > 16) {
    return Status::InvalidArgument("config: io_retries must lie in [0, 16]");
  }
  if (c.prefetch_lookahead < 0 || c.prefetch_lookahead > 1024) {
    return Status::InvalidArgument("config: prefetch_lookahead must lie in [0, 1024]");
  }
  if (c.dram_prefetch_lookahead < 0 || c.dram_prefetch_lookahead > 1024) {
    return Status::InvalidArgument("config: dram_prefetch_lookahead must lie in [0, 1024]");
  }
  if (c.nvme_queue_depth < 1 || c.nvme_queue_depth > 4096) {
    return Status::InvalidArgument("config: nvme_queue_depth must lie in [1, 4096]");
  }
  if (c.acquire_wait_ms < 0) return Status::InvalidArgument("config: acquire_wait_ms < 0");
  if (c.pmem_path.empty() != (c.pmem_bytes == 0)) {
    return Status::InvalidArgument("config: pmem_path and pmem_bytes go together");
  }
  if (c.nvme_path.empty() != (c.nvme_bytes == 0)) {
    return Status::InvalidArgument("config: nvme_path and nvme_bytes go together");
  }
  return Status::Ok();
}

std::string ConfigToJson(const RuntimeConfig& config) {
  JsonWriter w;
  w.BeginObject();
  for (const Field& f : Fields()) {
    w.Key(f.name);
    switch (f.type) {
      case FieldType::kBytes: w.Uint(config.*std::get<uint64_t RuntimeConfig::*>(f.member)); break;
      case FieldType::kInt: w.Int(config.*std::get<int64_t RuntimeConfig::*>(f.member)); break;
      case FieldType::kBool: w.Bool(config.*std::get<bool RuntimeConfig::*>(f.member)); break;
      case FieldType::kString:
        w.String(config.*std::get<std::string RuntimeConfig::*>(f.member));
        break;
    }
  }
  w.EndObject();
  return w.text();
}

std::vector<std::string> ConfigFieldNames() {
  std::vector<std::string> names;
  for (const Field& f : Fields()) names.emplace_back(f.name);
  return names;
}

}  // namespace tiercache
