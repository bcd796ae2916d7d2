// Byte sizes: constants and the parser shared by config files, environment
// variables and command-line flags ("64MiB", "1.5GB", "4096", "16k").
//
// Thread safety: pure functions.
#ifndef TIERCACHE_COMMON_UNITS_H_
#define TIERCACHE_COMMON_UNITS_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace tiercache {

constexpr uint64_t kKiB = 1024;
constexpr uint64_t kMiB = 1024 * kKiB;
constexpr uint64_t kGiB = 1024 * kMiB;

// Accepts an integer or decimal number followed by an optional unit:
// B, K/KiB/KB, M/MiB/MB, G/GiB/GB, T/TiB/TB (case-insensitive; the K/M/G/T
// and *iB forms are powers of 1024, *B forms powers of 1000). Rejects
// negatives, garbage and values that overflow 64 bits.
Result<uint64_t> ParseBytes(std::string_view text);

// "64.0 MiB", "1.50 GiB", "512 B".
std::string FormatBytes(uint64_t bytes);

// Rounds `value` up to a multiple of `alignment` (a power of two).
constexpr uint64_t AlignUp(uint64_t value, uint64_t alignment) {
  return (value + alignment - 1) & ~(alignment - 1);
}
constexpr bool IsPowerOfTwo(uint64_t value) { return value != 0 && (value & (value - 1)) == 0; }

}  // namespace tiercache

#endif  // TIERCACHE_COMMON_UNITS_H_
