// Parsing, validating and job making for the bf16 codec (bf16_format.h).
#include "codec/bf16_format.h"

#include <algorithm>
#include <cstring>
#include <string>

namespace tiercache::codec {
namespace {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the format is used in place");

uint64_t LoadU64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

Status Bad(const std::string& what) { return Status::Corruption("bf16 encoding: " + what); }

Status CheckHeader(const Bf16Header& h) {
  if (h.magic != kBf16Magic) return Bad("bad magic number");
  if (h.version != kBf16Version) return Bad("unknown version " + std::to_string(h.version));
  if (h.code_bits > kBf16MaxCodeBits) return Bad("code width " + std::to_string(h.code_bits) + " > 8");
  if ((h.flags & ~kBf16FlagTail) != 0) return Bad("unknown flags");
  if ((h.flags & kBf16FlagTail) == 0 && h.tail_byte != 0) return Bad("tail byte without the tail flag");
  for (uint8_t b : h.reserved) {
    if (b != 0) return Bad("reserved bytes are not zero");
  }
  if (h.chunk_values < kBf16GroupValues || h.chunk_values > kBf16MaxChunkValues ||
      h.chunk_values % kBf16GroupValues != 0) {
    return Bad("chunk size " + std::to_string(h.chunk_values) + " is not a multiple of 8 in [8, 65536]");
  }
  if (h.value_count > (uint64_t{1} << 60)) return Bad("value count out of range");
  if (h.byte_count != 2 * h.value_count + ((h.flags & kBf16FlagTail) ? 1 : 0)) {
    return Bad("byte count disagrees with the value count");
  }
  const uint64_t chunks = (h.value_count + h.chunk_values - 1) / h.chunk_values;
  if (chunks != h.chunk_count) return Bad("chunk count disagrees with the value count");
  if (h.escape_count > h.value_count) return Bad("more escapes than values");
  return Status::Ok();
}

}  // namespace

bool LooksLikeBf16(const void* encoded, size_t bytes) {
  uint32_t magic = 0;
  if (encoded == nullptr || bytes < sizeof(magic)) return false;
  std::memcpy(&magic, encoded, sizeof(magic));
  return magic == kBf16Magic;
}

Result<uint64_t> Bf16PrefixBytes(const void* encoded, size_t bytes) {
  if (encoded == nullptr) return Status::InvalidArgument("bf16 encoding: null buffer");
  if (bytes < kBf16HeaderBytes) return Bad("shorter than its header");
  Bf16Header h;
  std::memcpy(&h, encoded, sizeof(h));
  TC_RETURN_IF_ERROR(CheckHeader(h));
  return kBf16HeaderBytes + Bf16TableBytes(h.code_bits) + 8 * (uint64_t{h.chunk_count} + 1);
}

Result<Bf16Layout> ParseBf16Prefix(const void* encoded, size_t bytes, uint64_t total_bytes) {
  TC_ASSIGN_OR_RETURN(const uint64_t prefix_bytes, Bf16PrefixBytes(encoded, bytes));
  const auto* base = static_cast<const uint8_t*>(encoded);
  Bf16Layout layout;
  std::memcpy(&layout.header, base, sizeof(layout.header));
  const Bf16Header& h = layout.header;
  layout.table_offset = kBf16HeaderBytes;
  layout.directory_offset = layout.table_offset + Bf16TableBytes(h.code_bits);
  layout.records_offset = prefix_bytes;
  layout.encoded_bytes = layout.records_offset + h.records_bytes;
  if (layout.records_offset > total_bytes || h.records_bytes > total_bytes - layout.records_offset) {
    return Bad("truncated: " + std::to_string(total_bytes) + " bytes, the header describes more");
  }
  if (layout.encoded_bytes != total_bytes) return Bad("trailing bytes after the records");
  if (bytes < layout.records_offset) return Bad("the directory is not all at hand");
  std::memcpy(layout.table, base + layout.table_offset, size_t{1} << h.code_bits);
  // The directory: starts at 0, ends at records_bytes, ascends in steps of
  // at least a record header, every entry 8-byte aligned.
  const uint8_t* directory = base + layout.directory_offset;
  uint64_t previous = LoadU64(directory);
  if (previous != 0) return Bad("directory does not start at 0");
  for (uint32_t c = 1; c <= h.chunk_count; ++c) {
    const uint64_t next = LoadU64(directory + 8 * uint64_t{c});
    if (next < previous + kBf16RecordHeaderBytes || next > h.records_bytes || (next & 7) != 0) {
      return Bad("directory entry " + std::to_string(c) + " is out of order or out of range");
    }
    previous = next;
  }
  if (previous != h.records_bytes) return Bad("directory does not end at the records' end");
  return layout;
}

Result<Bf16Layout> ParseBf16(const void* encoded, size_t bytes) {
  return ParseBf16Prefix(encoded, bytes, bytes);
}

Status ValidateBf16(const void* encoded, size_t bytes) {
  TC_ASSIGN_OR_RETURN(Bf16Layout layout, ParseBf16(encoded, bytes));
  const auto* base = static_cast<const uint8_t*>(encoded);
  // The directory may be unaligned in the caller's buffer; the job wants an
  // aligned one, so check records through a job over an aligned copy of
  // each directory pair.
  uint64_t escapes = 0;
  for (uint32_t c = 0; c < layout.chunk_count(); ++c) {
    uint64_t pair[2];
    std::memcpy(pair, base + layout.directory_offset + 8 * uint64_t{c}, sizeof(pair));
    Bf16DecodeJob job;
    job.directory = pair;
    job.records = base + layout.records_offset + pair[0];
    job.records_bytes = pair[1] - pair[0];
    job.value_count = layout.header.value_count;
    job.chunk_values = layout.header.chunk_values;
    job.first_chunk = c;
    job.chunk_count = 1;
    job.code_bits = layout.header.code_bits;
    Bf16RecordView view;
    if (!LocateBf16Record(job, 0, &view)) {
      return Bad("record of chunk " + std::to_string(c) + " has inconsistent sizes");
    }
    const auto* escape_bytes = reinterpret_cast<const uint8_t*>(view.escapes);
    for (uint32_t i = 0; i < view.escape_count; ++i) {
      const uint32_t entry = Bf16Load32(escape_bytes + 4 * uint64_t{i});
      if ((entry & 0xFFFFu) >= view.values || (entry >> 24) != 0) {
        return Bad("escape " + std::to_string(i) + " of chunk " + std::to_string(c) + " is out of range");
      }
    }
    escapes += view.escape_count;
  }
  if (escapes != layout.header.escape_count) return Bad("escape count disagrees with the records");
  return Status::Ok();
}

uint64_t Bf16RecordOffset(const Bf16Layout& layout, const void* encoded, uint32_t chunk) {
  const auto* base = static_cast<const uint8_t*>(encoded);
  return layout.records_offset + LoadU64(base + layout.directory_offset + 8 * uint64_t{chunk});
}

uint64_t Bf16DecodedRunBytes(const Bf16Layout& layout, uint32_t first, uint32_t count) {
  const Bf16Header& h = layout.header;
  const uint64_t start = uint64_t{first} * h.chunk_values;
  if (start >= h.value_count) return first == 0 ? h.byte_count : 0;
  const uint64_t end = std::min<uint64_t>(h.value_count, uint64_t{first + count} * h.chunk_values);
  const bool tail = (h.flags & kBf16FlagTail) != 0 && first + count == h.chunk_count;
  return 2 * (end - start) + (tail ? 1 : 0);
}

Result<Bf16DecodeJob> MakeBf16DecodeJob(const Bf16Layout& layout, uint32_t first, uint32_t count,
                                        const void* directory, const void* records,
                                        uint64_t records_bytes, void* output,
                                        uint64_t output_bytes) {
  const Bf16Header& h = layout.header;
  if (uint64_t{first} + count > h.chunk_count || (count == 0 && h.chunk_count != 0)) {
    return Status::InvalidArgument("bf16 decode: chunks [" + std::to_string(first) + ", +" +
                                   std::to_string(count) + ") are not in the block's " +
                                   std::to_string(h.chunk_count));
  }
  if (directory == nullptr || (reinterpret_cast<uintptr_t>(directory) & 7) != 0) {
    return Status::InvalidArgument("bf16 decode: the directory must be 8-byte aligned");
  }
  if (count > 0 && (records == nullptr || (reinterpret_cast<uintptr_t>(records) & 7) != 0)) {
    return Status::InvalidArgument("bf16 decode: the records must be 8-byte aligned");
  }
  const uint64_t decoded = Bf16DecodedRunBytes(layout, first, count);
  if (decoded > 0 && (output == nullptr || output_bytes < decoded)) {
    return Status::InvalidArgument("bf16 decode: the output holds " + std::to_string(output_bytes) +
                                   " bytes, the chunks decode to " + std::to_string(decoded));
  }
  Bf16DecodeJob job;
  job.directory = static_cast<const uint64_t*>(directory);
  job.records = static_cast<const uint8_t*>(records);
  job.records_bytes = records_bytes;
  job.output = static_cast<uint8_t*>(output);
  job.output_bytes = output_bytes;
  job.value_count = h.value_count;
  job.chunk_values = h.chunk_values;
  job.first_chunk = first;
  job.chunk_count = count;
  job.code_bits = h.code_bits;
  job.write_tail = (h.flags & kBf16FlagTail) != 0 && first + count == h.chunk_count;
  job.tail_byte = h.tail_byte;
  std::memcpy(job.table, layout.table, sizeof(job.table));
  return job;
}

Status CheckBf16DecodeJob(const Bf16DecodeJob& job) {
  auto bad = [](const std::string& what) { return Status::InvalidArgument("bf16 decode job: " + what); };
  if (job.code_bits > kBf16MaxCodeBits) return bad("code width > 8");
  if (job.chunk_values < kBf16GroupValues || job.chunk_values > kBf16MaxChunkValues ||
      job.chunk_values % kBf16GroupValues != 0) {
    return bad("chunk size is not a multiple of 8 in [8, 65536]");
  }
  if (uint64_t{job.first_chunk} + job.chunk_count >
      (job.value_count + job.chunk_values - 1) / job.chunk_values) {
    return bad("chunks past the block's end");
  }
  if (job.directory == nullptr || (reinterpret_cast<uintptr_t>(job.directory) & 7) != 0) {
    return bad("the directory must be 8-byte aligned");
  }
  if (job.chunk_count > 0 && (job.records == nullptr || (reinterpret_cast<uintptr_t>(job.records) & 7) != 0)) {
    return bad("the records must be 8-byte aligned");
  }
  const uint64_t output = Bf16JobOutputBytes(job);
  if (output > 0 && (job.output == nullptr || job.output_bytes < output)) {
    return bad("the output holds " + std::to_string(job.output_bytes) + " bytes, the job writes " +
               std::to_string(output));
  }
  if (job.error != nullptr && (reinterpret_cast<uintptr_t>(job.error) & 3) != 0) {
    return bad("the error word must be 4-byte aligned");
  }
  return Status::Ok();
}

}  // namespace tiercache::codec
