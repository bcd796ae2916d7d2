#include "common/units.h"

#include <gtest/gtest.h>

namespace tiercache {
namespace {

TEST(ParseBytes, AcceptsUnits) {
  EXPECT_EQ(4096u, *ParseBytes("4096"));
  EXPECT_EQ(16 * kKiB, *ParseBytes("16k"));
  EXPECT_EQ(64 * kMiB, *ParseBytes("64MiB"));
  EXPECT_EQ(3 * kGiB / 2, *ParseBytes("1.5 GiB"));
  EXPECT_EQ(2000000000u, *ParseBytes("2GB"));
  EXPECT_EQ(5u, *ParseBytes(" 5b "));
}

TEST(ParseBytes, RejectsGarbage) {
  for (const char* bad : {"", "-1", "MiB", "12 parsecs", "1e3", "99999999999T", "."}) {
    EXPECT_EQ(ErrorCode::kInvalidArgument, ParseBytes(bad).status().code()) << bad;
  }
}

TEST(FormatBytes, PicksAReadableUnit) {
  EXPECT_EQ("512 B", FormatBytes(512));
  EXPECT_EQ("64.00 MiB", FormatBytes(64 * kMiB));
  EXPECT_EQ("1.50 GiB", FormatBytes(3 * kGiB / 2));
}

}  // namespace
}  // namespace tiercache
