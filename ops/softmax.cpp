#include "ops/softmax.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "fgq/error.h"

namespace fgq::ops {

void softmax_axis_f32(const float* x, float* y, int64_t n, int64_t inner, bool log) {
  if (n <= 0 || inner <= 0) fail("softmax", "non-positive size");
  // Rows of `inner` contiguous values: reduce row by row, so every loop runs over contiguous data.
  std::vector<float> mx(x, x + inner);
  for (int64_t j = 1; j < n; ++j) {
    const float* xr = x + j * inner;
    for (int64_t i = 0; i < inner; ++i) mx[size_t(i)] = std::max(mx[size_t(i)], xr[i]);
  }
  std::vector<double> sum(size_t(inner), 0.0);
  for (int64_t j = 0; j < n; ++j) {
    const float* xr = x + j * inner;
    float* yr = y + j * inner;
    for (int64_t i = 0; i < inner; ++i) {
      const float d = xr[i] - mx[size_t(i)];
      sum[size_t(i)] += std::exp(d);
      yr[i] = log ? d : std::exp(d);
    }
  }
  for (int64_t j = 0; j < n; ++j) {
    float* yr = y + j * inner;
    for (int64_t i = 0; i < inner; ++i)
      yr[i] = log ? float(yr[i] - std::log(sum[size_t(i)])) : float(yr[i] / sum[size_t(i)]);
  }
}

void log_softmax_rows_f32(const float* x, float* y, int64_t rows, int64_t cols) {
  if (rows < 0 || cols <= 0) fail("log_softmax", "non-positive size");
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * cols;
    float* yr = y + r * cols;
    const float m = *std::max_element(xr, xr + cols);
    double sum = 0;
    for (int64_t c = 0; c < cols; ++c) sum += std::exp(double(xr[c] - m));
    const float shift = float(m + std::log(sum));
    for (int64_t c = 0; c < cols; ++c) yr[c] = xr[c] - shift;
  }
}

}  // namespace fgq::ops
