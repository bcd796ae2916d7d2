// ProgressBar: one self-overwriting line on stderr for long runs.
//
// Shown only when stderr is a terminal (mode kAuto) or when forced (kAlways),
// never with kNever; in kAuto it stays silent for the first second, so quick
// runs print nothing. Redraws at most ten times a second; Finish() (or the
// destructor) ends the line. The output goes to a FILE* so tests can capture
// it.
//
// Thread safety: one thread updates a ProgressBar.
#ifndef TIERCACHE_TOOLS_BENCH_PROGRESS_H_
#define TIERCACHE_TOOLS_BENCH_PROGRESS_H_

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

#include "tools/bench/options.h"

namespace tiercache::bench {

class ProgressBar {
 public:
  ProgressBar(std::string label, uint64_t total, ProgressMode mode, std::FILE* out = stderr);
  ~ProgressBar();
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  void Update(uint64_t done);
  void Finish();
  bool enabled() const { return enabled_; }
  uint64_t draws() const { return draws_; }

  // "[#####     ]  50% label 5/10"; exposed for tests.
  static std::string Render(const std::string& label, uint64_t done, uint64_t total, int width);

 private:
  void Draw(uint64_t done);

  const std::string label_;
  const uint64_t total_;
  std::FILE* const out_;
  const bool enabled_;
  const bool forced_;
  const std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
  uint64_t draws_ = 0;
  bool finished_ = false;
};

}  // namespace tiercache::bench

#endif  // TIERCACHE_TOOLS_BENCH_PROGRESS_H_
