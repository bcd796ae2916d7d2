// Fuzz target: the safetensors header reader and the shard index reader.
// Each input is taken as a whole checkpoint file (its first bytes the
// header length, then the header) and as index JSON. Whatever the bytes,
// the readers return a Status; what they accept must hold their promises:
// tensors in file order, inside the data, no two sharing a byte, each
// tensor's size its shape's.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "runtime/safetensors.h"

namespace {

using namespace tiercache;

void Require(bool condition) {
  if (!condition) std::abort();
}

void CheckHeader(const SafetensorsHeader& h, uint64_t file_size) {
  Require(h.data_offset == 8 + h.header_bytes && h.data_offset <= file_size);
  uint64_t previous_end = h.data_offset;
  for (const SafetensorsTensor& t : h.tensors) {
    Require(t.begin >= h.data_offset && t.begin <= t.end && t.end <= file_size);
    Result<uint64_t> element = SafetensorsDtypeBytes(t.dtype);
    Require(element.ok());
    unsigned __int128 expected = *element;
    for (uint64_t d : t.shape) expected *= d;
    Require(expected == t.bytes());
    if (t.bytes() == 0) continue;
    Require(t.begin >= previous_end);
    previous_end = t.end;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  // The file as given, and as if its data ran on for 4 KiB more.
  for (uint64_t extra : {uint64_t{0}, uint64_t{4096}}) {
    Result<SafetensorsHeader> h = ParseSafetensorsFile(bytes, size + extra, "fuzz");
    if (h.ok()) CheckHeader(*h, size + extra);
  }
  Result<SafetensorsIndex> index = ParseSafetensorsIndex(bytes, "fuzz");
  if (index.ok()) {
    Require(!index->shards.empty() && !index->weight_map.empty());
    for (const auto& [name, shard] : index->weight_map) Require(shard < index->shards.size());
  }
  return 0;
}
