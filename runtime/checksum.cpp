#include "runtime/checksum.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <vector>

#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/parallel_for.h>

namespace tiercache {
namespace {

constexpr uint32_t kPolynomial = 0x82F63B78u;  // CRC32C, reflected

std::array<uint32_t, 256> MakeTable() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ kPolynomial : c >> 1;
    table[i] = c;
  }
  return table;
}

uint32_t Portable(const unsigned char* p, size_t n, uint32_t crc) {
  static const std::array<uint32_t, 256> table = MakeTable();
  for (size_t i = 0; i < n; ++i) crc = table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
  return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) uint32_t Hardware(const unsigned char* p, size_t n,
                                                     uint32_t crc) {
  uint64_t c = crc;
  while (n >= 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);
    c = __builtin_ia32_crc32di(c, word);
    p += 8;
    n -= 8;
  }
  uint32_t c32 = static_cast<uint32_t>(c);
  while (n > 0) {
    c32 = __builtin_ia32_crc32qi(c32, *p++);
    --n;
  }
  return c32;
}
#endif

uint32_t Serial(const unsigned char* p, size_t bytes, uint32_t crc) {
  crc = ~crc;
#if defined(__x86_64__)
  static const bool has_sse42 = __builtin_cpu_supports("sse4.2");
  crc = has_sse42 ? Hardware(p, bytes, crc) : Portable(p, bytes, crc);
#else
  crc = Portable(p, bytes, crc);
#endif
  return ~crc;
}

// Arithmetic modulo the CRC polynomial, in the reflected bit order: a * b,
// and x^(2^k) for k = 0..63, so that appending n zero bytes is a product.
uint32_t MultiplyModP(uint32_t a, uint32_t b) {
  uint32_t m = 1u << 31, product = 0;
  for (;;) {
    if (a & m) {
      product ^= b;
      if ((a & (m - 1)) == 0) break;
    }
    m >>= 1;
    b = (b & 1) ? (b >> 1) ^ kPolynomial : b >> 1;
  }
  return product;
}

const std::array<uint32_t, 64>& PowersOfX() {
  static const std::array<uint32_t, 64> table = [] {
    std::array<uint32_t, 64> t{};
    uint32_t p = 1u << 30;  // x^1
    for (auto& entry : t) {
      entry = p;
      p = MultiplyModP(p, p);
    }
    return t;
  }();
  return table;
}

// x^(8 * bytes) modulo the polynomial.
uint32_t ShiftFor(uint64_t bytes) {
  uint32_t p = 1u << 31;  // x^0
  unsigned k = 3;         // 8 = 2^3
  for (uint64_t n = bytes; n != 0; n >>= 1, ++k) {
    if (n & 1) p = MultiplyModP(PowersOfX()[k & 63], p);
  }
  return p;
}

// Pieces checksummed apart: about 4 MiB each, on oneTBB's workers.
constexpr size_t kParallelPiece = 4u << 20;
constexpr size_t kParallelFrom = 2 * kParallelPiece;

}  // namespace

uint32_t ChecksumCombine(uint32_t crc_a, uint32_t crc_b, uint64_t bytes_b) {
  return MultiplyModP(ShiftFor(bytes_b), crc_a) ^ crc_b;
}

uint32_t ChecksumBytes(const void* data, size_t bytes, uint32_t crc) {
  const auto* p = static_cast<const unsigned char*>(data);
  if (bytes < kParallelFrom) return Serial(p, bytes, crc);
  // One crc32 instruction chain runs at about 8 bytes per 3 cycles: a 64 MiB
  // chunk would take ~8 ms on one core, longer than PCIe needs to move it.
  const size_t pieces = (bytes + kParallelPiece - 1) / kParallelPiece;
  std::vector<uint32_t> sums(pieces);
  auto piece_sums = [p, bytes, out = sums.data()](const oneapi::tbb::blocked_range<size_t>& r) {
    for (size_t i = r.begin(); i != r.end(); ++i) {
      const size_t at = i * kParallelPiece;
      out[i] = Serial(p + at, std::min(kParallelPiece, bytes - at), 0);
    }
  };
#if defined(__SANITIZE_THREAD__)
  // oneTBB comes uninstrumented: ThreadSanitizer cannot see its join, so
  // the same pieces run on this thread there (combined the same way).
  piece_sums(oneapi::tbb::blocked_range<size_t>(0, pieces));
#else
  oneapi::tbb::parallel_for(oneapi::tbb::blocked_range<size_t>(0, pieces), piece_sums);
#endif
  uint32_t out = crc;
  for (size_t i = 0; i < pieces; ++i) {
    const size_t n = std::min(kParallelPiece, bytes - i * kParallelPiece);
    out = ChecksumCombine(out, sums[i], n);
  }
  return out;
}

}  // namespace tiercache
