#include "common/status.h"

#include <gtest/gtest.h>

#include <cerrno>

#include "common/check.h"

namespace tiercache {
namespace {

Result<int> Half(int x) {
  if (x % 2 != 0) return Status::InvalidArgument("odd");
  return x / 2;
}

Status Quarter(int x, int* out) {
  TC_ASSIGN_OR_RETURN(int half, Half(x));
  TC_ASSIGN_OR_RETURN(*out, Half(half));
  return Status::Ok();
}

TEST(Status, CarriesCodeAndMessage) {
  Status s = Status::NotFound("block 7");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(ErrorCode::kNotFound, s.code());
  EXPECT_EQ("not found: block 7", s.ToString());
  EXPECT_EQ("ok", Status::Ok().ToString());
}

TEST(Status, MapsErrnoValues) {
  EXPECT_EQ(ErrorCode::kPermissionDenied, Status::FromErrno(EPERM, "bind").code());
  EXPECT_EQ(ErrorCode::kNotFound, Status::FromErrno(ENOENT, "open").code());
  EXPECT_EQ(ErrorCode::kOutOfSpace, Status::FromErrno(ENOSPC, "write").code());
  EXPECT_EQ(ErrorCode::kIoError, Status::FromErrno(EIO, "read").code());
  EXPECT_NE(std::string::npos, Status::FromErrno(EIO, "read x").message().find("read x: "));
}

TEST(Result, PropagatesThroughMacros) {
  int out = 0;
  EXPECT_TRUE(Quarter(8, &out).ok());
  EXPECT_EQ(2, out);
  EXPECT_EQ(ErrorCode::kInvalidArgument, Quarter(6, &out).code());
  EXPECT_EQ(ErrorCode::kInvalidArgument, Quarter(5, &out).code());
}

TEST(Check, ThrowsLogicErrorWithLocation) {
  try {
    TC_CHECK(1 + 1 == 3, "arithmetic");
    FAIL() << "no throw";
  } catch (const LogicError& e) {
    EXPECT_NE(std::string::npos, std::string(e.what()).find("status_test.cpp"));
    EXPECT_NE(std::string::npos, std::string(e.what()).find("arithmetic"));
  }
}

}  // namespace
}  // namespace tiercache
