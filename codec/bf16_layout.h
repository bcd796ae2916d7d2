// The bf16 block codec's encoded layout, shared by the host code and the
// CUDA kernel: the header struct, the size rules, the decode job and the one
// function that locates and checks a chunk's record. docs/codec.md is the
// prose description of the format.
//
// Contract
// - Everything here is plain data and inline arithmetic, compiled both by the
//   host compiler and by nvcc (TC_HOST_DEVICE), so the CPU decoder and the GPU
//   kernel apply the same bounds checks to the same bytes.
// - LocateBf16Record never reads outside job.directory[0 .. chunk_count] and
//   job.records[0 .. records_bytes), whatever those bytes hold: a record that
//   does not fit, or whose sizes disagree, is reported as malformed.
//
// Thread safety: pure functions over caller-owned memory.
#ifndef TIERCACHE_CODEC_BF16_LAYOUT_H_
#define TIERCACHE_CODEC_BF16_LAYOUT_H_

#include <cstdint>
#if !defined(__CUDA_ARCH__)
#include <cstring>
#endif

#if defined(__CUDACC__)
#define TC_HOST_DEVICE __host__ __device__
#else
#define TC_HOST_DEVICE
#endif

namespace tiercache::codec {

inline constexpr uint32_t kBf16Magic = 0x46424354;  // "TCBF" in file order
inline constexpr uint16_t kBf16Version = 1;
inline constexpr uint32_t kBf16HeaderBytes = 64;
inline constexpr uint32_t kBf16RecordHeaderBytes = 8;
inline constexpr uint32_t kBf16GroupValues = 8;          // values sharing one code word
inline constexpr uint32_t kBf16DefaultChunkValues = 16384;  // 32 KiB decoded per chunk
inline constexpr uint32_t kBf16MaxChunkValues = 65536;   // escape positions are 16 bits
inline constexpr uint32_t kBf16MaxCodeBits = 8;
inline constexpr uint8_t kBf16FlagTail = 1;              // byte_count is odd: one raw tail byte

// The header, used in place (little-endian). See docs/codec.md.
struct Bf16Header {
  uint32_t magic;
  uint16_t version;
  uint8_t code_bits;       // k: exponent code width, 0..8; the table has 2^k entries
  uint8_t flags;           // kBf16FlagTail or 0
  uint64_t byte_count;     // decoded size in bytes: 2 * value_count + (tail ? 1 : 0)
  uint64_t value_count;    // bf16 values
  uint32_t chunk_values;   // values per chunk (multiple of 8); the last chunk may hold fewer
  uint32_t chunk_count;    // ceil(value_count / chunk_values)
  uint64_t escape_count;   // sum over the chunks
  uint64_t records_bytes;  // size of the records area, which ends the encoding
  uint8_t tail_byte;       // the odd last byte, 0 without kBf16FlagTail
  uint8_t reserved[15];    // zero
};
static_assert(sizeof(Bf16Header) == kBf16HeaderBytes, "the header is 64 bytes");

TC_HOST_DEVICE inline uint64_t Bf16Pad8(uint64_t n) { return (n + 7) & ~uint64_t{7}; }

TC_HOST_DEVICE inline uint64_t Bf16TableBytes(uint32_t code_bits) {
  return Bf16Pad8(uint64_t{1} << code_bits);
}

// Bytes of one chunk's record: header, sign+mantissa bytes, exponent codes
// (k bytes per group of 8 values), escapes (4 bytes each), each part padded
// to 8 bytes.
TC_HOST_DEVICE inline uint64_t Bf16RecordBytes(uint32_t values, uint32_t code_bits,
                                               uint32_t escapes) {
  const uint64_t groups = (uint64_t{values} + kBf16GroupValues - 1) / kBf16GroupValues;
  return kBf16RecordHeaderBytes + Bf16Pad8(values) + Bf16Pad8(groups * code_bits) +
         Bf16Pad8(uint64_t{4} * escapes);
}

// Values in chunk `chunk` of a block of `value_count` values.
TC_HOST_DEVICE inline uint32_t Bf16ChunkValueCount(uint64_t value_count, uint32_t chunk_values,
                                                   uint64_t chunk) {
  const uint64_t start = chunk * chunk_values;
  if (start >= value_count) return 0;
  const uint64_t left = value_count - start;
  return left < chunk_values ? static_cast<uint32_t>(left) : chunk_values;
}

// One decode launch: chunks [first_chunk, first_chunk + chunk_count) of a
// block, their records already where the decoder reads (host memory for the
// CPU decoder, device memory for the kernel). Made and checked on the host
// by MakeBf16DecodeJob (bf16_format.h); the job's own fields are trusted, the
// bytes its pointers name are not.
struct Bf16DecodeJob {
  const uint64_t* directory = nullptr;  // chunk_count + 1 entries: the block's directory from first_chunk
  const uint8_t* records = nullptr;     // the record of first_chunk (8-byte aligned)
  uint64_t records_bytes = 0;           // readable from `records`
  uint8_t* output = nullptr;            // decoded bytes of first_chunk land here
  uint64_t output_bytes = 0;            // writable from `output`
  uint32_t* error = nullptr;            // optional: a malformed record sets it nonzero
  uint64_t value_count = 0;             // of the whole block
  uint32_t chunk_values = 0;
  uint32_t first_chunk = 0;
  uint32_t chunk_count = 0;
  uint8_t code_bits = 0;
  uint8_t write_tail = 0;  // this job includes the block's end and the block has a tail byte
  uint8_t tail_byte = 0;
  uint8_t table[256] = {};  // code -> exponent; entries past 2^code_bits unused
};

// The bytes a job writes from job.output on.
TC_HOST_DEVICE inline uint64_t Bf16JobOutputBytes(const Bf16DecodeJob& job) {
  const uint64_t start = uint64_t{job.first_chunk} * job.chunk_values;
  uint64_t end = (uint64_t{job.first_chunk} + job.chunk_count) * job.chunk_values;
  if (end > job.value_count) end = job.value_count;
  return (end > start ? 2 * (end - start) : 0) + (job.write_tail ? 1 : 0);
}

// Where the parts of one chunk's record are.
struct Bf16RecordView {
  const uint8_t* sign_mantissa;
  const uint8_t* codes;
  const uint32_t* escapes;  // entry: position (bits 0..15) | exponent << 16
  uint32_t values;
  uint32_t escape_count;
};

TC_HOST_DEVICE inline uint32_t Bf16Load32(const uint8_t* p) {
#if defined(__CUDA_ARCH__)
  return *reinterpret_cast<const uint32_t*>(p);
#else
  uint32_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
#endif
}

// Finds the record of chunk first_chunk + r (r < job.chunk_count) and checks
// that it lies inside the job's records and that its sizes agree with the
// directory and the block; false when it does not.
TC_HOST_DEVICE inline bool LocateBf16Record(const Bf16DecodeJob& job, uint32_t r,
                                            Bf16RecordView* view) {
  const uint64_t base = job.directory[0];
  const uint64_t start = job.directory[r];
  const uint64_t end = job.directory[r + 1];
  if (start < base || end < start || end - base > job.records_bytes) return false;
  if (((start - base) & 7) != 0 || end - start < kBf16RecordHeaderBytes) return false;
  const uint8_t* record = job.records + (start - base);
  const uint32_t escapes = Bf16Load32(record);
  const uint32_t values = Bf16Load32(record + 4);
  if (values != Bf16ChunkValueCount(job.value_count, job.chunk_values,
                                    uint64_t{job.first_chunk} + r)) {
    return false;
  }
  if (escapes > values || Bf16RecordBytes(values, job.code_bits, escapes) != end - start) {
    return false;
  }
  const uint64_t groups = (uint64_t{values} + kBf16GroupValues - 1) / kBf16GroupValues;
  view->values = values;
  view->escape_count = escapes;
  view->sign_mantissa = record + kBf16RecordHeaderBytes;
  view->codes = view->sign_mantissa + Bf16Pad8(values);
  view->escapes = reinterpret_cast<const uint32_t*>(view->codes + Bf16Pad8(groups * job.code_bits));
  return true;
}

// The bf16 bit pattern from its sign+mantissa byte and its exponent.
TC_HOST_DEVICE inline uint16_t Bf16Assemble(uint32_t sign_mantissa, uint32_t exponent) {
  return static_cast<uint16_t>(((sign_mantissa & 0x80u) << 8) | (exponent << 7) |
                               (sign_mantissa & 0x7Fu));
}

}  // namespace tiercache::codec

#endif  // TIERCACHE_CODEC_BF16_LAYOUT_H_
