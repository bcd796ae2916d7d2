// ChecksumBytes: CRC32C of a byte range, the runtime's per-chunk integrity
// check on data that reached the host from a tier it does not trust blindly
// (NVMe reads, PMEM mappings). Uses the SSE4.2 crc32 instruction when the CPU
// has it, a bitwise-table loop otherwise; both give the standard CRC32C
// (ChecksumBytes("123456789", 9) == 0xE3069283). Chainable through `crc`.
//
// Thread safety: pure functions.
#ifndef TIERCACHE_RUNTIME_CHECKSUM_H_
#define TIERCACHE_RUNTIME_CHECKSUM_H_

#include <cstddef>
#include <cstdint>

namespace tiercache {

uint32_t ChecksumBytes(const void* data, size_t bytes, uint32_t crc = 0);

}  // namespace tiercache

#endif  // TIERCACHE_RUNTIME_CHECKSUM_H_
