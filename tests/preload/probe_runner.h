// Runs preload_probe (or another program) with or without
// LD_PRELOAD=libtiercache_preload.so and reads what it printed. Shared by the
// preload tests; header-only, test code.
#ifndef TIERCACHE_TESTS_PRELOAD_PROBE_RUNNER_H_
#define TIERCACHE_TESTS_PRELOAD_PROBE_RUNNER_H_

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/preload/built_library.h"

extern char** environ;

namespace preload_test {

struct ProbeRun {
  int exit_code = -1;
  std::string out, err;
};

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

inline std::string PreloadLibrary() { return BuiltLibrary(TIERCACHE_PRELOAD_LIBRARY); }

inline ProbeRun RunProbe(const std::string& binary, const std::vector<std::string>& args, bool preload,
             const std::map<std::string, std::string>& extra = {}) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string entry = *e;
    if (entry.rfind("TIERCACHE_", 0) == 0 || entry.rfind("LD_PRELOAD=", 0) == 0) continue;
    env.push_back(entry);
  }
  if (preload) env.push_back("LD_PRELOAD=" + PreloadLibrary());
  for (const auto& [k, v] : extra) env.push_back(k + "=" + v);
  std::vector<char*> envp, argv;
  for (std::string& s : env) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> all = {binary};
  all.insert(all.end(), args.begin(), args.end());
  for (std::string& s : all) argv.push_back(s.data());
  argv.push_back(nullptr);

  std::string dir = testing::TempDir();
  std::string out_path = dir + "/probe_out." + std::to_string(getpid());
  std::string err_path = dir + "/probe_err." + std::to_string(getpid());
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = -1;
  ProbeRun run;
  if (posix_spawn(&pid, binary.c_str(), &actions, nullptr, argv.data(), envp.data()) == 0) {
    int status = 0;
    waitpid(pid, &status, 0);
    run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  posix_spawn_file_actions_destroy(&actions);
  run.out = ReadFile(out_path);
  run.err = ReadFile(err_path);
  std::remove(out_path.c_str());
  std::remove(err_path.c_str());
  return run;
}

inline ProbeRun Probe(bool preload, const std::map<std::string, std::string>& extra = {}) {
  return RunProbe(TIERCACHE_PROBE, {TIERCACHE_DRIVER_STUB, BuiltLibrary(TIERCACHE_PROBE_SCOPE_LIBRARY)},
                  preload, extra);
}

// The value after "name " on its line in the probe's output.
inline std::string Value(const std::string& out, const std::string& name) {
  std::stringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(name + " ", 0) == 0) return line.substr(name.size() + 1);
  }
  return "";
}

// The "passed_through" / "served" count of `api` in the stats JSON.
inline uint64_t Count(const std::string& stats, const std::string& api, const std::string& field) {
  size_t at = stats.find("\"" + api + "\":{");
  if (at == std::string::npos) return UINT64_MAX;
  size_t f = stats.find("\"" + field + "\":", at);
  return f == std::string::npos ? UINT64_MAX : std::stoull(stats.substr(f + field.size() + 3));
}

}  // namespace preload_test

#endif  // TIERCACHE_TESTS_PRELOAD_PROBE_RUNNER_H_
