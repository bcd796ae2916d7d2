// Status and Result: how expected failures travel through the C++ core.
//
// Contract: a function that can fail for reasons outside the caller's control
// (a tier is full, a block is not found, an I/O error, a device is missing)
// returns Status or Result<T>. Misuse and broken invariants throw through
// TC_CHECK / TC_FAIL instead (see check.h). ErrorCode values are the negative
// codes the C API returns, so the C boundary translates by a cast.
//
// Thread safety: Status and Result are values; distinct objects may be used
// from distinct threads freely, one object needs external synchronisation.
#ifndef TIERCACHE_COMMON_STATUS_H_
#define TIERCACHE_COMMON_STATUS_H_

#include <optional>
#include <string>
#include <utility>

namespace tiercache {

enum class ErrorCode : int {
  kOk = 0,
  kInvalidArgument = -1,   // the caller passed something that cannot work
  kNotFound = -2,          // no such block, key, file or handle
  kOutOfSpace = -3,        // a tier or a budget has no room left
  kOutOfMemory = -4,       // the host or device refused an allocation
  kIoError = -5,           // a read or write failed or came back short
  kCorruption = -6,        // stored data failed its checksum or format check
  kUnavailable = -7,       // a device, feature or resource is not present
  kPermissionDenied = -8,  // the operating system refused (EPERM/EACCES)
  kBusy = -9,              // pinned or in use; try again later
  kAlreadyExists = -10,
  kUnsupported = -11,      // this tier or device does not do that
  kInternal = -12,         // a bug; the message says where
};

// "invalid argument", "not found", ... (never null).
const char* ErrorCodeName(ErrorCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // ok
  Status(ErrorCode code, std::string message)
      : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string m) { return {ErrorCode::kInvalidArgument, std::move(m)}; }
  static Status NotFound(std::string m) { return {ErrorCode::kNotFound, std::move(m)}; }
  static Status OutOfSpace(std::string m) { return {ErrorCode::kOutOfSpace, std::move(m)}; }
  static Status OutOfMemory(std::string m) { return {ErrorCode::kOutOfMemory, std::move(m)}; }
  static Status IoError(std::string m) { return {ErrorCode::kIoError, std::move(m)}; }
  static Status Corruption(std::string m) { return {ErrorCode::kCorruption, std::move(m)}; }
  static Status Unavailable(std::string m) { return {ErrorCode::kUnavailable, std::move(m)}; }
  static Status PermissionDenied(std::string m) { return {ErrorCode::kPermissionDenied, std::move(m)}; }
  static Status Busy(std::string m) { return {ErrorCode::kBusy, std::move(m)}; }
  static Status AlreadyExists(std::string m) { return {ErrorCode::kAlreadyExists, std::move(m)}; }
  static Status Unsupported(std::string m) { return {ErrorCode::kUnsupported, std::move(m)}; }
  static Status Internal(std::string m) { return {ErrorCode::kInternal, std::move(m)}; }
  // From an errno value: EPERM/EACCES -> kPermissionDenied, ENOENT -> kNotFound,
  // ENOSPC -> kOutOfSpace, ENOMEM -> kOutOfMemory, EINVAL -> kInvalidArgument,
  // anything else -> kIoError. The message gets ": strerror(err)" appended.
  static Status FromErrno(int err, std::string context);

  bool ok() const { return code_ == ErrorCode::kOk; }
  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "ok" or "<code name>: <message>".
  std::string ToString() const;

 private:
  ErrorCode code_ = ErrorCode::kOk;
  std::string message_;
};

// A value or the Status that explains why there is none.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}           // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {}   // NOLINT: implicit by design

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  // REQUIRES: ok()
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }

 private:
  std::optional<T> value_;
  Status status_;  // ok() iff value_ holds a value
};

}  // namespace tiercache

#define TC_STATUS_CONCAT_INNER(a, b) a##b
#define TC_STATUS_CONCAT(a, b) TC_STATUS_CONCAT_INNER(a, b)

// Returns the Status of `expr` from the enclosing function unless it is ok.
#define TC_RETURN_IF_ERROR(expr)                         \
  do {                                                   \
    ::tiercache::Status tc_status_ = (expr);             \
    if (!tc_status_.ok()) return tc_status_;             \
  } while (0)

// `lhs = value of expr`, or returns its Status from the enclosing function.
#define TC_ASSIGN_OR_RETURN(lhs, expr) \
  TC_ASSIGN_OR_RETURN_IMPL(TC_STATUS_CONCAT(tc_result_, __LINE__), lhs, expr)
#define TC_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                             \
  if (!tmp.ok()) return tmp.status();            \
  lhs = std::move(tmp).value()

#endif  // TIERCACHE_COMMON_STATUS_H_
