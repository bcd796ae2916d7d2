// The safetensors checkpoint format: a reader of its header, and of the
// index a sharded checkpoint comes with (model.safetensors.index.json).
//
// A safetensors file is: 8 bytes, a little-endian uint64 N; N bytes of JSON
// (an object: tensor name -> {"dtype", "shape", "data_offsets": [begin,
// end]}, plus an optional "__metadata__" object of strings); then the data,
// tensor offsets being relative to its start (8 + N). See docs/checkpoints.md.
//
// Contract
// - Every field is checked, since checkpoints come from anywhere: N within
//   the file and at most kMaxSafetensorsHeaderBytes; JSON that is an object
//   of well-formed entries; a known dtype; a shape of non-negative integers
//   whose element count times the dtype's size equals end - begin (no
//   overflow); begin <= end <= data size; no two tensors sharing a byte; no
//   duplicate or empty names. Any violation is kInvalidArgument naming the
//   file (the `label` given) and the tensor; nothing is half-parsed.
// - Tensors come back in file order (by data offset), with absolute file
//   offsets.
// - An index maps tensor names to shard files, named relative to the
//   index's directory; a shard name with a '/' or "..", an empty map or a
//   non-string entry is kInvalidArgument.
//
// Thread safety: free functions over values; safe from any thread.
#ifndef TIERCACHE_RUNTIME_SAFETENSORS_H_
#define TIERCACHE_RUNTIME_SAFETENSORS_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace tiercache {

constexpr uint64_t kMaxSafetensorsHeaderBytes = 100ull << 20;

struct SafetensorsTensor {
  std::string name;
  std::string dtype;            // as written: "BF16", "F32", ...
  std::vector<uint64_t> shape;  // empty for a scalar
  uint64_t begin = 0;           // absolute file offsets of its bytes
  uint64_t end = 0;
  uint64_t bytes() const { return end - begin; }
};

struct SafetensorsHeader {
  uint64_t header_bytes = 0;  // N
  uint64_t data_offset = 0;   // 8 + N
  std::vector<SafetensorsTensor> tensors;  // by begin
  std::vector<std::pair<std::string, std::string>> metadata;
};

struct SafetensorsIndex {
  std::vector<std::string> shards;  // file names, in order of first appearance
  std::vector<std::pair<std::string, size_t>> weight_map;  // tensor -> shard index
};

// Bytes per element of a safetensors dtype; kInvalidArgument when unknown.
Result<uint64_t> SafetensorsDtypeBytes(std::string_view dtype);

// N from a file's first 8 bytes, checked against the file's size.
Result<uint64_t> ParseSafetensorsLength(std::string_view first8, uint64_t file_size,
                                        const std::string& label);
// The header from its JSON text (the N bytes after the length).
Result<SafetensorsHeader> ParseSafetensorsHeader(std::string_view json, uint64_t file_size,
                                                 const std::string& label);
// Both, from a whole file's bytes (or at least its first 8 + N).
Result<SafetensorsHeader> ParseSafetensorsFile(std::string_view bytes, uint64_t file_size,
                                               const std::string& label);
// Reads and parses the header of the file at `path` (kNotFound when absent).
Result<SafetensorsHeader> ReadSafetensorsHeader(const std::string& path);

Result<SafetensorsIndex> ParseSafetensorsIndex(std::string_view json, const std::string& label);
Result<SafetensorsIndex> ReadSafetensorsIndex(const std::string& path);

}  // namespace tiercache

#endif  // TIERCACHE_RUNTIME_SAFETENSORS_H_
