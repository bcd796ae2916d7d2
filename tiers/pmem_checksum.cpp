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

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) uint32_t HardwareUpdate(uint32_t state,
                                                          const unsigned char* p, size_t n) {
  uint64_t s = state;
  while (n > 0 && (reinterpret_cast<uintptr_t>(p) & 7) != 0) {
    s = __builtin_ia32_crc32qi(static_cast<uint32_t>(s), *p++);
    --n;
  }
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
