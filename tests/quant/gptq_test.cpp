// GPTQ ternarization: the patch Hessian against brute-force im2col, and the layer output error
// against plain (weight-error) ternarization on correlated inputs.
#include <catch2/catch.hpp>

#include <tbb/task_arena.h>

#include <cmath>
#include <random>

#include "quant/gptq.h"
#include "quant/ternarize.h"
#include "support/test_util.h"

namespace fgq {
namespace {

// Patch of output position (b, oh, ow), index (c * KH + r) * KW + s, zero outside the image.
std::vector<double> patch(const std::vector<float>& x, const PatchWindow& w, int64_t b,
                          int64_t oh, int64_t ow) {
  std::vector<double> p;
  for (int64_t c = 0; c < w.C; ++c)
    for (int64_t r = 0; r < w.KH; ++r)
      for (int64_t s = 0; s < w.KW; ++s) {
        const int64_t ih = oh * w.SH - w.PT + r * w.DH, iw = ow * w.SW - w.PL + s * w.DW;
        const bool in = ih >= 0 && ih < w.H && iw >= 0 && iw < w.W;
        p.push_back(in ? x[((b * w.C + c) * w.H + ih) * w.W + iw] : 0.0);
      }
  return p;
}

PatchWindow window(int64_t C, int64_t H, int64_t W, int64_t K, int64_t stride, int64_t pad) {
  PatchWindow w;
  w.C = C, w.H = H, w.W = W, w.KH = w.KW = K, w.SH = w.SW = stride, w.PT = w.PL = pad;
  w.OH = (H + 2 * pad - K) / stride + 1;
  w.OW = (W + 2 * pad - K) / stride + 1;
  return w;
}

// Inputs whose channels share a common component: correlated, as real feature maps are, so
// compensating one weight's error with its neighbours pays off.
std::vector<float> correlated_input(int64_t B, int64_t C, int64_t HW, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> n01;
  std::vector<float> x(size_t(B * C * HW));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < HW; ++i) {
      const float common = n01(rng);
      for (int64_t c = 0; c < C; ++c)
        x[size_t((b * C + c) * HW + i)] = 0.8f * common + 0.6f * n01(rng) + (c % 3 == 0 ? 1.f : 0.f);
    }
  return x;
}

double output_error(const std::vector<float>& x, const PatchWindow& w, int64_t B,
                    const std::vector<float>& wt, const std::vector<float>& wq, int64_t K) {
  const int64_t d = w.C * w.KH * w.KW;
  double err = 0;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t oh = 0; oh < w.OH; ++oh)
      for (int64_t ow = 0; ow < w.OW; ++ow) {
        const auto p = patch(x, w, b, oh, ow);
        for (int64_t k = 0; k < K; ++k) {
          double e = 0;
          for (int64_t j = 0; j < d; ++j) e += p[j] * (double(wt[k * d + j]) - wq[k * d + j]);
          err += e * e;
        }
      }
  return err;
}

}  // namespace

TEST_CASE("gptq: the patch Hessian equals brute-force im2col sums (stride 2, padding, odd sizes)") {
  const PatchWindow w = window(3, 7, 5, 3, 2, 1);
  const int64_t B = 2, d = 27;
  const auto x = test::random_floats(size_t(B * 3 * 7 * 5), 3);
  LayerHessian h;
  accumulate_hessian(h, x.data(), B, w, 1 << 20);
  REQUIRE(h.d == d);
  CHECK(h.samples == B * w.OH * w.OW);
  std::vector<double> ref(size_t(d * d), 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t oh = 0; oh < w.OH; ++oh)
      for (int64_t ow = 0; ow < w.OW; ++ow) {
        const auto p = patch(x, w, b, oh, ow);
        for (int64_t i = 0; i < d; ++i)
          for (int64_t j = 0; j < d; ++j) ref[i * d + j] += p[i] * p[j];
      }
  for (int64_t i = 0; i < d * d; ++i) CHECK(h.h[i] == Approx(ref[i]).margin(1e-4));

  // Sub-sampling keeps every step-th position: still symmetric, fewer samples.
  LayerHessian sub;
  accumulate_hessian(sub, x.data(), B, w, 5);
  CHECK(sub.samples <= 5);
  for (int64_t i = 0; i < d; ++i)
    for (int64_t j = 0; j < d; ++j) CHECK(sub.h[i * d + j] == sub.h[j * d + i]);
}

