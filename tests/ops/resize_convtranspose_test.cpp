// ops/resize against a line-by-line port of the ONNX reference (interpolate_1d_with_x with its
// neighbour search by sorting), and ops/conv_transpose against a direct scatter loop; random
// sizes, every mode.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "ops/conv_transpose.h"
#include "ops/resize.h"
#include "support/test_util.h"

using fgq::test::random_floats;
using namespace fgq::ops;

namespace {

// onnx/backend/test/case/node/resize.py, interpolate_1d_with_x, for one output coordinate x of
// a 1-D signal `data`.
double onnx_interpolate_1d(const std::vector<double>& data, double scale, int64_t x, const ResizeOptions& o) {
  const int64_t in = int64_t(data.size());
  const double out_len = scale * double(in);
  double x_ori = 0;
  switch (o.coord) {
    case ResizeCoord::AlignCorners: x_ori = out_len == 1 ? 0 : double(x) * (in - 1) / (out_len - 1); break;
    case ResizeCoord::Asymmetric: x_ori = double(x) / scale; break;
    case ResizeCoord::PytorchHalfPixel: x_ori = out_len == 1 ? -0.5 : (x + 0.5) / scale - 0.5; break;
    case ResizeCoord::HalfPixel: x_ori = (x + 0.5) / scale - 0.5; break;
    case ResizeCoord::TfHalfPixelForNN: x_ori = (x + 0.5) / scale; break;
  }
  const int64_t x_ori_int = int64_t(std::floor(x_ori));
  const double ratio = x_ori == std::floor(x_ori) ? 1.0 : x_ori - double(x_ori_int);
  std::vector<double> coeffs;
  if (o.mode == ResizeMode::Nearest) {
    if (ratio == 1.0) coeffs = {0, 1};
    else if (o.nearest == ResizeNearest::RoundPreferFloor) coeffs = {double(ratio <= 0.5), double(ratio > 0.5)};
    else if (o.nearest == ResizeNearest::RoundPreferCeil) coeffs = {double(ratio < 0.5), double(ratio >= 0.5)};
    else if (o.nearest == ResizeNearest::Floor) coeffs = {1, 0};
    else coeffs = {0, 1};
  } else if (o.mode == ResizeMode::Linear) {
    coeffs = {1 - ratio, ratio};
  } else {
    const double A = o.cubic_a, r = ratio;
    coeffs = {((A * (r + 1) - 5 * A) * (r + 1) + 8 * A) * (r + 1) - 4 * A,
              ((A + 2) * r - (A + 3)) * r * r + 1,
              ((A + 2) * (1 - r) - (A + 3)) * (1 - r) * (1 - r) + 1,
              ((A * ((1 - r) + 1) - 5 * A) * ((1 - r) + 1) + 8 * A) * ((1 - r) + 1) - 4 * A};
  }
  const int64_t n = int64_t(coeffs.size());
  // get_neighbor: pad with the edge values by ceil(n / 2), take the n positions nearest x_ori
  // (ties to the lower index), in order.
  const int64_t pad = (n + 1) / 2;
  std::vector<double> padded;
  for (int64_t i = -pad; i < in + pad; ++i) padded.push_back(data[size_t(std::clamp<int64_t>(i, 0, in - 1))]);
  const double xp = x_ori + double(pad);
  std::vector<int64_t> idx(padded.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) { return std::fabs(xp - a) < std::fabs(xp - b); });
  idx.resize(size_t(n));
  std::sort(idx.begin(), idx.end());
  if (o.exclude_outside) {
    double sum = 0;
    for (int64_t k = 0; k < n; ++k) {
      const int64_t pos = idx[size_t(k)] - pad;
      if (pos < 0 || pos >= in) coeffs[size_t(k)] = 0;
      sum += coeffs[size_t(k)];
    }
    for (double& c : coeffs) c /= sum;
  }
  double v = 0;
  for (int64_t k = 0; k < n; ++k) v += coeffs[size_t(k)] * padded[size_t(idx[size_t(k)])];
  return v;
}

}  // namespace

