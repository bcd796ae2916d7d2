// The bf16 block codec's CPU decoder: the same job the CUDA kernel runs
// (bf16_decode_cuda.h), executed on the calling thread. The emulated device
// runs it as stream work, and host code decodes whole blocks with it.
//
// Contract
// - DecodeBf16Chunks(job) writes the decoded bytes of the job's chunks to
//   job.output. It reads only job.directory[0 .. chunk_count] and
//   job.records[0 .. records_bytes) and writes only job.output[0 ..
//   Bf16DecodedRunBytes), whatever the bytes it reads: a malformed record
//   (or escape) is skipped, sets *job.error to 1 when job.error is set, and
//   makes the call return kCorruption; its chunk's output is then
//   unspecified, the other chunks are decoded.
// - DecodeBf16 parses an encoding held in host memory, checks it, and
//   decodes all of it into `output` (at least the decoded size).
//
// Thread safety: pure functions over caller-owned memory.
#ifndef TIERCACHE_CODEC_BF16_DECODER_H_
#define TIERCACHE_CODEC_BF16_DECODER_H_

#include <cstddef>
#include <cstdint>

#include "codec/bf16_layout.h"
#include "common/status.h"

namespace tiercache::codec {

Status DecodeBf16Chunks(const Bf16DecodeJob& job);

Status DecodeBf16(const void* encoded, size_t encoded_bytes, void* output, size_t output_bytes);

}  // namespace tiercache::codec

#endif  // TIERCACHE_CODEC_BF16_DECODER_H_
