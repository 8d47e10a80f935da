#pragma once
// fgq-bench: the machine's int8 and FP32 peaks, measured during the run (ops/cpu_peak.h), and
// "% of peak" of a number of multiply-accumulates done in a time.
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench_costs.h"
#include "ops/cpu_features.h"
#include "ops/cpu_peak.h"

namespace fgq::bench {

inline constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

struct Peak {
  std::optional<ops::PeakResult> all;     // --threads threads at once
  std::optional<ops::PeakResult> single;  // one thread
  double rate() const { return all ? all->total : kNaN; }  // G multiply-adds / s
};

struct Peaks {
  Peak int8, fp32;
  Peak kernel16;  // avx2 only: vpmaddwd, the instruction the exact avx2 qconv path runs
  double rate(Kind k) const { return k == Kind::Int8 ? int8.rate() : k == Kind::Fp32 ? fp32.rate() : kNaN; }
  // % of peak of `macs` (per kind) done in `seconds`: the time they take at peak over `seconds`.
  double percent(const MacTotals& macs, double seconds) const {
    double ideal = 0;
    if (macs.int8) ideal += macs.int8 * 1e-9 / int8.rate();
    if (macs.fp32) ideal += macs.fp32 * 1e-9 / fp32.rate();
    return seconds > 0 && macs.all() > 0 ? 100 * ideal / seconds : kNaN;
  }
};

// The machine's peak as the best rate measured so far in this run: measured at the start and
// again before every table is printed (a shared machine only ever makes a measurement lower),
// each time on --threads threads at once; one thread alone too at the start and the end, to tell
// a busy machine.
class PeakTracker {
 public:
  PeakTracker(ops::Isa isa, int threads, double seconds);
  // Measures now; returns the best so far. `single`: also one thread alone.
  const Peaks& measure(const std::string& when, bool single);
  const Peaks& best() const { return best_; }
  const nlohmann::json& history() const { return history_; }
  // The T-thread rate of `key` moved by more than 15 % between measurements: the load changed.
  bool moved(const std::string& key, double& lo, double& hi) const;

 private:
  int threads_;
  double seconds_;
  std::optional<ops::PeakLoop> int8_loop_, fp32_loop_, int16_loop_;
  Peaks best_;
  nlohmann::json history_ = nlohmann::json::array();
  std::map<std::string, std::vector<double>> rates_;
};

std::string peak_line(const char* what, const Peak& p, const char* unit);
nlohmann::json peak_json(const Peak& p);

}  // namespace fgq::bench
