// CRC32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of the
// PMEM tier's on-media format: its header, its index entries and the bytes of
// every committed extent.
//
// Crc32c() uses the SSE4.2 crc32 instruction when the CPU has it and a
// slicing-by-8 table otherwise; both give the same value, so a file written
// on one machine verifies on another. Values are the standard CRC32C
// (Crc32c("123456789") == 0xE3069283), chainable through `crc`:
// Crc32c(a+b) == Crc32c(b, Crc32c(a)).
//
// Thread safety: pure functions; the table is built at static initialisation.
#ifndef TIERCACHE_TIERS_PMEM_CHECKSUM_H_
#define TIERCACHE_TIERS_PMEM_CHECKSUM_H_

#include <cstddef>
#include <cstdint>

namespace tiercache {

// Extends `crc` (the value for the bytes before `data`, 0 to start) over
// [data, data + bytes).
uint32_t Crc32c(const void* data, size_t bytes, uint32_t crc = 0);

// The table-driven path alone (tests compare it with the hardware path).
uint32_t Crc32cPortable(const void* data, size_t bytes, uint32_t crc = 0);

// True when Crc32c() runs on the crc32 instruction.
bool Crc32cIsHardwareAccelerated();

}  // namespace tiercache

#endif  // TIERCACHE_TIERS_PMEM_CHECKSUM_H_
