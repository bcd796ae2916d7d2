#include "tools/bench/progress.h"

#include <unistd.h>

#include <algorithm>

namespace tiercache::bench {
namespace {

bool ShouldShow(ProgressMode mode, std::FILE* out) {
  if (mode == ProgressMode::kAlways) return true;
  if (mode == ProgressMode::kNever) return false;
  return isatty(fileno(out)) == 1;
}

}  // namespace

ProgressBar::ProgressBar(std::string label, uint64_t total, ProgressMode mode, std::FILE* out)
    : label_(std::move(label)),
      total_(total),
      out_(out),
      enabled_(ShouldShow(mode, out)),
      forced_(mode == ProgressMode::kAlways),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

ProgressBar::~ProgressBar() { Finish(); }

std::string ProgressBar::Render(const std::string& label, uint64_t done, uint64_t total, int width) {
  double fraction = total > 0 ? std::min(1.0, static_cast<double>(done) / total) : 1.0;
  int filled = static_cast<int>(fraction * width);
  std::string bar = "[" + std::string(filled, '#') + std::string(width - filled, ' ') + "]";
  char percent[16];
  std::snprintf(percent, sizeof(percent), " %3d%% ", static_cast<int>(fraction * 100));
  return bar + percent + label + " " + std::to_string(done) + "/" + std::to_string(total);
}

void ProgressBar::Draw(uint64_t done) {
  std::fprintf(out_, "\r%s", Render(label_, done, total_, 30).c_str());
  std::fflush(out_);
  ++draws_;
}

void ProgressBar::Update(uint64_t done) {
  if (!enabled_ || finished_) return;
  auto now = std::chrono::steady_clock::now();
  // Quick runs print nothing unless forced; then at most ten redraws a second.
  if (!forced_ && now - start_ < std::chrono::seconds(1)) return;
  if (draws_ > 0 && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  Draw(done);
}

void ProgressBar::Finish() {
  if (finished_) return;
  finished_ = true;
  if (!enabled_ || draws_ == 0) return;
  Draw(total_);
  std::fputc('\n', out_);
  std::fflush(out_);
}

}  // namespace tiercache::bench
