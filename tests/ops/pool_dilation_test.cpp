// Dilated MaxPool / AveragePool (ops/pool) against a tap-by-tap reference on random shapes:
// odd sizes, asymmetric pads, strides, ceil mode, count_include_pad; dilation 1 must agree with
// the same reference too (the fast path).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "ops/pool.h"
#include "support/test_util.h"

using fgq::ops::Pool2dShape;

namespace {

// ONNX output size of a window spanning (k - 1) * d + 1 positions; in ceil mode a window that
// would start inside the end padding is dropped.
int out_size(int in, int k, int s, int d, int pb, int pe, bool ceil_mode) {
  const int span = in + pb + pe - ((k - 1) * d + 1);
  int out = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
  if (ceil_mode && (out - 1) * s >= in + pb) --out;
  return out;
}

std::vector<float> reference(const Pool2dShape& s, const std::vector<float>& x, bool is_max) {
  const int OH = out_size(s.H, s.KH, s.SH, s.DH, s.PT, s.PB, s.ceil_mode);
  const int OW = out_size(s.W, s.KW, s.SW, s.DW, s.PL, s.PR, s.ceil_mode);
  std::vector<float> y;
  for (int c = 0; c < s.C; ++c)
    for (int oh = 0; oh < OH; ++oh)
      for (int ow = 0; ow < OW; ++ow) {
        float mx = -std::numeric_limits<float>::infinity();
        double sum = 0;
        int inside = 0, padded = 0;
        for (int i = 0; i < s.KH; ++i)
          for (int j = 0; j < s.KW; ++j) {
            const int h = oh * s.SH - s.PT + i * s.DH, w = ow * s.SW - s.PL + j * s.DW;
            if (h < s.H + s.PB && w < s.W + s.PR) ++padded;  // within the padded image
            if (h < 0 || h >= s.H || w < 0 || w >= s.W) continue;
            const float v = x[size_t((c * s.H + h) * s.W + w)];
            mx = std::max(mx, v);
            sum += v;
            ++inside;
          }
        const int cnt = s.count_include_pad ? padded : inside;
        y.push_back(is_max ? mx : (cnt ? float(sum / cnt) : 0.f));
      }
  return y;
}

}  // namespace

TEST_CASE("pool: dilated max and average pooling match the tap-by-tap reference") {
  std::mt19937 rng(21);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  int checked = 0;
  for (int iter = 0; iter < 400; ++iter) {
    Pool2dShape s;
    s.C = pick(1, 3), s.H = pick(1, 17), s.W = pick(1, 19);
    s.KH = pick(1, 4), s.KW = pick(1, 4), s.SH = pick(1, 3), s.SW = pick(1, 3);
    s.DH = pick(1, 3), s.DW = pick(1, 3);
    const int eh = (s.KH - 1) * s.DH + 1, ew = (s.KW - 1) * s.DW + 1;
    // Pads smaller than the window span (what shape inference allows).
    s.PT = pick(0, eh - 1), s.PB = pick(0, eh - 1), s.PL = pick(0, ew - 1), s.PR = pick(0, ew - 1);
    s.ceil_mode = pick(0, 1) != 0;
    s.count_include_pad = pick(0, 1) != 0;
    if (s.H + s.PT + s.PB < eh || s.W + s.PL + s.PR < ew) continue;  // does not fit
    const auto x = fgq::test::random_floats(size_t(s.C) * s.H * s.W, uint32_t(iter));
    INFO("iteration " << iter << ": " << s.H << "x" << s.W << " k " << s.KH << "x" << s.KW << " s " << s.SH << "x"
                      << s.SW << " d " << s.DH << "x" << s.DW << " pads " << s.PT << "," << s.PL << "," << s.PB
                      << "," << s.PR << " ceil " << s.ceil_mode << " include_pad " << s.count_include_pad);
    REQUIRE(s.OH() == out_size(s.H, s.KH, s.SH, s.DH, s.PT, s.PB, s.ceil_mode));
    REQUIRE(s.OW() == out_size(s.W, s.KW, s.SW, s.DW, s.PL, s.PR, s.ceil_mode));
    for (bool is_max : {true, false}) {
      const auto want = reference(s, x, is_max);
      std::vector<float> got(want.size(), -7.f);
      if (is_max)
        fgq::ops::maxpool2d_f32(s, x.data(), got.data());
      else
        fgq::ops::avgpool2d_f32(s, x.data(), got.data());
      for (size_t k = 0; k < want.size(); ++k) {
        INFO((is_max ? "max" : "avg") << " element " << k);
        if (std::isinf(want[k]))
          REQUIRE(got[k] == want[k]);
        else
          REQUIRE(got[k] == Approx(want[k]).margin(1e-6).epsilon(1e-5));
      }
    }
    ++checked;
  }
  REQUIRE(checked > 200);
}

TEST_CASE("pool: a large dilated window (the PyTorch 1000x1000 case, smaller)") {
  Pool2dShape s;
  s.C = 1, s.H = 200, s.W = 150;
  s.KH = 12, s.KW = 16, s.SH = 10, s.SW = 10, s.DH = 10, s.DW = 10;
  s.PT = s.PB = 10, s.PL = s.PR = 20;
  const auto x = fgq::test::random_floats(size_t(s.H) * s.W, 9);
  const auto want = reference(s, x, true);
  std::vector<float> got(want.size());
  fgq::ops::maxpool2d_f32(s, x.data(), got.data());
  REQUIRE(got == want);
}
