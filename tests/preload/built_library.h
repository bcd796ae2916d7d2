// Where a library the tests built is: at its build path, or, in a pack
// run on another machine, on LD_LIBRARY_PATH. Header-only, test code.
#ifndef TIERCACHE_TESTS_PRELOAD_BUILT_LIBRARY_H_
#define TIERCACHE_TESTS_PRELOAD_BUILT_LIBRARY_H_

#include <unistd.h>

#include <cstdlib>
#include <sstream>
#include <string>

namespace preload_test {

// A library at its build path, else on LD_LIBRARY_PATH (a pack on another machine).
inline std::string BuiltLibrary(const std::string& built) {
  if (access(built.c_str(), R_OK) == 0) return built;
  const char* paths = std::getenv("LD_LIBRARY_PATH");
  std::stringstream dirs(paths == nullptr ? "" : paths);
  std::string file = built.substr(built.rfind('/') + 1);
  for (std::string dir; std::getline(dirs, dir, ':');) {
    std::string candidate = dir + "/" + file;
    if (access(candidate.c_str(), R_OK) == 0) return candidate;
  }
  return built;
}

}  // namespace preload_test

#endif  // TIERCACHE_TESTS_PRELOAD_BUILT_LIBRARY_H_
