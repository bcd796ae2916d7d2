// ByteReader: turns a fuzz input into choices, front to back (the subset of
// libFuzzer's FuzzedDataProvider the targets use, so the targets also build
// with gcc as corpus regression runners). Past the end every value is 0.
#ifndef TIERCACHE_TESTS_FUZZ_BYTE_READER_H_
#define TIERCACHE_TESTS_FUZZ_BYTE_READER_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>

namespace tiercache::fuzz {

class ByteReader {
 public:
  ByteReader(const uint8_t* data, size_t size) : data_(data), size_(size) {}

  size_t remaining_bytes() const { return size_; }

  template <typename T>
  T ConsumeIntegral() {
    using U = std::make_unsigned_t<T>;
    U value = 0;
    for (size_t i = 0; i < sizeof(T) && size_ > 0; ++i) {
      value = static_cast<U>((value << 8) | *data_++);
      --size_;
    }
    return static_cast<T>(value);
  }

  // A value in [low, high], consuming only as many bytes as the range needs.
  template <typename T>
  T ConsumeIntegralInRange(T low, T high) {
    const uint64_t range = static_cast<uint64_t>(high) - static_cast<uint64_t>(low);
    uint64_t value = 0;
    for (uint64_t seen = 0; (range >> seen) != 0 && seen < 64 && size_ > 0; seen += 8) {
      value = (value << 8) | *data_++;
      --size_;
    }
    if (range != UINT64_MAX) value %= range + 1;
    return static_cast<T>(static_cast<uint64_t>(low) + value);
  }

  bool ConsumeBool() { return (ConsumeIntegral<uint8_t>() & 1) != 0; }

  // Up to max_length bytes, ended early by a backslash not followed by one.
  std::string ConsumeRandomLengthString(size_t max_length) {
    std::string out;
    while (size_ > 0 && out.size() < max_length) {
      const char c = static_cast<char>(*data_++);
      --size_;
      if (c == '\\' && size_ > 0) {
        const char next = static_cast<char>(*data_++);
        --size_;
        if (next != '\\') break;
      }
      out.push_back(c);
    }
    return out;
  }

 private:
  const uint8_t* data_;
  size_t size_;
};

}  // namespace tiercache::fuzz

#endif  // TIERCACHE_TESTS_FUZZ_BYTE_READER_H_
