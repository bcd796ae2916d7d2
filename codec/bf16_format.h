// Reading the bf16 block codec's encoded form on the host: parsing and
// checking it, and making decode jobs over runs of its chunks.
//
// Contract
// - ParseBf16 checks the header, the table's place and the whole chunk
//   directory (every record inside the records area, in order, aligned);
//   ValidateBf16 also checks every record (sizes, escape positions), so a
//   buffer it accepts decodes without any error. Both return kCorruption
//   naming what is wrong, never read outside [encoded, encoded + bytes), and
//   accept any alignment.
// - MakeBf16DecodeJob builds the job for chunks [first, first + count): the
//   caller says where the directory entries and the records of that run are
//   in the memory the decoder will read (which may be device memory, so the
//   function reads neither), and where the output goes.
//
// Thread safety: pure functions over caller-owned memory.
#ifndef TIERCACHE_CODEC_BF16_FORMAT_H_
#define TIERCACHE_CODEC_BF16_FORMAT_H_

#include <cstddef>
#include <cstdint>

#include "codec/bf16_layout.h"
#include "common/status.h"

namespace tiercache::codec {

// Where the parts of a parsed encoding are, as offsets into it.
struct Bf16Layout {
  Bf16Header header{};
  uint64_t table_offset = 0;
  uint64_t directory_offset = 0;  // chunk_count + 1 little-endian uint64 record offsets
  uint64_t records_offset = 0;    // directory entries are relative to this
  uint64_t encoded_bytes = 0;     // the whole encoding
  uint8_t table[256] = {};        // code -> exponent (2^code_bits entries used)

  uint64_t decoded_bytes() const { return header.byte_count; }
  uint32_t chunk_count() const { return header.chunk_count; }
};

// True when `bytes` at `encoded` start with the codec's magic number.
bool LooksLikeBf16(const void* encoded, size_t bytes);

Result<Bf16Layout> ParseBf16(const void* encoded, size_t bytes);
// For an encoding that arrives in pieces (a staged read): the size of the
// prefix (header, table and directory) that the header at `encoded` (at
// least its first kBf16HeaderBytes bytes) describes; kCorruption when the
// header is bad. ParseBf16Prefix then makes ParseBf16's checks with only
// that prefix at hand, for an encoding of `total_bytes`, reading nothing
// past [encoded, encoded + bytes).
Result<uint64_t> Bf16PrefixBytes(const void* encoded, size_t bytes);
Result<Bf16Layout> ParseBf16Prefix(const void* encoded, size_t bytes, uint64_t total_bytes);
Status ValidateBf16(const void* encoded, size_t bytes);

// Offset, from the start of the encoding, of chunk `chunk`'s record
// (chunk == chunk_count: the end of the records). REQUIRES: `layout` came
// from ParseBf16 of `encoded`; chunk <= chunk_count.
uint64_t Bf16RecordOffset(const Bf16Layout& layout, const void* encoded, uint32_t chunk);

// The decoded bytes that chunks [first, first + count) produce.
uint64_t Bf16DecodedRunBytes(const Bf16Layout& layout, uint32_t first, uint32_t count);

// A job decoding chunks [first, first + count) (count may be 0 only for a
// block without chunks). `directory` holds count + 1 entries (the layout's
// entries from `first` on) and must be 8-byte aligned; `records` is the
// record of chunk `first` followed by the others, 8-byte aligned,
// `records_bytes` long at least; `output` receives
// Bf16DecodedRunBytes(first, count) bytes. kInvalidArgument otherwise.
Result<Bf16DecodeJob> MakeBf16DecodeJob(const Bf16Layout& layout, uint32_t first, uint32_t count,
                                        const void* directory, const void* records,
                                        uint64_t records_bytes, void* output,
                                        uint64_t output_bytes);

// Checks a job's own fields (not the bytes it points at): pointers present
// and aligned, sizes consistent, the output large enough. Devices call it
// before enqueuing a job. kInvalidArgument naming the first problem.
Status CheckBf16DecodeJob(const Bf16DecodeJob& job);

}  // namespace tiercache::codec

#endif  // TIERCACHE_CODEC_BF16_FORMAT_H_
