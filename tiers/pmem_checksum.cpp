#include "tiers/pmem_checksum.h"

#include <array>
#include <cstring>

namespace tiercache {
namespace {

constexpr uint32_t kPolynomial = 0x82F63B78u;  // CRC32C, reflected

// kTables[k][b]: the CRC of byte b followed by k zero bytes, so eight input
// bytes fold in with eight lookups and no bit loop (slicing-by-8).
struct Tables {
  std::array<std::array<uint32_t, 256>, 8> t{};
  constexpr Tables() {
    for (uint32_t b = 0; b < 256; ++b) {
      uint32_t crc = b;
      for (int i = 0; i < 8; ++i) crc = (crc >> 1) ^ ((crc & 1u) ? kPolynomial : 0u);
      t[0][b] = crc;
    }
    for (uint32_t b = 0; b < 256; ++b) {
      for (int k = 1; k < 8; ++k) t[k][b] = (t[k - 1][b] >> 8) ^ t[0][t[k - 1][b] & 0xFFu];
    }
  }
};
constexpr Tables kTables;

uint32_t PortableUpdate(uint32_t state, const unsigned char* p, size_t n) {
  const auto& t = kTables.t;
  while (n >= 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);  // the format is little-endian; see pmem_layout.h
    const uint32_t lo = static_cast<uint32_t>(word) ^ state;
    const uint32_t hi = static_cast<uint32_t>(word >> 32);
    state = t[7][lo & 0xFF] ^ t[6][(lo >> 8) & 0xFF] ^ t[5][(lo >> 16) & 0xFF] ^
            t[4][lo >> 24] ^ t[3][hi & 0xFF] ^ t[2][(hi >> 8) & 0xFF] ^
            t[1][(hi >> 16) & 0xFF] ^ t[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n-- > 0) state = (state >> 8) ^ t[0][(state ^ *p++) & 0xFF];
  return state;
}

// Appending `bytes` zero bytes to a message maps the raw CRC register
// linearly, so the map is four 256-entry tables indexed by the register's
// bytes. This is what lets independent streams be combined.
struct ZeroShift {
  std::array<std::array<uint32_t, 256>, 4> t{};
  explicit ZeroShift(size_t bytes) {
    uint32_t basis[32];  // the image of each single-bit register value
    for (int bit = 0; bit < 32; ++bit) {
      uint32_t state = 1u << bit;
      for (size_t i = 0; i < bytes; ++i) state = (state >> 8) ^ kTables.t[0][state & 0xFF];
      basis[bit] = state;
    }
    for (int k = 0; k < 4; ++k) {
      for (uint32_t b = 0; b < 256; ++b) {
        uint32_t image = 0;
        for (int bit = 0; bit < 8; ++bit) {
          if ((b >> bit) & 1u) image ^= basis[8 * k + bit];
        }
        t[k][b] = image;
      }
    }
  }
  uint32_t operator()(uint32_t state) const {
    return t[0][state & 0xFF] ^ t[1][(state >> 8) & 0xFF] ^ t[2][(state >> 16) & 0xFF] ^
           t[3][state >> 24];
  }
};

#if defined(__x86_64__)
// The crc32 instruction has a latency of three cycles and a throughput of
// one, so one dependent chain runs at a third of its speed. Three streams
// over adjacent thirds of a block keep it busy; their registers are then
// combined with ZeroShift (as in Intel's and Mark Adler's CRC32C code).
template <size_t kStride>
__attribute__((target("sse4.2"))) uint64_t ThreeWay(uint64_t s, const unsigned char*& p,
                                                   size_t& n, const ZeroShift& shift) {
  while (n >= 3 * kStride) {
    uint64_t s1 = 0, s2 = 0;
    for (size_t i = 0; i < kStride; i += 8) {
      uint64_t w0, w1, w2;
      std::memcpy(&w0, p + i, 8);
      std::memcpy(&w1, p + kStride + i, 8);
      std::memcpy(&w2, p + 2 * kStride + i, 8);
      s = __builtin_ia32_crc32di(s, w0);
      s1 = __builtin_ia32_crc32di(s1, w1);
      s2 = __builtin_ia32_crc32di(s2, w2);
    }
    s = shift(static_cast<uint32_t>(s)) ^ static_cast<uint32_t>(s1);
    s = shift(static_cast<uint32_t>(s)) ^ static_cast<uint32_t>(s2);
    p += 3 * kStride;
    n -= 3 * kStride;
  }
  return s;
}

constexpr size_t kLongStride = 8192;
constexpr size_t kShortStride = 256;

__attribute__((target("sse4.2"))) uint32_t HardwareUpdate(uint32_t state,
                                                          const unsigned char* p, size_t n) {
  static const ZeroShift long_shift(kLongStride);
  static const ZeroShift short_shift(kShortStride);
  uint64_t s = state;
  while (n > 0 && (reinterpret_cast<uintptr_t>(p) & 7) != 0) {
    s = __builtin_ia32_crc32qi(static_cast<uint32_t>(s), *p++);
    --n;
  }
  s = ThreeWay<kLongStride>(s, p, n, long_shift);
  s = ThreeWay<kShortStride>(s, p, n, short_shift);
  while (n >= 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);
    s = __builtin_ia32_crc32di(s, word);
    p += 8;
    n -= 8;
  }
  while (n-- > 0) s = __builtin_ia32_crc32qi(static_cast<uint32_t>(s), *p++);
  return static_cast<uint32_t>(s);
}

bool HaveHardware() {
  // __builtin_cpu_init() first: this may run before libgcc's own constructor.
  static const bool have = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2") != 0;
  }();
  return have;
}
#else
bool HaveHardware() { return false; }
#endif

}  // namespace

uint32_t Crc32cPortable(const void* data, size_t bytes, uint32_t crc) {
  return ~PortableUpdate(~crc, static_cast<const unsigned char*>(data), bytes);
}

uint32_t Crc32c(const void* data, size_t bytes, uint32_t crc) {
#if defined(__x86_64__)
  if (HaveHardware()) {
    return ~HardwareUpdate(~crc, static_cast<const unsigned char*>(data), bytes);
  }
#endif
  return Crc32cPortable(data, bytes, crc);
}

bool Crc32cIsHardwareAccelerated() { return HaveHardware(); }

}  // namespace tiercache
