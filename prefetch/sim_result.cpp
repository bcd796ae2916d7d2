#include "prefetch/sim_result.h"

#include <cstdio>

namespace tiercache {

namespace {
std::string Quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string Number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.6f", v);
  return buf;
}
}  // namespace

std::string SimResult::ToJson() const {
  std::string out = "{\"policy\":" + Quote(policy);
  auto field = [&](const char* name, uint64_t v) { out += std::string(",\"") + name + "\":" + std::to_string(v); };
  auto ratio = [&](const char* name, double v) { out += std::string(",\"") + name + "\":" + Number(v); };
  field("capacity_bytes", capacity_bytes);
  field("reads", reads);
  field("hits", hits);
  field("misses", misses);
  field("hit_bytes", hit_bytes);
  field("miss_bytes", miss_bytes);
  field("writes", writes);
  field("evictions", evictions);
  field("bypasses", bypasses);
  field("prefetches", prefetches);
  field("prefetch_bytes", prefetch_bytes);
  field("prefetch_hits", prefetch_hits);
  field("prefetch_wasted", prefetch_wasted);
  field("prefetch_wasted_bytes", prefetch_wasted_bytes);
  ratio("hit_ratio", hit_ratio());
  ratio("byte_hit_ratio", byte_hit_ratio());
  ratio("prefetch_accuracy", prefetch_accuracy());
  ratio("prefetch_coverage", prefetch_coverage());
  return out + "}";
}

}  // namespace tiercache
