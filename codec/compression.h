// How a block is stored: the `compression` registration option.
//
//   off   the block's bytes as given
//   bf16  the bf16 codec's encoding (codec/bf16_encoder.h), whatever its size
//   auto  the encoding only when it saves at least kAutoMinSaving of the bytes
//
// Thread safety: pure functions.
#ifndef TIERCACHE_CODEC_COMPRESSION_H_
#define TIERCACHE_CODEC_COMPRESSION_H_

#include <cstdint>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace tiercache::codec {

enum class Compression { kOff, kBf16, kAuto };

inline constexpr double kAutoMinSaving = 0.10;

// "off", "bf16" or "auto"; anything else is kInvalidArgument.
Result<Compression> ParseCompression(std::string_view text);
const char* CompressionName(Compression mode);

// Whether a block of `raw_bytes` whose encoding takes `encoded_bytes` is
// stored encoded under `mode`.
bool KeepEncoding(Compression mode, uint64_t raw_bytes, uint64_t encoded_bytes);

// What `mode` stores for data[0, bytes): the bf16 encoding, or an empty
// vector when the bytes are kept as they are (off, or auto without the
// saving). Errors are EncodeBf16's.
Result<std::vector<uint8_t>> EncodeFor(Compression mode, const void* data, size_t bytes);

}  // namespace tiercache::codec

#endif  // TIERCACHE_CODEC_COMPRESSION_H_
