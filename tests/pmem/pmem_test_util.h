// Utilities shared by the PMEM tier's tests: a temporary directory that
// removes itself, raw file access for damaging files on purpose, and small
// tier options.
#ifndef TIERCACHE_TESTS_PMEM_PMEM_TEST_UTIL_H_
#define TIERCACHE_TESTS_PMEM_PMEM_TEST_UTIL_H_

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "tests/tiers/tier_conformance.h"
#include "tiers/pmem_tier.h"

namespace tiercache::testing {

// mkdtemp under $TMPDIR (or /tmp); removed with everything in it.
class ScopedTempDir {
 public:
  ScopedTempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base != nullptr && *base != '\0' ? base : "/tmp") +
                          "/tiercache-pmem-XXXXXX";
    if (mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~ScopedTempDir() {
    std::error_code ignored;
    if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
  }
  ScopedTempDir(const ScopedTempDir&) = delete;
  ScopedTempDir& operator=(const ScopedTempDir&) = delete;

  bool ok() const { return !path_.empty(); }
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline std::vector<unsigned char> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return {};
  std::vector<unsigned char> bytes(static_cast<size_t>(in.tellg()));
  in.seekg(0);
  in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  return bytes;
}

inline void WriteWholeFile(const std::string& path, const std::vector<unsigned char>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

// Overwrites `bytes` at `offset` of an existing file (no truncation).
inline void PatchFile(const std::string& path, uint64_t offset, const void* bytes, uint64_t n) {
  std::fstream f(path, std::ios::binary | std::ios::in | std::ios::out);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(static_cast<const char*>(bytes), static_cast<std::streamsize>(n));
}

inline PmemTierOptions SmallOptions(const std::string& path, uint64_t capacity = 4 * kMiB,
                                    uint64_t index_entries = 64) {
  PmemTierOptions options;
  options.path = path;
  options.capacity = capacity;
  options.index_entries = index_entries;
  return options;
}

inline std::vector<unsigned char> Pattern(uint64_t bytes, uint64_t seed) {
  std::vector<unsigned char> v(bytes);
  FillPattern(v.data(), bytes, seed);
  return v;
}

}  // namespace tiercache::testing

#endif  // TIERCACHE_TESTS_PMEM_PMEM_TEST_UTIL_H_
