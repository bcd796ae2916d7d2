#include "common/status.h"

#include <cerrno>
#include <cstring>

namespace tiercache {

const char* ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kOk: return "ok";
    case ErrorCode::kInvalidArgument: return "invalid argument";
    case ErrorCode::kNotFound: return "not found";
    case ErrorCode::kOutOfSpace: return "out of space";
    case ErrorCode::kOutOfMemory: return "out of memory";
    case ErrorCode::kIoError: return "I/O error";
    case ErrorCode::kCorruption: return "corruption";
    case ErrorCode::kUnavailable: return "unavailable";
    case ErrorCode::kPermissionDenied: return "permission denied";
    case ErrorCode::kBusy: return "busy";
    case ErrorCode::kAlreadyExists: return "already exists";
    case ErrorCode::kUnsupported: return "unsupported";
    case ErrorCode::kInternal: return "internal error";
  }
  return "unknown error";
}

Status Status::FromErrno(int err, std::string context) {
  std::string message = std::move(context) + ": " + std::strerror(err);
  switch (err) {
    case EPERM:
    case EACCES: return PermissionDenied(std::move(message));
    case ENOENT: return NotFound(std::move(message));
    case ENOSPC: return OutOfSpace(std::move(message));
    case ENOMEM: return OutOfMemory(std::move(message));
    case EINVAL: return InvalidArgument(std::move(message));
    case ENOSYS:
    case EOPNOTSUPP: return Unsupported(std::move(message));
    case EBUSY: return Busy(std::move(message));
    case EEXIST: return AlreadyExists(std::move(message));
    default: return IoError(std::move(message));
  }
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  std::string s = ErrorCodeName(code_);
  if (!message_.empty()) s += ": " + message_;
  return s;
}

}  // namespace tiercache
