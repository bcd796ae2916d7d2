// Misuse and broken invariants: the one pair of macros that throws.
//
// TC_CHECK(cond, message) throws tiercache::LogicError naming the file, line
// and condition when `cond` is false; TC_FAIL(message) throws unconditionally.
// Expected failures never use these: they return Status (see status.h). The C
// API catches LogicError and returns TIERCACHE_ERR_INTERNAL.
#ifndef TIERCACHE_COMMON_CHECK_H_
#define TIERCACHE_COMMON_CHECK_H_

#include <stdexcept>
#include <string>

namespace tiercache {

class LogicError : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

[[noreturn]] void ThrowLogicError(const char* file, int line, const char* condition,
                                  const std::string& message);

}  // namespace tiercache

#define TC_CHECK(cond, message)                                                 \
  do {                                                                          \
    if (!(cond)) ::tiercache::ThrowLogicError(__FILE__, __LINE__, #cond, (message)); \
  } while (0)

#define TC_FAIL(message) ::tiercache::ThrowLogicError(__FILE__, __LINE__, "", (message))

#endif  // TIERCACHE_COMMON_CHECK_H_
