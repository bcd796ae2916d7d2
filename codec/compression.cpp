// The compression option (compression.h).
#include "codec/compression.h"

#include <string>

#include "codec/bf16_encoder.h"

namespace tiercache::codec {

Result<Compression> ParseCompression(std::string_view text) {
  if (text == "off") return Compression::kOff;
  if (text == "bf16") return Compression::kBf16;
  if (text == "auto") return Compression::kAuto;
  return Status::InvalidArgument("compression \"" + std::string(text) +
                                 "\": expected off, bf16 or auto");
}

const char* CompressionName(Compression mode) {
  switch (mode) {
    case Compression::kOff: return "off";
    case Compression::kBf16: return "bf16";
    case Compression::kAuto: return "auto";
  }
  return "?";
}

bool KeepEncoding(Compression mode, uint64_t raw_bytes, uint64_t encoded_bytes) {
  switch (mode) {
    case Compression::kOff: return false;
    case Compression::kBf16: return true;
    case Compression::kAuto:
      return static_cast<double>(encoded_bytes) <= (1.0 - kAutoMinSaving) * static_cast<double>(raw_bytes);
  }
  return false;
}

Result<std::vector<uint8_t>> EncodeFor(Compression mode, const void* data, size_t bytes) {
  if (mode == Compression::kOff) return std::vector<uint8_t>{};
  TC_ASSIGN_OR_RETURN(std::vector<uint8_t> encoded, EncodeBf16(data, bytes));
  if (!KeepEncoding(mode, bytes, encoded.size())) encoded.clear();
  return encoded;
}

}  // namespace tiercache::codec
