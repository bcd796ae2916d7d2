// libFuzzer target for the bf16 decoder (built with TIERCACHE_BUILD_FUZZERS
// and Clang; see docs/codec.md). Any bytes: ValidateBf16 refuses them or
// DecodeBf16 decodes them without error; their prefix parses as a staged
// read's first piece without reading past it; and the records, taken as device
// bytes under a job made from a good encoding's layout, decode in bounds.
//   (commands in tests/codec/CMakeLists.txt)
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "codec/bf16_decoder.h"
#include "codec/bf16_encoder.h"
#include "codec/bf16_format.h"

using namespace tiercache::codec;
using tiercache::Result;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // 1. The bytes as an encoding.
  if (ValidateBf16(data, size).ok()) {
    Bf16Layout layout = *ParseBf16(data, size);
    if (layout.decoded_bytes() <= (64u << 20)) {
      std::vector<uint8_t> out(layout.decoded_bytes());
      if (!DecodeBf16(data, size, out.data(), out.size()).ok()) std::abort();
    }
  }
  // 1b. The same bytes as the first piece of a staged read: the prefix
  // size, then the prefix checks with only that much at hand, against a
  // total taken from the input; neither reads past what it is given, and a
  // prefix accepted on its own agrees with the whole parse when whole.
  if (Result<uint64_t> prefix = Bf16PrefixBytes(data, size); prefix.ok() && *prefix <= size) {
    uint64_t total = size;
    if (size >= 8) std::memcpy(&total, data + size - 8, 8);
    (void)ParseBf16Prefix(data, static_cast<size_t>(*prefix), total);
    Result<Bf16Layout> partial = ParseBf16Prefix(data, static_cast<size_t>(*prefix), size);
    Result<Bf16Layout> whole = ParseBf16(data, size);
    if (whole.ok() && (!partial.ok() || partial->records_offset != whole->records_offset)) std::abort();
  }
  // 2. The bytes as damage to a good encoding's directory and records.
  static const std::vector<uint8_t> good = [] {
    std::vector<uint16_t> values(5000);
    for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<uint16_t>(0x3C00 + (i * 7919) % 1024);
    values[17] = 0x7F80;
    return *EncodeBf16(values.data(), values.size() * 2, Bf16EncodeOptions{512, 3});
  }();
  const Bf16Layout layout = *ParseBf16(good.data(), good.size());
  std::vector<uint64_t> device((good.size() + 7) / 8);
  std::memcpy(device.data(), good.data(), good.size());
  auto* bytes = reinterpret_cast<uint8_t*>(device.data());
  const size_t area = good.size() - layout.directory_offset;
  for (size_t i = 0; i + 4 < size; i += 5) {
    uint32_t at;
    std::memcpy(&at, data + i, 4);
    bytes[layout.directory_offset + at % area] = data[i + 4];
  }
  std::vector<uint8_t> out(layout.decoded_bytes());
  Bf16DecodeJob job = *MakeBf16DecodeJob(layout, 0, layout.chunk_count(), bytes + layout.directory_offset,
                                         bytes + layout.records_offset, layout.header.records_bytes, out.data(),
                                         out.size());
  (void)DecodeBf16Chunks(job);
  return 0;
}
