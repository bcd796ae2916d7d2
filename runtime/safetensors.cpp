#include "runtime/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <unordered_map>
#include <unordered_set>

#include "runtime/json.h"

namespace tiercache {
namespace {

Status Bad(const std::string& label, const std::string& what) {
  return Status::InvalidArgument("safetensors: " + label + ": " + what);
}

// Reads exactly `bytes` at `offset`; kInvalidArgument when the file ends first.
Status ReadExactly(int fd, void* dst, uint64_t bytes, uint64_t offset, const std::string& path) {
  auto* out = static_cast<unsigned char*>(dst);
  uint64_t done = 0;
  while (done < bytes) {
    const ssize_t n = ::pread(fd, out + done, bytes - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno(errno, "safetensors: read " + path);
    if (n == 0) return Bad(path, "the file ends inside its header");
    done += static_cast<uint64_t>(n);
  }
  return Status::Ok();
}

// The file's bytes [0, limit) and its size; kNotFound when absent.
Status ReadPrefix(const std::string& path, uint64_t limit, std::string* out, uint64_t* size) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) return Status::NotFound("safetensors: no file " + path);
    return Status::FromErrno(err, "safetensors: open " + path);
  }
  struct stat st;
  Status s;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    s = Bad(path, "not a regular file");
  } else {
    *size = static_cast<uint64_t>(st.st_size);
    out->resize(std::min(limit, *size));
    s = ReadExactly(fd, out->data(), out->size(), 0, path);
  }
  ::close(fd);
  return s;
}

Result<uint64_t> Uint(const JsonValue& v, const std::string& label, const std::string& what) {
  Result<uint64_t> n = v.AsUint64();
  if (!n.ok()) return Bad(label, what + " is not a non-negative integer");
  return n;
}

Result<SafetensorsTensor> ParseEntry(const std::string& name, const JsonValue& entry,
                                     uint64_t data_offset, uint64_t data_bytes,
                                     const std::string& label) {
  const std::string where = "tensor '" + name + "'";
  if (!entry.is_object()) return Bad(label, where + " is not an object");
  const JsonValue* dtype = entry.Find("dtype");
  const JsonValue* shape = entry.Find("shape");
  const JsonValue* offsets = entry.Find("data_offsets");
  if (dtype == nullptr || dtype->type() != JsonValue::Type::kString) {
    return Bad(label, where + " has no dtype string");
  }
  if (shape == nullptr || shape->type() != JsonValue::Type::kArray) {
    return Bad(label, where + " has no shape array");
  }
  if (offsets == nullptr || offsets->type() != JsonValue::Type::kArray ||
      offsets->items().size() != 2) {
    return Bad(label, where + " has no data_offsets [begin, end]");
  }
  SafetensorsTensor t;
  t.name = name;
  t.dtype = dtype->text();
  Result<uint64_t> element = SafetensorsDtypeBytes(t.dtype);
  if (!element.ok()) return Bad(label, where + ": " + element.status().message());
  // Elements times element size, refusing any product past 2^64.
  uint64_t expected = *element;
  for (const JsonValue& dim : shape->items()) {
    TC_ASSIGN_OR_RETURN(uint64_t d, Uint(dim, label, where + ": a dimension"));
    t.shape.push_back(d);
    if (d != 0 && expected > UINT64_MAX / d) return Bad(label, where + ": its shape overflows");
    expected *= d;
  }
  TC_ASSIGN_OR_RETURN(uint64_t begin, Uint(offsets->items()[0], label, where + ": data begin"));
  TC_ASSIGN_OR_RETURN(uint64_t end, Uint(offsets->items()[1], label, where + ": data end"));
  if (begin > end) return Bad(label, where + ": data_offsets begin after they end");
  if (end > data_bytes) {
    return Bad(label, where + ": data_offsets end at " + std::to_string(end) + ", past the " +
                          std::to_string(data_bytes) + " data bytes of the file");
  }
  if (end - begin != expected) {
    return Bad(label, where + ": " + t.dtype + " of shape with " + std::to_string(expected) +
                          " bytes, but data_offsets hold " + std::to_string(end - begin));
  }
  t.begin = data_offset + begin;
  t.end = data_offset + end;
  return t;
}

}  // namespace

