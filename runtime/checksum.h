// ChecksumBytes: CRC32C of a byte range, the runtime's per-chunk integrity
// check on data that reached the host from a tier it does not trust blindly
// (NVMe reads, PMEM mappings). Uses the SSE4.2 crc32 instruction when the CPU
// has it, a bitwise-table loop otherwise; both give the standard CRC32C
// (ChecksumBytes("123456789", 9) == 0xE3069283). Chainable through `crc`.
// Ranges of 8 MiB and more are checksummed in 4 MiB pieces on oneTBB's
// workers and the pieces combined (ChecksumCombine), so a 64 MiB staging
// chunk is checked faster than the link delivers it; the value is the same.
//
// Thread safety: pure functions (the parallel form may run on the calling
// thread's oneTBB arena).
#ifndef TIERCACHE_RUNTIME_CHECKSUM_H_
#define TIERCACHE_RUNTIME_CHECKSUM_H_

#include <cstddef>
#include <cstdint>

namespace tiercache {

uint32_t ChecksumBytes(const void* data, size_t bytes, uint32_t crc = 0);
// The CRC32C of A followed by B, from crc(A), crc(B) and B's length.
uint32_t ChecksumCombine(uint32_t crc_a, uint32_t crc_b, uint64_t bytes_b);

}  // namespace tiercache

#endif  // TIERCACHE_RUNTIME_CHECKSUM_H_
