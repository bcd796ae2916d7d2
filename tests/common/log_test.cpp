#include "common/log.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace tiercache {
namespace {

uint64_t CountOf(const std::string& name) {
  for (const FallbackEvent& e : Fallbacks()) {
    if (e.name == name) return e.count;
  }
  return 0;
}

TEST(Fallbacks, CountsEveryUseAndKeepsTheFirstReason) {
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([i] {
      for (int j = 0; j < 100; ++j) RecordFallback("test.fallback", "reason " + std::to_string(i));
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(400u, CountOf("test.fallback"));
  for (const FallbackEvent& e : Fallbacks()) {
    if (e.name == "test.fallback") EXPECT_EQ(0u, e.reason.rfind("reason ", 0));
  }
  EXPECT_EQ(0u, CountOf("never.taken"));
}

}  // namespace
}  // namespace tiercache
