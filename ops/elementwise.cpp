// Element-wise FP32 ops. Plain loops: GCC vectorizes them, and they are memory bound anyway.
#include "ops/elementwise.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "fgq/error.h"

namespace fgq::ops {

void relu_f32(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = std::max(x[i], 0.f);
}

void add_f32(const float* a, const float* b, float* y, int64_t n, bool relu) {
  if (relu)
    for (int64_t i = 0; i < n; ++i) y[i] = std::max(a[i] + b[i], 0.f);
  else
    for (int64_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
}

void softmax_f32(const float* x, float* y, int rows, int cols) {
  if (rows < 0 || cols <= 0) fail("softmax", "non-positive size");
  for (int r = 0; r < rows; ++r) {
    const float* xr = x + static_cast<long>(r) * cols;
    float* yr = y + static_cast<long>(r) * cols;
    // Subtracting the row max keeps exp() from overflowing; the result is unchanged.
    const float m = *std::max_element(xr, xr + cols);
    double sum = 0;
    for (int c = 0; c < cols; ++c) {
      yr[c] = std::exp(xr[c] - m);
      sum += yr[c];
    }
    const float inv = static_cast<float>(1.0 / sum);
    for (int c = 0; c < cols; ++c) yr[c] *= inv;
  }
}

void pad_f32(const float* x, float* y, int C, int H, int W, int PT, int PL, int PB, int PR,
             float value) {
  if (C <= 0 || H <= 0 || W <= 0 || PT < 0 || PL < 0 || PB < 0 || PR < 0)
    fail("pad", "invalid shape (non-positive size or negative pad)");
  const int OH = H + PT + PB, OW = W + PL + PR;
  for (int c = 0; c < C; ++c) {
    float* yc = y + static_cast<long>(c) * OH * OW;
    std::fill(yc, yc + static_cast<long>(PT) * OW, value);
    for (int h = 0; h < H; ++h) {
      float* row = yc + static_cast<long>(PT + h) * OW;
      std::fill(row, row + PL, value);
      std::memcpy(row + PL, x + (static_cast<long>(c) * H + h) * W, sizeof(float) * W);
      std::fill(row + PL + W, row + OW, value);
    }
    std::fill(yc + static_cast<long>(PT + H) * OW, yc + static_cast<long>(OH) * OW, value);
  }
}

void fake_quant_f32(const float* x, float* y, int64_t n, float scale, int qmin, int qmax) {
  if (!(scale > 0.f) || !std::isfinite(scale)) fail("fake_quant", "scale must be positive and finite");
  if (qmin > qmax) fail("fake_quant", "qmin > qmax");
  const float lo = static_cast<float>(qmin), hi = static_cast<float>(qmax);
  // nearbyint rounds half to even in the default rounding mode (like ONNX QuantizeLinear).
  for (int64_t i = 0; i < n; ++i) y[i] = std::clamp(std::nearbyint(x[i] / scale), lo, hi) * scale;
}

}  // namespace fgq::ops
