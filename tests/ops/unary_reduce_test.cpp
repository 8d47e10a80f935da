// ops/unary (element-wise activations), ops/reduce (reductions over any axes), ops/pad (reflect
// and edge) and ops/normalization (LRN, InstanceNormalization) against double-precision
// references on random shapes with odd sizes.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <random>
#include <vector>

#include "ops/normalization.h"
#include "ops/pad.h"
#include "ops/reduce.h"
#include "ops/unary.h"
#include "graph/ir.h"
#include "support/test_util.h"

using fgq::test::random_floats;
using Dims = std::vector<int64_t>;

namespace {

void require_close(float got, double want, double tol) {
  if (std::isnan(want)) {
    REQUIRE(std::isnan(got));
  } else if (std::isinf(want)) {
    REQUIRE(got == float(want));
  } else {
    REQUIRE(got == Approx(want).epsilon(tol).margin(tol));
  }
}

}  // namespace

TEST_CASE("unary: every op matches its double reference, in place too") {
  using fgq::ops::UnaryOp;
  struct Case {
    const char* name;
    std::function<double(double, const fgq::ops::UnaryParams&)> f;
  };
  const std::vector<Case> cases = {
      {"Sigmoid", [](double v, auto&) { return 1 / (1 + std::exp(-v)); }},
      {"Tanh", [](double v, auto&) { return std::tanh(v); }},
      {"LeakyRelu", [](double v, auto& p) { return v < 0 ? p.alpha * v : v; }},
      {"Clip", [](double v, auto& p) { return std::min<double>(std::max<double>(v, p.lo), p.hi); }},
      {"HardSigmoid", [](double v, auto& p) { return std::clamp(p.alpha * v + p.beta, 0.0, 1.0); }},
      {"HardSwish", [](double v, auto&) { return v * std::clamp(v / 6 + 0.5, 0.0, 1.0); }},
      {"Elu", [](double v, auto& p) { return v < 0 ? p.alpha * (std::exp(v) - 1) : v; }},
      {"Celu", [](double v, auto& p) { return std::max(0.0, v) + std::min(0.0, p.alpha * (std::exp(v / p.alpha) - 1)); }},
      {"Selu", [](double v, auto& p) { return v <= 0 ? p.gamma * (p.alpha * std::exp(v) - p.alpha) : p.gamma * v; }},
      {"ThresholdedRelu", [](double v, auto& p) { return v > p.alpha ? v : 0; }},
      {"Softplus", [](double v, auto&) { return std::log1p(std::exp(v)); }},
      {"Softsign", [](double v, auto&) { return v / (1 + std::fabs(v)); }},
      {"Neg", [](double v, auto&) { return -v; }},
      {"Abs", [](double v, auto&) { return std::fabs(v); }},
      {"Exp", [](double v, auto&) { return std::exp(v); }},
      {"Log", [](double v, auto&) { return std::log(v); }},
      {"Sqrt", [](double v, auto&) { return std::sqrt(v); }},
      {"Reciprocal", [](double v, auto&) { return 1 / v; }},
      {"Floor", [](double v, auto&) { return std::floor(v); }},
      {"Ceil", [](double v, auto&) { return std::ceil(v); }},
      {"Round", [](double v, auto&) { return std::nearbyint(v); }},
      {"Erf", [](double v, auto&) { return std::erf(v); }},
  };
  auto x = random_floats(1037, 1, -30.f, 30.f);  // large magnitudes: exp overflow, sigmoid saturation
  x.push_back(2.5f);                              // Round: half to even
  x.push_back(-0.5f);
  x.push_back(0.f);
  for (const Case& c : cases) {
    INFO(c.name);
    const auto op = fgq::ops::unary_op_from_name(c.name);
    REQUIRE(op);
    fgq::ops::UnaryParams p = fgq::ops::default_unary_params(*op);
    if (*op == UnaryOp::Clip) p.lo = -3.5f, p.hi = 7.25f;
    if (*op == UnaryOp::LeakyRelu) p.alpha = 0.3f;
    std::vector<float> y(x.size());
    fgq::ops::unary_f32(*op, p, x.data(), y.data(), int64_t(x.size()));
    for (size_t i = 0; i < x.size(); ++i) {
      INFO("x = " << x[i]);
      require_close(y[i], c.f(x[i], p), 2e-6);
    }
    std::vector<float> z = x;
    fgq::ops::unary_f32(*op, p, z.data(), z.data(), int64_t(z.size()));
    for (size_t i = 0; i < x.size(); ++i) REQUIRE((z[i] == y[i] || (std::isnan(z[i]) && std::isnan(y[i]))));
  }
  REQUIRE_FALSE(fgq::ops::unary_op_from_name("Relu6"));
}

