// The bf16 block codec's encoder: lossless, for blocks of bfloat16 values
// (any bytes are accepted; only bf16 data with few distinct exponents gets
// smaller). docs/codec.md describes the format.
//
// Contract
// - EncodeBf16(data, bytes) returns an encoding that DecodeBf16 turns back
//   into exactly those bytes, for every input: NaN payloads, infinities,
//   denormals, odd sizes, empty blocks.
// - Each value's sign and 7 mantissa bits are kept as one raw byte; its 8
//   exponent bits become a k-bit code into a per-block table of the 2^k most
//   frequent exponents, and any other exponent an escape (position and
//   exponent, 4 bytes) in its chunk's record. k is chosen per block to make
//   the encoding smallest (or forced through the options).
// - Large blocks are encoded by several threads (up to 8); the result does
//   not depend on how many.
//
// Thread safety: pure functions; distinct calls may run concurrently.
#ifndef TIERCACHE_CODEC_BF16_ENCODER_H_
#define TIERCACHE_CODEC_BF16_ENCODER_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "codec/bf16_layout.h"
#include "common/status.h"

namespace tiercache::codec {

struct Bf16EncodeOptions {
  uint32_t chunk_values = kBf16DefaultChunkValues;  // multiple of 8 in [8, 65536]
  int code_bits = -1;  // 0..8 forces the code width; -1 picks the smallest encoding
};

// kInvalidArgument for a null `data` with bytes > 0 or bad options.
Result<std::vector<uint8_t>> EncodeBf16(const void* data, size_t bytes,
                                        const Bf16EncodeOptions& options = {});

}  // namespace tiercache::codec

#endif  // TIERCACHE_CODEC_BF16_ENCODER_H_
