// Writes safetensors files for tests: tensors laid out in the order given,
// each entry's bytes filled from a seed, and the header text patchable so
// that malformed files can be made from well-formed ones.
#ifndef TIERCACHE_TESTS_RUNTIME_SAFETENSORS_WRITER_H_
#define TIERCACHE_TESTS_RUNTIME_SAFETENSORS_WRITER_H_

#include <cstdint>
#include <fstream>
#include <random>
#include <string>
#include <vector>

namespace tiercache::testing {

struct TestTensor {
  std::string name;
  std::string dtype;
  std::vector<uint64_t> shape;
  uint64_t element_bytes;
  std::vector<unsigned char> data;  // filled by Layout()

  uint64_t bytes() const {
    uint64_t n = element_bytes;
    for (uint64_t d : shape) n *= d;
    return n;
  }
};

inline TestTensor MakeTensor(std::string name, std::string dtype, std::vector<uint64_t> shape,
                             uint32_t seed) {
  const uint64_t element = dtype == "F32" || dtype == "I32" ? 4 : dtype == "U8" ? 1 : 2;
  TestTensor t{std::move(name), std::move(dtype), std::move(shape), element, {}};
  std::mt19937 rng(seed);
  t.data.resize(t.bytes());
  for (auto& b : t.data) b = static_cast<unsigned char>(rng());
  return t;
}

// The header JSON for tensors stored back to back in the order given.
inline std::string HeaderJson(const std::vector<TestTensor>& tensors) {
  std::string json = "{\"__metadata__\":{\"format\":\"pt\"}";
  uint64_t offset = 0;
  for (const TestTensor& t : tensors) {
    json += ",\"" + t.name + "\":{\"dtype\":\"" + t.dtype + "\",\"shape\":[";
    for (size_t i = 0; i < t.shape.size(); ++i) json += (i ? "," : "") + std::to_string(t.shape[i]);
    json += "],\"data_offsets\":[" + std::to_string(offset) + "," +
            std::to_string(offset + t.bytes()) + "]}";
    offset += t.bytes();
  }
  return json + "}";
}

// Writes 8-byte length, `header` (padded with spaces to a multiple of 8, as
// the reference writer does) and the tensors' data. Returns the data offset.
inline uint64_t WriteSafetensors(const std::string& path, const std::vector<TestTensor>& tensors,
                                 std::string header = "") {
  if (header.empty()) header = HeaderJson(tensors);
  while (header.size() % 8 != 0) header += ' ';
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out.put(static_cast<char>((n >> (8 * i)) & 0xff));
  out << header;
  for (const TestTensor& t : tensors) {
    out.write(reinterpret_cast<const char*>(t.data.data()), static_cast<std::streamsize>(t.data.size()));
  }
  return 8 + n;
}

}  // namespace tiercache::testing

#endif  // TIERCACHE_TESTS_RUNTIME_SAFETENSORS_WRITER_H_
