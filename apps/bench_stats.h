#pragma once
// The benches' clock and their statistic: steady-clock nanoseconds and the median.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <vector>

namespace fgq::bench {

inline int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n == 0 ? 0 : n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace fgq::bench
