// The bf16 decode kernel (bf16_decode_cuda.h). One thread block per chunk;
// the record is located and checked by the same LocateBf16Record the CPU
// decoder uses, so both accept and refuse exactly the same bytes.
#include "codec/bf16_decode_cuda.h"

#include <cuda_runtime.h>

#include <cstdint>

namespace tiercache::codec {
namespace {

constexpr int kThreads = 256;

// The k bytes of a group's codes as one little-endian word.
template <int K>
__device__ __forceinline__ uint64_t LoadCodes(const uint8_t* __restrict__ p) {
  if constexpr (K == 0) {
    return 0;
  } else if constexpr (K == 1) {
    return __ldg(p);
  } else if constexpr (K == 2) {
    return __ldg(reinterpret_cast<const uint16_t*>(p));
  } else if constexpr (K == 4) {
    return __ldg(reinterpret_cast<const uint32_t*>(p));
  } else if constexpr (K == 8) {
    return __ldg(reinterpret_cast<const unsigned long long*>(p));
  } else {
    uint64_t word = 0;
#pragma unroll
    for (int i = 0; i < K; ++i) word |= uint64_t{__ldg(p + i)} << (8 * i);
    return word;
  }
}

template <int K>
__device__ __forceinline__ uint32_t Value(uint64_t sign_mantissa, uint64_t codes, int j,
                                          const uint16_t* high) {
  const uint32_t b = static_cast<uint32_t>(sign_mantissa >> (8 * j)) & 0xFFu;
  const uint32_t code = K == 0 ? 0u : static_cast<uint32_t>(codes >> (j * K)) & ((1u << K) - 1u);
  return ((b & 0x80u) << 8) | high[code] | (b & 0x7Fu);
}

template <bool kAligned>
__device__ __forceinline__ void StoreValue(uint8_t* out, uint32_t i, uint32_t v) {
  if constexpr (kAligned) {
    reinterpret_cast<uint16_t*>(out)[i] = static_cast<uint16_t>(v);
  } else {
    out[2 * i] = static_cast<uint8_t>(v);
    out[2 * i + 1] = static_cast<uint8_t>(v >> 8);
  }
}

__device__ void Fail(uint32_t* error) {
  if (error != nullptr) atomicOr(error, 1u);
}

// kAligned: the output is 16-byte aligned, so whole groups are one 16-byte
// store each.
template <int K, bool kAligned>
__global__ void __launch_bounds__(kThreads) DecodeKernel(const Bf16DecodeJob job) {
  __shared__ uint16_t high[1 << K];
  for (int i = threadIdx.x; i < (1 << K); i += kThreads) high[i] = static_cast<uint16_t>(job.table[i] << 7);
  const uint32_t r = blockIdx.x;
  Bf16RecordView record;
  const bool ok = LocateBf16Record(job, r, &record);  // the same answer in every thread
  __syncthreads();
  uint8_t* __restrict__ out = job.output + 2ull * r * job.chunk_values;
  if (!ok) {
    if (threadIdx.x == 0) Fail(job.error);
  } else {
    const auto* sign_mantissa = reinterpret_cast<const unsigned long long*>(record.sign_mantissa);
    const uint32_t groups = record.values / kBf16GroupValues;
#pragma unroll 4
    for (uint32_t g = threadIdx.x; g < groups; g += kThreads) {
      const uint64_t sm = __ldg(sign_mantissa + g);
      const uint64_t codes = LoadCodes<K>(record.codes + g * K);
      uint32_t v[8];
#pragma unroll
      for (int j = 0; j < 8; ++j) v[j] = Value<K>(sm, codes, j, high);
      if constexpr (kAligned) {
        reinterpret_cast<uint4*>(out)[g] =
            make_uint4(v[0] | (v[1] << 16), v[2] | (v[3] << 16), v[4] | (v[5] << 16), v[6] | (v[7] << 16));
      } else {
#pragma unroll
        for (int j = 0; j < 8; ++j) StoreValue<false>(out, g * 8 + j, v[j]);
      }
    }
    const uint32_t done = groups * kBf16GroupValues;
    if (threadIdx.x == 0 && done < record.values) {  // the last chunk's partial group
      const uint64_t codes = LoadCodes<K>(record.codes + groups * K);
      for (uint32_t i = done; i < record.values; ++i) {
        const uint32_t b = record.sign_mantissa[i];
        const uint32_t code = K == 0 ? 0u : static_cast<uint32_t>(codes >> ((i - done) * K)) & ((1u << K) - 1u);
        StoreValue<kAligned>(out, i, ((b & 0x80u) << 8) | high[code] | (b & 0x7Fu));
      }
    }
    __syncthreads();  // the groups' stores land before the escapes overwrite some
    for (uint32_t i = threadIdx.x; i < record.escape_count; i += kThreads) {
      const uint32_t entry = __ldg(record.escapes + i);
      const uint32_t position = entry & 0xFFFFu;
      if (position >= record.values) {
        Fail(job.error);
        continue;
      }
      StoreValue<kAligned>(out, position, Bf16Assemble(record.sign_mantissa[position], (entry >> 16) & 0xFFu));
    }
  }
  if (job.write_tail && r + 1 == job.chunk_count && threadIdx.x == 0) {
    job.output[2 * (job.value_count - uint64_t{job.first_chunk} * job.chunk_values)] = job.tail_byte;
  }
}

__global__ void WriteTailKernel(uint8_t* output, uint8_t byte) { *output = byte; }

template <int K>
cudaError_t Launch(const Bf16DecodeJob& job, cudaStream_t stream) {
  const bool aligned = (reinterpret_cast<uintptr_t>(job.output) & 15) == 0;
  if (aligned) {
    DecodeKernel<K, true><<<job.chunk_count, kThreads, 0, stream>>>(job);
  } else {
    DecodeKernel<K, false><<<job.chunk_count, kThreads, 0, stream>>>(job);
  }
  return cudaGetLastError();
}

}  // namespace

int LaunchBf16DecodeKernel(const Bf16DecodeJob& job, void* stream_handle) {
  cudaStream_t stream = static_cast<cudaStream_t>(stream_handle);
  if (job.chunk_count == 0) {  // an empty block, or one of a single byte
    if (!job.write_tail) return cudaSuccess;
    WriteTailKernel<<<1, 1, 0, stream>>>(job.output, job.tail_byte);
    return cudaGetLastError();
  }
  switch (job.code_bits) {
    case 0: return Launch<0>(job, stream);
    case 1: return Launch<1>(job, stream);
    case 2: return Launch<2>(job, stream);
    case 3: return Launch<3>(job, stream);
    case 4: return Launch<4>(job, stream);
    case 5: return Launch<5>(job, stream);
    case 6: return Launch<6>(job, stream);
    case 7: return Launch<7>(job, stream);
    case 8: return Launch<8>(job, stream);
    default: return cudaErrorInvalidValue;
  }
}

const char* Bf16CudaErrorString(int error) {
  return cudaGetErrorString(static_cast<cudaError_t>(error));
}

}  // namespace tiercache::codec