TEST_CASE("reduce: random shapes and axis sets match the reference, every op") {
  using fgq::ops::ReduceOp;
  std::mt19937 rng(17);
  const ReduceOp ops[] = {ReduceOp::Sum,  ReduceOp::Mean, ReduceOp::Max,       ReduceOp::Min,    ReduceOp::Prod,
                          ReduceOp::L1,   ReduceOp::L2,   ReduceOp::SumSquare, ReduceOp::LogSum, ReduceOp::LogSumExp};
  for (int iter = 0; iter < 120; ++iter) {
    const int r = std::uniform_int_distribution<int>(1, 5)(rng);
    Dims s;
    std::vector<bool> red;
    for (int k = 0; k < r; ++k) {
      s.push_back(std::uniform_int_distribution<int64_t>(1, 6)(rng));
      red.push_back(rng() % 2 == 0);
    }
    const auto x = random_floats(size_t(fgq::numel(s)), uint32_t(iter), 0.5f, 1.5f);
    Dims ys;
    for (int k = 0; k < r; ++k)
      if (!red[size_t(k)]) ys.push_back(s[size_t(k)]);
    for (ReduceOp op : ops) {
      INFO("iteration " << iter << " op " << int(op));
      // Reference: group the elements by their kept index.
      std::vector<std::vector<double>> groups(size_t(fgq::numel(ys)));
      for (int64_t i = 0; i < fgq::numel(s); ++i) {
        int64_t rem = i, o = 0, stride = 1;
        for (int k = r; k-- > 0;) {
          const int64_t idx = rem % s[size_t(k)];
          rem /= s[size_t(k)];
          if (!red[size_t(k)]) o += idx * stride, stride *= s[size_t(k)];
        }
        groups[size_t(o)].push_back(x[size_t(i)]);
      }
      std::vector<float> y(groups.size(), -99.f);
      fgq::ops::reduce_f32(op, x.data(), s, red, y.data());
      for (size_t o = 0; o < groups.size(); ++o) {
        const auto& g = groups[o];
        double want = 0;
        switch (op) {
          case ReduceOp::Sum: for (double v : g) want += v; break;
          case ReduceOp::Mean: for (double v : g) want += v / double(g.size()); break;
          case ReduceOp::Max: want = *std::max_element(g.begin(), g.end()); break;
          case ReduceOp::Min: want = *std::min_element(g.begin(), g.end()); break;
          case ReduceOp::Prod: want = 1; for (double v : g) want *= v; break;
          case ReduceOp::L1: for (double v : g) want += std::fabs(v); break;
          case ReduceOp::L2: for (double v : g) want += v * v; want = std::sqrt(want); break;
          case ReduceOp::SumSquare: for (double v : g) want += v * v; break;
          case ReduceOp::LogSum: for (double v : g) want += v; want = std::log(want); break;
          case ReduceOp::LogSumExp: for (double v : g) want += std::exp(v); want = std::log(want); break;
        }
        require_close(y[o], want, 1e-5);
      }
    }
  }
}

TEST_CASE("reduce: NaN wins max and min; LogSumExp of large values does not overflow") {
  const std::vector<float> x{1.f, NAN, 3.f, 1000.f, 1000.f, 999.f};
  std::vector<float> y(2);
  fgq::ops::reduce_f32(fgq::ops::ReduceOp::Max, x.data(), {2, 3}, {false, true}, y.data());
  REQUIRE(std::isnan(y[0]));
  REQUIRE(y[1] == 1000.f);
  fgq::ops::reduce_f32(fgq::ops::ReduceOp::Min, x.data(), {2, 3}, {false, true}, y.data());
  REQUIRE(std::isnan(y[0]));
  fgq::ops::reduce_f32(fgq::ops::ReduceOp::LogSumExp, x.data() + 3, {1, 3}, {false, true}, y.data());
  REQUIRE(y[0] == Approx(1000.0 + std::log(2 + std::exp(-1.0))));
}

