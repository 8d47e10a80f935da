#include "ops/normalization.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "fgq/error.h"

namespace fgq::ops {

void lrn_f32(const float* x, float* y, int64_t C, int64_t spatial, int64_t size, float alpha, float beta, float bias) {
  if (C <= 0 || spatial <= 0 || size <= 0) fail("lrn", "non-positive size");
  const int64_t before = (size - 1) / 2, after = size - 1 - before;  // floor and ceil of (size - 1) / 2
  std::vector<double> sq(size_t(C * spatial));
  for (int64_t k = 0; k < C * spatial; ++k) sq[size_t(k)] = double(x[k]) * x[k];
  std::vector<double> sum(static_cast<size_t>(spatial), 0.0);
  for (int64_t c = 0; c < C; ++c) {
    std::fill(sum.begin(), sum.end(), 0.0);
    for (int64_t j = std::max<int64_t>(0, c - before); j <= std::min(C - 1, c + after); ++j)
      for (int64_t i = 0; i < spatial; ++i) sum[size_t(i)] += sq[size_t(j * spatial + i)];
    for (int64_t i = 0; i < spatial; ++i) {
      const double d = std::pow(bias + double(alpha) / double(size) * sum[size_t(i)], double(beta));
      y[c * spatial + i] = float(x[c * spatial + i] / d);
    }
  }
}

void instance_norm_f32(const float* x, float* y, int64_t C, int64_t spatial, const float* scale, const float* shift,
                       float eps) {
  if (C <= 0 || spatial <= 0) fail("instance_norm", "non-positive size");
  for (int64_t c = 0; c < C; ++c) {
    const float* xc = x + c * spatial;
    double mean = 0, var = 0;
    for (int64_t i = 0; i < spatial; ++i) mean += xc[i];
    mean /= double(spatial);
    for (int64_t i = 0; i < spatial; ++i) var += (xc[i] - mean) * (xc[i] - mean);
    var /= double(spatial);
    const double a = scale[c] / std::sqrt(var + eps), b = shift[c] - a * mean;
    float* yc = y + c * spatial;
    for (int64_t i = 0; i < spatial; ++i) yc[i] = float(a * xc[i] + b);
  }
}

}  // namespace fgq::ops
