// The bf16 encoder (bf16_encoder.h): an exponent histogram picks the code
// width and the table, a first pass over the chunks counts their escapes
// (which fixes every record's size and so the directory), a second writes
// the records. Both passes and the histogram split the chunks among threads.
#include "codec/bf16_encoder.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <string>
#include <thread>

namespace tiercache::codec {
namespace {

constexpr uint16_t kEscape = 0xFFFF;
constexpr uint32_t kChunksPerThread = 64;  // below this a thread costs more than it saves
constexpr unsigned kMaxThreads = 8;

uint16_t LoadValue(const uint8_t* data, uint64_t i) {
  uint16_t v;
  std::memcpy(&v, data + 2 * i, sizeof(v));
  return v;
}

// Runs fn(first, end) over [0, count) split into contiguous ranges, on up
// to kMaxThreads threads.
template <typename Fn>
void ForChunkRanges(uint32_t count, Fn fn) {
  unsigned threads = std::min<unsigned>(kMaxThreads, std::max(1u, std::thread::hardware_concurrency()));
  threads = std::min<unsigned>(threads, std::max<uint32_t>(1, count / kChunksPerThread));
  if (threads <= 1) {
    fn(0u, count, 0u);
    return;
  }
  std::vector<std::thread> workers;
  const uint32_t per = (count + threads - 1) / threads;
  for (unsigned t = 0; t < threads; ++t) {
    const uint32_t first = std::min(count, t * per);
    const uint32_t end = std::min(count, first + per);
    workers.emplace_back([=, &fn] { fn(first, end, t); });
  }
  for (std::thread& w : workers) w.join();
}

struct Plan {
  uint32_t code_bits = 0;
  std::array<uint8_t, 256> table{};
  std::array<uint16_t, 256> code_of{};  // exponent -> code, or kEscape
};

// The code width with the smallest (approximate) size: codes plus escapes
// plus the table.
Plan ChoosePlan(const std::array<uint64_t, 256>& counts, uint64_t values, int forced_bits) {
  std::array<uint16_t, 256> order;
  for (int e = 0; e < 256; ++e) order[e] = static_cast<uint16_t>(e);
  std::stable_sort(order.begin(), order.end(),
                   [&](uint16_t a, uint16_t b) { return counts[a] > counts[b]; });
  uint32_t best_bits = 8;
  uint64_t best_cost = UINT64_MAX;
  for (uint32_t k = 0; k <= kBf16MaxCodeBits; ++k) {
    uint64_t covered = 0;
    for (uint32_t i = 0; i < (1u << k); ++i) covered += counts[order[i]];
    const uint64_t cost = values * k / 8 + 4 * (values - covered) + Bf16TableBytes(k);
    if (forced_bits >= 0 ? k == static_cast<uint32_t>(forced_bits) : cost < best_cost) {
      best_cost = cost;
      best_bits = k;
    }
  }
  Plan plan;
  plan.code_bits = best_bits;
  plan.code_of.fill(kEscape);
  for (uint32_t i = 0; i < (1u << best_bits); ++i) {
    plan.table[i] = static_cast<uint8_t>(order[i]);
    plan.code_of[order[i]] = static_cast<uint16_t>(i);
  }
  return plan;
}

uint32_t CountEscapes(const uint8_t* data, uint64_t first_value, uint32_t values, const Plan& plan) {
  uint32_t escapes = 0;
  for (uint32_t i = 0; i < values; ++i) {
    escapes += plan.code_of[(LoadValue(data, first_value + i) >> 7) & 0xFF] == kEscape;
  }
  return escapes;
}

// Writes one chunk's record (its size already fixed by its escape count).
void WriteRecord(const uint8_t* data, uint64_t first_value, uint32_t values, uint32_t escapes,
                 const Plan& plan, uint8_t* record) {
  std::memcpy(record, &escapes, 4);
  std::memcpy(record + 4, &values, 4);
  uint8_t* sign_mantissa = record + kBf16RecordHeaderBytes;
  const uint32_t groups = (values + kBf16GroupValues - 1) / kBf16GroupValues;
  uint8_t* codes = sign_mantissa + Bf16Pad8(values);
  uint8_t* escape_out = codes + Bf16Pad8(uint64_t{groups} * plan.code_bits);
  const uint32_t k = plan.code_bits;
  uint32_t escaped = 0;
  for (uint32_t g = 0; g < groups; ++g) {
    uint64_t word = 0;
    for (uint32_t j = 0; j < kBf16GroupValues; ++j) {
      const uint32_t i = g * kBf16GroupValues + j;
      if (i >= values) break;
      const uint16_t v = LoadValue(data, first_value + i);
      const uint32_t exponent = (v >> 7) & 0xFF;
      sign_mantissa[i] = static_cast<uint8_t>(((v >> 8) & 0x80) | (v & 0x7F));
      uint16_t code = plan.code_of[exponent];
      if (code == kEscape) {
        const uint32_t entry = i | (exponent << 16);
        std::memcpy(escape_out + 4 * uint64_t{escaped++}, &entry, 4);
        code = 0;
      }
      word |= uint64_t{code} << (j * k);
    }
    std::memcpy(codes + uint64_t{g} * k, &word, k);  // little-endian: the low k bytes
  }
}

}  // namespace

Result<std::vector<uint8_t>> EncodeBf16(const void* input, size_t bytes,
                                        const Bf16EncodeOptions& options) {
  if (input == nullptr && bytes > 0) return Status::InvalidArgument("EncodeBf16: null data");
  const uint32_t cv = options.chunk_values;
  if (cv < kBf16GroupValues || cv > kBf16MaxChunkValues || cv % kBf16GroupValues != 0) {
    return Status::InvalidArgument("EncodeBf16: chunk_values " + std::to_string(cv) +
                                   " is not a multiple of 8 in [8, 65536]");
  }
  if (options.code_bits < -1 || options.code_bits > static_cast<int>(kBf16MaxCodeBits)) {
    return Status::InvalidArgument("EncodeBf16: code_bits must be -1 or 0..8");
  }
  const auto* data = static_cast<const uint8_t*>(input);
  const uint64_t values = bytes / 2;
  const uint64_t chunk_count64 = (values + cv - 1) / cv;
  if (chunk_count64 > UINT32_MAX) return Status::InvalidArgument("EncodeBf16: block too large");
  const uint32_t chunk_count = static_cast<uint32_t>(chunk_count64);

  std::vector<std::array<uint64_t, 256>> partial(kMaxThreads);
  for (auto& h : partial) h.fill(0);
  ForChunkRanges(chunk_count, [&](uint32_t first, uint32_t end, unsigned t) {
    const uint64_t lo = uint64_t{first} * cv, hi = std::min(values, uint64_t{end} * cv);
    for (uint64_t i = lo; i < hi; ++i) ++partial[t][(LoadValue(data, i) >> 7) & 0xFF];
  });
  std::array<uint64_t, 256> counts{};
  for (const auto& h : partial) {
    for (int e = 0; e < 256; ++e) counts[e] += h[e];
  }
  const Plan plan = ChoosePlan(counts, values, options.code_bits);

  std::vector<uint32_t> escapes(chunk_count);
  ForChunkRanges(chunk_count, [&](uint32_t first, uint32_t end, unsigned) {
    for (uint32_t c = first; c < end; ++c) {
      escapes[c] = CountEscapes(data, uint64_t{c} * cv, Bf16ChunkValueCount(values, cv, c), plan);
    }
  });
  std::vector<uint64_t> directory(uint64_t{chunk_count} + 1, 0);
  uint64_t escape_total = 0;
  for (uint32_t c = 0; c < chunk_count; ++c) {
    directory[c + 1] = directory[c] + Bf16RecordBytes(Bf16ChunkValueCount(values, cv, c),
                                                      plan.code_bits, escapes[c]);
    escape_total += escapes[c];
  }

  Bf16Header header{};
  header.magic = kBf16Magic;
  header.version = kBf16Version;
  header.code_bits = static_cast<uint8_t>(plan.code_bits);
  header.flags = (bytes & 1) ? kBf16FlagTail : 0;
  header.byte_count = bytes;
  header.value_count = values;
  header.chunk_values = cv;
  header.chunk_count = chunk_count;
  header.escape_count = escape_total;
  header.records_bytes = directory[chunk_count];
  header.tail_byte = (bytes & 1) ? data[bytes - 1] : 0;

  const uint64_t table_offset = kBf16HeaderBytes;
  const uint64_t directory_offset = table_offset + Bf16TableBytes(plan.code_bits);
  const uint64_t records_offset = directory_offset + 8 * directory.size();
  std::vector<uint8_t> out(records_offset + header.records_bytes, 0);
  std::memcpy(out.data(), &header, sizeof(header));
  std::memcpy(out.data() + table_offset, plan.table.data(), size_t{1} << plan.code_bits);
  std::memcpy(out.data() + directory_offset, directory.data(), 8 * directory.size());
  uint8_t* records = out.data() + records_offset;
  ForChunkRanges(chunk_count, [&](uint32_t first, uint32_t end, unsigned) {
    for (uint32_t c = first; c < end; ++c) {
      WriteRecord(data, uint64_t{c} * cv, Bf16ChunkValueCount(values, cv, c), escapes[c], plan,
                  records + directory[c]);
    }
  });
  return out;
}

}  // namespace tiercache::codec