TEST_CASE("pad: reflect and edge on random sizes, pads larger than the input too") {
  std::mt19937 rng(23);
  auto reflect = [](int i, int n) {
    if (n == 1) return 0;
    while (i < 0 || i >= n) i = i < 0 ? -i : 2 * (n - 1) - i;
    return i;
  };
  for (int iter = 0; iter < 100; ++iter) {
    auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
    const int C = pick(1, 3), H = pick(1, 6), W = pick(1, 7);
    const int PT = pick(0, 8), PL = pick(0, 8), PB = pick(0, 8), PR = pick(0, 8);
    const auto x = random_floats(size_t(C * H * W), uint32_t(iter));
    for (auto mode : {fgq::ops::PadMode::Reflect, fgq::ops::PadMode::Edge}) {
      const int OH = H + PT + PB, OW = W + PL + PR;
      std::vector<float> y(size_t(C * OH * OW), -1.f);
      fgq::ops::pad2d_f32(mode, x.data(), y.data(), C, H, W, PT, PL, PB, PR, 0.f);
      for (int c = 0; c < C; ++c)
        for (int h = 0; h < OH; ++h)
          for (int w = 0; w < OW; ++w) {
            const bool edge = mode == fgq::ops::PadMode::Edge;
            const int sh = edge ? std::clamp(h - PT, 0, H - 1) : reflect(h - PT, H);
            const int sw = edge ? std::clamp(w - PL, 0, W - 1) : reflect(w - PL, W);
            REQUIRE(y[size_t((c * OH + h) * OW + w)] == x[size_t((c * H + sh) * W + sw)]);
          }
    }
  }
}

TEST_CASE("normalization: LRN and InstanceNormalization match double references") {
  std::mt19937 rng(29);
  for (int iter = 0; iter < 40; ++iter) {
    const int64_t C = std::uniform_int_distribution<int64_t>(1, 9)(rng);
    const int64_t S = std::uniform_int_distribution<int64_t>(1, 23)(rng);
    const int64_t size = std::uniform_int_distribution<int64_t>(1, 6)(rng);
    const auto x = random_floats(size_t(C * S), uint32_t(iter), -3.f, 3.f);
    const float alpha = 0.3f, beta = 0.75f, bias = 1.5f;
    std::vector<float> y(x.size());
    fgq::ops::lrn_f32(x.data(), y.data(), C, S, size, alpha, beta, bias);
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < S; ++i) {
        double sq = 0;
        for (int64_t j = c - (size - 1) / 2; j <= c + size / 2; ++j)  // floor / ceil of (size-1)/2
          if (j >= 0 && j < C) sq += double(x[size_t(j * S + i)]) * x[size_t(j * S + i)];
        const double want = x[size_t(c * S + i)] / std::pow(bias + alpha / double(size) * sq, beta);
        require_close(y[size_t(c * S + i)], want, 1e-5);
      }
    const auto scale = random_floats(size_t(C), uint32_t(iter + 100)), shift = random_floats(size_t(C), uint32_t(iter + 200));
    fgq::ops::instance_norm_f32(x.data(), y.data(), C, S, scale.data(), shift.data(), 1e-3f);
    for (int64_t c = 0; c < C; ++c) {
      double mean = 0, var = 0;
      for (int64_t i = 0; i < S; ++i) mean += x[size_t(c * S + i)];
      mean /= double(S);
      for (int64_t i = 0; i < S; ++i) var += std::pow(x[size_t(c * S + i)] - mean, 2);
      var /= double(S);
      for (int64_t i = 0; i < S; ++i)
        require_close(y[size_t(c * S + i)], scale[size_t(c)] * (x[size_t(c * S + i)] - mean) / std::sqrt(var + 1e-3) + shift[size_t(c)],
                      1e-4);
    }
  }
}
