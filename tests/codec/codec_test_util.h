// Inputs for the codec tests: bf16 data drawn like trained weights and
// adversarial patterns, and guarded buffers whose last byte sits just before
// an inaccessible page, so a read or write past the end faults at once even
// without a sanitizer.
#ifndef TIERCACHE_TESTS_CODEC_CODEC_TEST_UTIL_H_
#define TIERCACHE_TESTS_CODEC_CODEC_TEST_UTIL_H_

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

namespace tiercache::testing {

// float -> bf16, rounding to nearest even (NaNs stay NaNs).
inline uint16_t ToBf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((bits >> 16) | 0x40);
  return static_cast<uint16_t>((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
}

inline std::vector<uint8_t> AsBytes(const std::vector<uint16_t>& values) {
  std::vector<uint8_t> bytes(values.size() * 2);
  if (!bytes.empty()) std::memcpy(bytes.data(), values.data(), bytes.size());
  return bytes;
}

// Normal(0, sigma) values as bf16 bytes: what trained weights look like.
inline std::vector<uint8_t> NormalBf16(size_t values, float sigma, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, sigma);
  std::vector<uint16_t> v(values);
  for (auto& x : v) x = ToBf16(normal(rng));
  return AsBytes(v);
}

inline std::vector<uint8_t> RandomBytes(size_t bytes, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> out(bytes);
  for (auto& b : out) b = static_cast<uint8_t>(rng());
  return out;
}

// `bytes` bytes ending right before a PROT_NONE page.
class GuardedBuffer {
 public:
  explicit GuardedBuffer(size_t bytes) : bytes_(bytes) {
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    mapped_ = ((bytes + page - 1) / page + 1) * page;
    void* base = mmap(nullptr, mapped_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) {
      ADD_FAILURE() << "mmap failed";
      base_ = nullptr;
      return;
    }
    base_ = static_cast<uint8_t*>(base);
    mprotect(base_ + mapped_ - page, page, PROT_NONE);
    data_ = base_ + (mapped_ - page - bytes);
  }
  GuardedBuffer(const std::vector<uint8_t>& contents) : GuardedBuffer(contents.size()) {
    if (!contents.empty()) std::memcpy(data_, contents.data(), contents.size());
  }
  ~GuardedBuffer() {
    if (base_ != nullptr) munmap(base_, mapped_);
  }
  GuardedBuffer(const GuardedBuffer&) = delete;
  GuardedBuffer& operator=(const GuardedBuffer&) = delete;

  uint8_t* data() { return data_; }
  size_t size() const { return bytes_; }
  std::vector<uint8_t> contents() const { return std::vector<uint8_t>(data_, data_ + bytes_); }

 private:
  size_t bytes_;
  size_t mapped_ = 0;
  uint8_t* base_ = nullptr;
  uint8_t* data_ = nullptr;
};

}  // namespace tiercache::testing

#endif  // TIERCACHE_TESTS_CODEC_CODEC_TEST_UTIL_H_
