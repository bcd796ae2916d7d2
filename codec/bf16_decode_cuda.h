// The bf16 block codec's CUDA decoder: the kernel that runs a decode job
// (bf16_layout.h) on the GPU, one thread block per chunk. Built only with
// TIERCACHE_WITH_CUDA; the CUDA device (alloc/cuda_device.h) is its caller.
//
// Contract
// - LaunchBf16DecodeKernel enqueues the decode of `job` on `stream` (a
//   cudaStream_t; nullptr is the legacy default stream) and returns the
//   launch's cudaError_t as an int (0: enqueued). Every pointer in the job
//   is device memory. Like the CPU decoder, the kernel reads and writes only
//   inside the job's ranges whatever the bytes it reads; a malformed record
//   sets *job.error (when set) to nonzero and leaves its chunk unspecified.
// - Each thread handles groups of 8 values: one 8-byte load of sign+mantissa
//   bytes, k bytes of codes, one 16-byte store (when the output is 16-byte
//   aligned); escapes are patched after a barrier.
//
// Thread safety: may be called from any thread; ordering is the stream's.
#ifndef TIERCACHE_CODEC_BF16_DECODE_CUDA_H_
#define TIERCACHE_CODEC_BF16_DECODE_CUDA_H_

#include "codec/bf16_layout.h"

namespace tiercache::codec {

int LaunchBf16DecodeKernel(const Bf16DecodeJob& job, void* stream);

// The CUDA runtime's name and description of `error`.
const char* Bf16CudaErrorString(int error);

}  // namespace tiercache::codec

#endif  // TIERCACHE_CODEC_BF16_DECODE_CUDA_H_