TEST_CASE("resize: taps and 2-D resize match the ONNX reference for every mode") {
  std::mt19937 rng(31);
  const ResizeMode modes[] = {ResizeMode::Nearest, ResizeMode::Linear, ResizeMode::Cubic};
  const ResizeCoord coords[] = {ResizeCoord::HalfPixel, ResizeCoord::Asymmetric, ResizeCoord::AlignCorners,
                                ResizeCoord::PytorchHalfPixel, ResizeCoord::TfHalfPixelForNN};
  const ResizeNearest nearests[] = {ResizeNearest::RoundPreferFloor, ResizeNearest::RoundPreferCeil,
                                    ResizeNearest::Floor, ResizeNearest::Ceil};
  const double scales[] = {0.5, 0.6, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0, 1.0 / 3.0};
  int checked = 0;
  for (int iter = 0; iter < 150; ++iter) {
    ResizeOptions o;
    o.mode = modes[rng() % 3];
    o.coord = coords[rng() % 5];
    o.nearest = nearests[rng() % 4];
    o.exclude_outside = o.mode == ResizeMode::Cubic && rng() % 2 == 0;  // only cubic uses it
    o.cubic_a = rng() % 2 ? -0.75f : -0.5f;
    const int64_t C = 2, H = std::uniform_int_distribution<int64_t>(1, 7)(rng), W = std::uniform_int_distribution<int64_t>(1, 9)(rng);
    const double sh = scales[rng() % 9], sw = scales[rng() % 9];
    const int64_t OH = int64_t(std::floor(H * sh)), OW = int64_t(std::floor(W * sw));
    if (OH < 1 || OW < 1) continue;
    const auto x = random_floats(size_t(C * H * W), uint32_t(iter));
    const ResizeTaps th = resize_taps(o, H, OH, sh), tw = resize_taps(o, W, OW, sw);
    std::vector<float> y(size_t(C * OH * OW));
    resize2d_f32(th, tw, x.data(), y.data(), C, H, W, OH, OW);
    // The reference interpolates along W, then along H (interpolate_nd, separable).
    for (int64_t c = 0; c < C; ++c)
      for (int64_t oh = 0; oh < OH; ++oh) {
        std::vector<std::vector<double>> rows(static_cast<size_t>(H));
        for (int64_t oww = 0; oww < OW; ++oww) {
          std::vector<double> col;
          for (int64_t h = 0; h < H; ++h) {
            std::vector<double> row(x.begin() + (c * H + h) * W, x.begin() + (c * H + h + 1) * W);
            col.push_back(onnx_interpolate_1d(row, sw, oww, o));
          }
          const double want = onnx_interpolate_1d(col, sh, oh, o);
          INFO("iteration " << iter << " mode " << int(o.mode) << " coord " << int(o.coord) << " nearest "
                            << int(o.nearest) << " exclude " << o.exclude_outside << " " << H << "x" << W << " -> "
                            << OH << "x" << OW << " at " << oh << "," << oww);
          REQUIRE(y[size_t((c * OH + oh) * OW + oww)] == Approx(want).epsilon(1e-5).margin(1e-5));
        }
      }
    ++checked;
  }
  REQUIRE(checked > 100);
}

TEST_CASE("conv_transpose: random shapes, groups, strides, dilations and pads match a scatter loop") {
  std::mt19937 rng(37);
  auto pick = [&](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); };
  for (int iter = 0; iter < 120; ++iter) {
    ConvTranspose2dShape s;
    s.group = pick(1, 3);
    s.C = s.group * pick(1, 3);
    s.K = s.group * pick(1, 3);
    s.H = pick(1, 6), s.W = pick(1, 7), s.kh = pick(1, 4), s.kw = pick(1, 4);
    s.sh = pick(1, 3), s.sw = pick(1, 3), s.dh = pick(1, 2), s.dw = pick(1, 2);
    s.pt = pick(-1, 2), s.pl = pick(-1, 2);
    const int64_t pb = pick(-1, 2), pr = pick(-1, 2), oph = pick(0, s.sh - 1), opw = pick(0, s.sw - 1);
    s.OH = s.sh * (s.H - 1) + oph + (s.kh - 1) * s.dh + 1 - s.pt - pb;
    s.OW = s.sw * (s.W - 1) + opw + (s.kw - 1) * s.dw + 1 - s.pl - pr;
    if (s.OH < 1 || s.OW < 1) continue;
    const int64_t cg = s.C / s.group, kg = s.K / s.group;
    const auto x = random_floats(size_t(s.C * s.H * s.W), uint32_t(iter));
    const auto w = random_floats(size_t(s.C * kg * s.kh * s.kw), uint32_t(iter + 1000));
    const auto bias = random_floats(size_t(s.K), uint32_t(iter + 2000));
    std::vector<double> want(size_t(s.K * s.OH * s.OW));
    for (int64_t k = 0; k < s.K; ++k)
      for (int64_t i = 0; i < s.OH * s.OW; ++i) want[size_t(k * s.OH * s.OW + i)] = bias[size_t(k)];
    for (int64_t c = 0; c < s.C; ++c)
      for (int64_t h = 0; h < s.H; ++h)
        for (int64_t ww = 0; ww < s.W; ++ww)
          for (int64_t kk = 0; kk < kg; ++kk)
            for (int64_t i = 0; i < s.kh; ++i)
              for (int64_t j = 0; j < s.kw; ++j) {
                const int64_t oh = h * s.sh - s.pt + i * s.dh, ow = ww * s.sw - s.pl + j * s.dw;
                if (oh < 0 || oh >= s.OH || ow < 0 || ow >= s.OW) continue;
                const int64_t k = (c / cg) * kg + kk;
                want[size_t((k * s.OH + oh) * s.OW + ow)] +=
                    double(x[size_t((c * s.H + h) * s.W + ww)]) * w[size_t(((c * kg + kk) * s.kh + i) * s.kw + j)];
              }
    const auto packed = pack_conv_transpose_weight(s, w.data());
    std::vector<float> cols(size_t(conv_transpose_scratch(s))), y(want.size(), -99.f);
    conv_transpose2d_f32(s, x.data(), packed.data(), bias.data(), y.data(), cols.data());
    for (size_t k = 0; k < y.size(); ++k) {
      INFO("iteration " << iter << " element " << k);
      REQUIRE(y[k] == Approx(want[k]).epsilon(1e-4).margin(1e-4));
    }
  }
}