Result<uint64_t> SafetensorsDtypeBytes(std::string_view dtype) {
  static const std::unordered_map<std::string_view, uint64_t> kSizes = {
      {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E4M3", 1}, {"F8_E5M2", 1}, {"I16", 2},
      {"U16", 2},  {"F16", 2}, {"BF16", 2}, {"I32", 4},    {"U32", 4},     {"F32", 4},
      {"I64", 8},  {"U64", 8}, {"F64", 8}};
  auto it = kSizes.find(dtype);
  if (it == kSizes.end()) return Status::InvalidArgument("unknown dtype \"" + std::string(dtype) + "\"");
  return it->second;
}

Result<uint64_t> ParseSafetensorsLength(std::string_view first8, uint64_t file_size,
                                        const std::string& label) {
  if (first8.size() < 8 || file_size < 8) return Bad(label, "shorter than its 8-byte header length");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(first8[i]);
  if (n < 2) return Bad(label, "a header of " + std::to_string(n) + " bytes");
  if (n > kMaxSafetensorsHeaderBytes) {
    return Bad(label, "a header of " + std::to_string(n) + " bytes (at most " +
                          std::to_string(kMaxSafetensorsHeaderBytes) + ")");
  }
  if (n > file_size - 8) {
    return Bad(label, "the header (" + std::to_string(n) + " bytes) runs past the end of the " +
                          std::to_string(file_size) + "-byte file");
  }
  return n;
}

Result<SafetensorsHeader> ParseSafetensorsHeader(std::string_view json, uint64_t file_size,
                                                 const std::string& label) {
  if (json.empty() || json.front() != '{') return Bad(label, "the header is not a JSON object");
  if (file_size < 8 + json.size()) return Bad(label, "the header runs past the end of the file");
  Result<JsonValue> parsed = ParseJson(json);
  if (!parsed.ok()) return Bad(label, "header: " + parsed.status().message());
  if (!parsed->is_object()) return Bad(label, "the header is not a JSON object");
  SafetensorsHeader h;
  h.header_bytes = json.size();
  h.data_offset = 8 + json.size();
  const uint64_t data_bytes = file_size - h.data_offset;
  std::unordered_set<std::string_view> names;
  for (const auto& [name, value] : parsed->members()) {
    if (name == "__metadata__") {
      if (!value.is_object()) return Bad(label, "__metadata__ is not an object");
      for (const auto& [key, item] : value.members()) {
        if (item.type() != JsonValue::Type::kString) {
          return Bad(label, "__metadata__ entry '" + key + "' is not a string");
        }
        h.metadata.emplace_back(key, item.text());
      }
      continue;
    }
    if (name.empty()) return Bad(label, "a tensor with an empty name");
    if (!names.insert(name).second) return Bad(label, "tensor '" + name + "' appears twice");
    TC_ASSIGN_OR_RETURN(SafetensorsTensor t, ParseEntry(name, value, h.data_offset, data_bytes, label));
    h.tensors.push_back(std::move(t));
  }
  std::stable_sort(h.tensors.begin(), h.tensors.end(),
                   [](const SafetensorsTensor& a, const SafetensorsTensor& b) {
                     return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
                   });
  // Empty tensors own no byte; among the others each must start at or after
  // the end of the one before.
  const SafetensorsTensor* previous = nullptr;
  for (const SafetensorsTensor& t : h.tensors) {
    if (t.bytes() == 0) continue;
    if (previous != nullptr && t.begin < previous->end) {
      return Bad(label, "tensors '" + previous->name + "' and '" + t.name + "' overlap");
    }
    previous = &t;
  }
  return h;
}

Result<SafetensorsHeader> ParseSafetensorsFile(std::string_view bytes, uint64_t file_size,
                                               const std::string& label) {
  TC_ASSIGN_OR_RETURN(uint64_t n, ParseSafetensorsLength(bytes.substr(0, 8), file_size, label));
  if (bytes.size() < 8 + n) return Bad(label, "the header runs past the bytes given");
  return ParseSafetensorsHeader(bytes.substr(8, n), file_size, label);
}

Result<SafetensorsHeader> ReadSafetensorsHeader(const std::string& path) {
  std::string prefix;
  uint64_t size = 0;
  TC_RETURN_IF_ERROR(ReadPrefix(path, 8, &prefix, &size));
  TC_ASSIGN_OR_RETURN(uint64_t n, ParseSafetensorsLength(prefix, size, path));
  std::string all;
  TC_RETURN_IF_ERROR(ReadPrefix(path, 8 + n, &all, &size));
  return ParseSafetensorsFile(all, size, path);
}

Result<SafetensorsIndex> ParseSafetensorsIndex(std::string_view json, const std::string& label) {
  Result<JsonValue> parsed = ParseJson(json);
  if (!parsed.ok()) return Bad(label, parsed.status().message());
  const JsonValue* map = parsed->is_object() ? parsed->Find("weight_map") : nullptr;
  if (map == nullptr || !map->is_object()) return Bad(label, "no weight_map object");
  if (map->members().empty()) return Bad(label, "an empty weight_map");
  SafetensorsIndex index;
  std::unordered_map<std::string, size_t> shard_of;
  std::unordered_set<std::string_view> names;
  for (const auto& [name, value] : map->members()) {
    if (value.type() != JsonValue::Type::kString) {
      return Bad(label, "weight_map entry '" + name + "' is not a file name");
    }
    const std::string& file = value.text();
    if (file.empty() || file.find('/') != std::string::npos || file == "." || file == "..") {
      return Bad(label, "weight_map entry '" + name + "' names \"" + file +
                            "\", not a file beside the index");
    }
    if (!names.insert(name).second) return Bad(label, "tensor '" + name + "' appears twice");
    auto [it, added] = shard_of.emplace(file, index.shards.size());
    if (added) index.shards.push_back(file);
    index.weight_map.emplace_back(name, it->second);
  }
  return index;
}

Result<SafetensorsIndex> ReadSafetensorsIndex(const std::string& path) {
  std::string text;
  uint64_t size = 0;
  TC_RETURN_IF_ERROR(ReadPrefix(path, kMaxSafetensorsHeaderBytes + 1, &text, &size));
  if (size > kMaxSafetensorsHeaderBytes) return Bad(path, "an index larger than 100 MiB");
  return ParseSafetensorsIndex(text, path);
}

}  // namespace tiercache
