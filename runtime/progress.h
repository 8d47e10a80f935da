#pragma once
// Progress of a long evaluation on stderr: a live bar (done/total, img/s, ETA) redrawn in place
// when stderr is a terminal, otherwise only one final line, so logs stay readable.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace fgq {

class Progress {
 public:
  // live: redraw in place (normally isatty(stderr)); quiet: print nothing at all.
  Progress(int64_t total, bool live, bool quiet, std::FILE* out = stderr);
  // Called by one thread at a time; redraws at most ~10 times a second.
  void update(int64_t done);
  // Prints one line (a warning) without garbling the bar; printed even when quiet.
  void message(const std::string& line);
  // Final line "<done>/<total> images in S s (R img/s)" (+ " (interrupted)").
  void finish(int64_t done, bool interrupted = false);

  // The text of the bar for `done` images after `seconds` (exposed for tests).
  std::string bar(int64_t done, double seconds) const;

 private:
  double elapsed() const;
  int64_t total_;
  bool live_, quiet_;
  std::FILE* out_;
  std::chrono::steady_clock::time_point start_;
  double last_draw_ = -1;
};

}  // namespace fgq
