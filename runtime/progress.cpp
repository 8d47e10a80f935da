#include "runtime/progress.h"

#include <algorithm>

#include <fmt/format.h>

namespace fgq {

Progress::Progress(int64_t total, bool live, bool quiet, std::FILE* out)
    : total_(total), live_(live), quiet_(quiet), out_(out), start_(std::chrono::steady_clock::now()) {}

double Progress::elapsed() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

static std::string clock_str(double seconds) {
  const auto s = static_cast<int64_t>(seconds + 0.5);
  return s >= 3600 ? fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
                   : fmt::format("{}:{:02}", s / 60, s % 60);
}

std::string Progress::bar(int64_t done, double seconds) const {
  constexpr int kWidth = 30;
  const double frac = total_ > 0 ? std::clamp(double(done) / total_, 0.0, 1.0) : 1.0;
  const int filled = static_cast<int>(frac * kWidth);
  const double rate = seconds > 0 ? done / seconds : 0.0;
  const std::string eta = rate > 0 ? clock_str((total_ - done) / rate) : "--:--";
  return fmt::format("[{}{}] {}/{}  {:.1f} img/s  ETA {}", std::string(filled, '#'),
                     std::string(kWidth - filled, '.'), done, total_, rate, eta);
}

void Progress::update(int64_t done) {
  if (quiet_ || !live_) return;
  const double t = elapsed();
  if (last_draw_ >= 0 && t - last_draw_ < 0.1 && done < total_) return;
  last_draw_ = t;
  // \r + erase-line keeps the bar on one terminal line.
  std::fprintf(out_, "\r\033[K%s", bar(done, t).c_str());
  std::fflush(out_);
}

void Progress::message(const std::string& line) {
  if (live_ && !quiet_ && last_draw_ >= 0) std::fprintf(out_, "\r\033[K");
  std::fprintf(out_, "%s\n", line.c_str());
  last_draw_ = -1;  // redraw the bar at the next update
  std::fflush(out_);
}

void Progress::finish(int64_t done, bool interrupted) {
  if (quiet_) return;
  const double t = elapsed();
  if (live_) std::fprintf(out_, "\r\033[K");
  std::fprintf(out_, "%lld/%lld images in %.1f s (%.1f img/s)%s\n", static_cast<long long>(done),
               static_cast<long long>(total_), t, t > 0 ? done / t : 0.0,
               interrupted ? " (interrupted)" : "");
  std::fflush(out_);
}

}  // namespace fgq
