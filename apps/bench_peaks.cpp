#include "bench_peaks.h"

#include <fmt/format.h>

#include <algorithm>

namespace fgq::bench {

using nlohmann::json;

PeakTracker::PeakTracker(ops::Isa isa, int threads, double seconds)
    : threads_(threads), seconds_(seconds), int8_loop_(ops::int8_peak_loop(isa)),
      fp32_loop_(ops::fp32_peak_loop()) {
  if (isa == ops::Isa::Avx2) int16_loop_ = ops::PeakLoop::Vpmaddwd256;
}

const Peaks& PeakTracker::measure(const std::string& when, bool single) {
  json entry = {{"when", when}};
  auto one = [&](std::optional<ops::PeakLoop> loop, Peak& best, const char* key) {
    if (!loop) return;
    const ops::PeakResult all = ops::measure_peak(*loop, threads_, seconds_, 3);
    if (!best.all || all.total > best.all->total) best.all = all;
    entry[key] = all.total;
    rates_[key].push_back(all.total);
    if (single) {
      const ops::PeakResult one = threads_ == 1 ? all : ops::measure_peak(*loop, 1, seconds_, 3);
      if (!best.single || one.total > best.single->total) best.single = one;
      entry[std::string(key) + "_single_thread"] = one.total;
    }
  };
  one(int8_loop_, best_.int8, "int8");
  one(fp32_loop_, best_.fp32, "fp32");
  one(int16_loop_, best_.kernel16, "int16_avx2_kernel");
  history_.push_back(std::move(entry));
  return best_;
}

bool PeakTracker::moved(const std::string& key, double& lo, double& hi) const {
  const auto it = rates_.find(key);
  if (it == rates_.end() || it->second.empty()) return false;
  lo = *std::min_element(it->second.begin(), it->second.end());
  hi = *std::max_element(it->second.begin(), it->second.end());
  return hi > 1.15 * lo;
}

std::string peak_line(const char* what, const Peak& p, const char* unit) {
  if (!p.all) return fmt::format("{:<6} n/a (no SIMD dot product on this path)", what);
  std::string per;
  for (double g : p.all->per_thread) per += fmt::format("{}{:.1f}", per.empty() ? "" : " + ", g);
  return fmt::format("{:<6} {:8.1f} {} ({}, {} threads: {}; 1 thread {:.1f})", what, p.all->total,
                     unit, ops::peak_loop_name(p.all->loop), p.all->threads, per, p.single->total);
}

json peak_json(const Peak& p) {
  if (!p.all) return nullptr;
  return {{"kernel", ops::peak_loop_name(p.all->loop)},
          {"macs_per_instruction", ops::peak_loop_ops_per_instruction(p.all->loop)},
          {"threads", p.all->threads},
          {"gmacs_per_second", p.all->total},
          {"per_thread", p.all->per_thread},
          {"single_thread_gmacs_per_second", p.single->total},
          {"seconds_per_trial", p.all->seconds}};
}

}  // namespace fgq::bench
