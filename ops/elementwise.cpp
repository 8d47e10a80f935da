// Element-wise FP32 ops: memory bound once vectorised (see map2).
#include "ops/elementwise.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "fgq/error.h"

namespace fgq::ops {

namespace {

// y[i] = f(a[i], b[i]) through a local block of fixed length: the output may alias the inputs,
// and GCC at -O2 vectorises fixed-length loops but will not version a loop for aliasing.
template <class F>
void map2(const float* a, const float* b, float* y, int64_t n, F f) {
  constexpr int kLanes = 16;
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    float va[kLanes], vb[kLanes];
    for (int j = 0; j < kLanes; ++j) {
      va[j] = a[i + j];
      vb[j] = b[i + j];
    }
    for (int j = 0; j < kLanes; ++j) y[i + j] = f(va[j], vb[j]);
  }
  for (; i < n; ++i) y[i] = f(a[i], b[i]);
}

template <class F>
void map1(const float* x, float* y, int64_t n, F f) {
  map2(x, x, y, n, [f](float v, float) { return f(v); });
}

}  // namespace

void relu_f32(const float* x, float* y, int64_t n) {
  map1(x, y, n, [](float v) { return v > 0.f ? v : 0.f; });
}

void add_f32(const float* a, const float* b, float* y, int64_t n, bool relu) {
  if (relu)
    map2(a, b, y, n, [](float u, float v) { return u + v > 0.f ? u + v : 0.f; });
  else
    map2(a, b, y, n, [](float u, float v) { return u + v; });
}

void scale_shift_f32(const float* x, float* y, int64_t n, float scale, float shift) {
  map1(x, y, n, [=](float v) { return v * scale + shift; });
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
  if (qmin < -(1 << 22) || qmax > (1 << 22)) fail("fake_quant", "qmin/qmax beyond +-2^22");
  const float lo = static_cast<float>(qmin), hi = static_cast<float>(qmax);
  // Clamping before rounding gives the same result (the bounds are integers). Adding and
  // subtracting 1.5 * 2^23 rounds |v| <= 2^22 to an integer, half to even in the default
  // rounding mode (like nearbyint and ONNX QuantizeLinear), and unlike nearbyint it vectorises.
  constexpr float kRound = 12582912.f;
  map1(x, y, n, [=](float v) {
    v /= scale;
    v = v < lo ? lo : v;
    v = v > hi ? hi : v;
    return ((v + kRound) - kRound) * scale;
  });
}

}  // namespace fgq::ops
