// The CPU decoder (bf16_decoder.h). Per chunk: every group of 8 values
// combines its 8 sign+mantissa bytes with 8 k-bit codes looked up in the
// table, then the chunk's escapes overwrite the exponents they name.
#include "codec/bf16_decoder.h"

#include <cstring>
#include <string>
#include <vector>

#include "codec/bf16_format.h"

namespace tiercache::codec {
namespace {

void StoreValue(uint8_t* output, uint64_t i, uint16_t v) { std::memcpy(output + 2 * i, &v, 2); }

// K is the code width, a template argument so the group loop unrolls.
template <uint32_t K>
void DecodeGroups(const Bf16RecordView& record, const uint16_t* high, uint8_t* output) {
  constexpr uint64_t kMask = (uint64_t{1} << K) - 1;
  const uint32_t groups = record.values / kBf16GroupValues;
  for (uint32_t g = 0; g < groups; ++g) {
    uint64_t sign_mantissa, codes = 0;
    std::memcpy(&sign_mantissa, record.sign_mantissa + 8 * uint64_t{g}, 8);
    if constexpr (K > 0) std::memcpy(&codes, record.codes + uint64_t{g} * K, K);
    uint16_t out[kBf16GroupValues];
    for (uint32_t j = 0; j < kBf16GroupValues; ++j) {
      const uint32_t b = (sign_mantissa >> (8 * j)) & 0xFF;
      out[j] = static_cast<uint16_t>(((b & 0x80u) << 8) | high[(codes >> (j * K)) & kMask] | (b & 0x7Fu));
    }
    std::memcpy(output + 16 * uint64_t{g}, out, sizeof(out));
  }
  // The last chunk's partial group.
  const uint32_t done = groups * kBf16GroupValues;
  if (done < record.values) {
    uint64_t codes = 0;
    if constexpr (K > 0) std::memcpy(&codes, record.codes + uint64_t{groups} * K, K);
    for (uint32_t i = done; i < record.values; ++i) {
      const uint32_t b = record.sign_mantissa[i];
      StoreValue(output, i,
                 static_cast<uint16_t>(((b & 0x80u) << 8) | high[(codes >> ((i - done) * K)) & kMask] |
                                       (b & 0x7Fu)));
    }
  }
}

void DecodeGroups(const Bf16RecordView& record, uint32_t code_bits, const uint16_t* high,
                  uint8_t* output) {
  switch (code_bits) {
    case 0: return DecodeGroups<0>(record, high, output);
    case 1: return DecodeGroups<1>(record, high, output);
    case 2: return DecodeGroups<2>(record, high, output);
    case 3: return DecodeGroups<3>(record, high, output);
    case 4: return DecodeGroups<4>(record, high, output);
    case 5: return DecodeGroups<5>(record, high, output);
    case 6: return DecodeGroups<6>(record, high, output);
    case 7: return DecodeGroups<7>(record, high, output);
    default: return DecodeGroups<8>(record, high, output);
  }
}

// False when an escape names a position outside the chunk (it is skipped).
bool ApplyEscapes(const Bf16RecordView& record, uint8_t* output) {
  bool ok = true;
  const auto* entries = reinterpret_cast<const uint8_t*>(record.escapes);
  for (uint32_t i = 0; i < record.escape_count; ++i) {
    const uint32_t entry = Bf16Load32(entries + 4 * uint64_t{i});
    const uint32_t position = entry & 0xFFFF;
    if (position >= record.values) {
      ok = false;
      continue;
    }
    StoreValue(output, position,
               Bf16Assemble(record.sign_mantissa[position], (entry >> 16) & 0xFF));
  }
  return ok;
}

}  // namespace

Status DecodeBf16Chunks(const Bf16DecodeJob& job) {
  uint16_t high[256];
  for (int c = 0; c < 256; ++c) high[c] = static_cast<uint16_t>(job.table[c] << 7);
  uint32_t bad = 0, first_bad = 0;
  for (uint32_t r = 0; r < job.chunk_count; ++r) {
    Bf16RecordView record;
    uint8_t* output = job.output + 2 * uint64_t{r} * job.chunk_values;
    bool ok = LocateBf16Record(job, r, &record);
    if (ok) {
      DecodeGroups(record, job.code_bits, high, output);
      ok = ApplyEscapes(record, output);
    }
    if (!ok && bad++ == 0) first_bad = job.first_chunk + r;
  }
  if (job.write_tail) {
    const uint64_t tail = 2 * (job.value_count - uint64_t{job.first_chunk} * job.chunk_values);
    job.output[tail] = job.tail_byte;
  }
  if (bad == 0) return Status::Ok();
  if (job.error != nullptr) *job.error = 1;
  return Status::Corruption("bf16 decode: " + std::to_string(bad) + " malformed chunk record(s), first " +
                            std::to_string(first_bad));
}

Status DecodeBf16(const void* encoded, size_t encoded_bytes, void* output, size_t output_bytes) {
  TC_RETURN_IF_ERROR(ValidateBf16(encoded, encoded_bytes));
  TC_ASSIGN_OR_RETURN(Bf16Layout layout, ParseBf16(encoded, encoded_bytes));
  if (output == nullptr && layout.decoded_bytes() > 0) {
    return Status::InvalidArgument("DecodeBf16: null output");
  }
  // The job wants 8-byte aligned directory and records; the caller's buffer
  // may not be, so copy what is misaligned.
  const auto* base = static_cast<const uint8_t*>(encoded);
  std::vector<uint64_t> directory(uint64_t{layout.chunk_count()} + 1);
  std::memcpy(directory.data(), base + layout.directory_offset, 8 * directory.size());
  const uint8_t* records = base + layout.records_offset;
  std::vector<uint64_t> aligned;
  if ((reinterpret_cast<uintptr_t>(records) & 7) != 0) {
    aligned.resize((layout.header.records_bytes + 7) / 8);
    std::memcpy(aligned.data(), records, layout.header.records_bytes);
    records = reinterpret_cast<const uint8_t*>(aligned.data());
  }
  TC_ASSIGN_OR_RETURN(Bf16DecodeJob job,
                      MakeBf16DecodeJob(layout, 0, layout.chunk_count(), directory.data(), records,
                                        layout.header.records_bytes, output, output_bytes));
  return DecodeBf16Chunks(job);
}

}  // namespace tiercache::codec