TEST_CASE("gptq: the Hessian is bit-identical whatever the thread count") {
  // Many chunks of patches: summed in a schedule-dependent order, H would differ in its last bits
  // between runs, and borderline ternary decisions with it.
  const PatchWindow w = window(5, 40, 40, 3, 1, 1);
  const int64_t B = 4;
  const auto x = test::random_floats(size_t(B * 5 * 40 * 40), 21);
  auto hessian_with = [&](int threads) {
    LayerHessian h;
    tbb::task_arena(threads).execute([&] { accumulate_hessian(h, x.data(), B, w, 1 << 20); });
    return h.h;
  };
  const std::vector<float> one = hessian_with(1);
  CHECK(hessian_with(2) == one);
  CHECK(hessian_with(3) == one);
}

TEST_CASE("gptq: valid ternary groups with lower output error than weight-error ternarization") {
  struct Case {
    int64_t C, K, k, stride, pad;
    int group;
  };
  // N not dividing C, 1x1 / 3x3, stride 2, padding; the FC case is a 1x1 window on 1x1 maps.
  for (const Case c : {Case{10, 6, 3, 1, 1, 4}, Case{12, 5, 1, 2, 0, 4}, Case{7, 4, 3, 2, 1, 2},
                       Case{24, 8, 1, 1, 0, 8}}) {
    INFO("C " << c.C << " K " << c.K << " kernel " << c.k << " N " << c.group);
    const int64_t B = 6, H = 9, W = 8;  // more patches than inputs in every case
    const PatchWindow w = window(c.C, H, W, c.k, c.stride, c.pad);
    const auto x = correlated_input(B, c.C, H * W, 11);
    const Shape shape{c.K, c.C, c.k, c.k};
    const auto wt = test::random_floats(size_t(c.K * c.C * c.k * c.k), 5);
    LayerHessian h;
    accumulate_hessian(h, x.data(), B, w, 1 << 20);

    const TernaryWeights g = gptq_ternarize(wt.data(), shape, c.group, Threshold::Exact, h);
    REQUIRE(g.t.size() == wt.size());
    REQUIRE(g.num_groups() == c.K * ((c.C + c.group - 1) / c.group) * c.k * c.k);
    for (int8_t t : g.t) CHECK((t == -1 || t == 0 || t == 1));
    for (float a : g.alpha) CHECK(a >= 0);

    const TernaryWeights plain = ternarize(wt.data(), shape, c.group, Threshold::Exact);
    const double e_gptq = output_error(x, w, B, wt, g.dequantize(), c.K);
    const double e_plain = output_error(x, w, B, wt, plain.dequantize(), c.K);
    CHECK(e_gptq < 0.9 * e_plain);
  }
}

TEST_CASE("gptq: without calibration samples it is plain ternarization") {
  const auto wt = test::random_floats(4 * 6 * 3 * 3, 8);
  const Shape shape{4, 6, 3, 3};
  const TernaryWeights g = gptq_ternarize(wt.data(), shape, 4, Threshold::Twn, LayerHessian{});
  const TernaryWeights plain = ternarize(wt.data(), shape, 4, Threshold::Twn);
  CHECK(g.t == plain.t);
  CHECK(g.alpha == plain.alpha);
}

TEST_CASE("gptq: fewer samples than inputs (a singular H) is plain ternarization") {
  // A classifier with 40 inputs seen on 30 calibration vectors.
  const int64_t C = 40, K = 5, B = 30;
  const auto x = correlated_input(B, C, 1, 12);
  const auto wt = test::random_floats(size_t(K * C), 9);
  LayerHessian h;
  accumulate_hessian(h, x.data(), B, window(C, 1, 1, 1, 1, 0), 1 << 20);
  REQUIRE(h.samples == B);
  CHECK(gptq_factor(h, C, 1).u.empty());
  const TernaryWeights g = gptq_ternarize(wt.data(), {K, C}, 4, Threshold::Exact, h);
  const TernaryWeights plain = ternarize(wt.data(), {K, C}, 4, Threshold::Exact);
  CHECK(g.t == plain.t);
  CHECK(g.alpha == plain.alpha);
  // With enough samples the same layer does get a factor.
  const auto more = correlated_input(2 * C, C, 1, 13);
  LayerHessian full;
  accumulate_hessian(full, more.data(), 2 * C, window(C, 1, 1, 1, 1, 0), 1 << 20);
  CHECK(!gptq_factor(full, C, 1).u.empty());
}

}  // namespace fgq
