#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <random>

#include "fgq/error.h"
#include "quant/ternarize.h"
#include "support/test_util.h"

using namespace fgq;

namespace {

double group_error(const std::vector<float>& w, float alpha, float delta) {
  double e = 0;
  for (float v : w) {
    const float t = std::fabs(v) > delta && alpha > 0 ? (v > 0 ? 1.f : -1.f) : 0.f;
    e += (double(v) - alpha * t) * (double(v) - alpha * t);
  }
  return e;
}

// Minimum over all 3^n ternary patterns t of min_alpha ||w - alpha t||^2.
double brute_force_min_error(const std::vector<float>& w) {
  const int n = static_cast<int>(w.size());
  int patterns = 1;
  for (int i = 0; i < n; ++i) patterns *= 3;
  double sum_sq = 0;
  for (float v : w) sum_sq += double(v) * v;
  double best = sum_sq;  // t = 0
  for (int p = 0; p < patterns; ++p) {
    double dot = 0;
    int nnz = 0;
    for (int i = 0, code = p; i < n; ++i, code /= 3) {
      const int t = code % 3 - 1;
      dot += t * double(w[i]);
      nnz += t != 0;
    }
    if (nnz) best = std::min(best, sum_sq - dot * dot / nnz);  // best alpha = dot / nnz
  }
  return best;
}

}  // namespace

TEST_CASE("ternarize: exact threshold matches brute force over all 3^N patterns") {
  std::mt19937 rng(7);
  std::normal_distribution<float> d(0.f, 1.f);
  for (int n = 1; n <= 6; ++n) {
    for (int trial = 0; trial < 200; ++trial) {
      std::vector<float> w(n);
      for (auto& v : w) v = d(rng);
      if (trial % 4 == 0) w[0] = -w[n - 1];  // exercise magnitude ties
      const GroupTernary g = ternarize_group(w.data(), n, Threshold::Exact);
      const double brute = brute_force_min_error(w);
      INFO("n=" << n << " trial=" << trial);
      CHECK(group_error(w, g.alpha, g.delta) == Approx(brute).epsilon(1e-5).margin(1e-9));
    }
  }
}

TEST_CASE("ternarize: exact closed form on a hand example") {
  // |w| sorted: 3, 2, 1, 0.5 -> S_k^2/k = 9, 12.5, 12, 10.5625 -> keep {3, 2}.
  const std::vector<float> w{3, -1, 0.5f, 2};
  const GroupTernary g = ternarize_group(w.data(), 4, Threshold::Exact);
  CHECK(g.kept == 2);
  CHECK(g.alpha == 2.5f);
  CHECK(g.delta == 1.f);  // the largest dropped magnitude
  CHECK(group_error(w, g.alpha, g.delta) == Approx(1.75));  // 14.25 - 12.5
}

TEST_CASE("ternarize: exact never splits ties and prefers the sparser optimum") {
  const std::vector<float> pair{2, -2, 0.1f};  // k=2: 8 > k=3: 4.1^2/3
  GroupTernary g = ternarize_group(pair.data(), 3, Threshold::Exact);
  CHECK(g.kept == 2);
  CHECK(g.alpha == 2.f);
  CHECK(g.delta == 0.1f);
  const std::vector<float> run{2, 2, 1};  // k=1 is not admissible (tie); k=3 (25/3) beats k=2 (8)
  g = ternarize_group(run.data(), 3, Threshold::Exact);
  CHECK(g.kept == 3);
  CHECK(g.alpha == Approx(5.0 / 3));
  const std::vector<float> zeros{0, 0, 0};
  g = ternarize_group(zeros.data(), 3, Threshold::Exact);
  CHECK(g.kept == 0);
  CHECK(g.alpha == 0.f);
  const std::vector<float> one{0, -0.5f, 0};  // zeros are never kept
  g = ternarize_group(one.data(), 3, Threshold::Exact);
  CHECK(g.kept == 1);
  CHECK(g.alpha == 0.5f);
}

TEST_CASE("ternarize: twn rule on a hand example where it differs from exact") {
  // mean|w| = 2.6 / 8 = 0.325 -> delta = 0.2275 -> keeps {2, 0.6}, alpha 1.3.
  const std::vector<float> w{2, 0, 0, -0.6f, 0, 0, 0, 0};
  const GroupTernary twn = ternarize_group(w.data(), 8, Threshold::Twn);
  CHECK(twn.delta == Approx(0.2275));
  CHECK(twn.kept == 2);
  CHECK(twn.alpha == Approx(1.3));
  // exact: S_1^2/1 = 4 > S_2^2/2 = 3.38 -> keeps only {2}.
  const GroupTernary ex = ternarize_group(w.data(), 8, Threshold::Exact);
  CHECK(ex.kept == 1);
  CHECK(ex.alpha == 2.f);
  CHECK(group_error(w, ex.alpha, ex.delta) < group_error(w, twn.alpha, twn.delta));
  const std::vector<float> zeros(4, 0.f);
  const GroupTernary z = ternarize_group(zeros.data(), 4, Threshold::Twn);
  CHECK(z.kept == 0);
  CHECK(z.alpha == 0.f);
}

TEST_CASE("ternarize: groups run along input channels with a shorter last group") {
  const Shape shape{3, 10, 3, 2};  // C=10, N=4 -> groups of 4, 4, 2
  const auto w = test::random_floats(numel(shape), 11);
  for (Threshold m : {Threshold::Exact, Threshold::Twn}) {
    const TernaryWeights tw = ternarize(w.data(), shape, 4, m);
    REQUIRE(tw.groups_along_c() == 3);
    REQUIRE(tw.alpha.size() == size_t(3 * 3 * 3 * 2));
    const std::vector<float> w_hat = tw.dequantize();
    for (int k = 0; k < 3; ++k)
      for (int g = 0; g < 3; ++g)
        for (int r = 0; r < 3; ++r)
          for (int s = 0; s < 2; ++s) {
            const int n = g < 2 ? 4 : 2;
            std::vector<float> vals;
            for (int c = g * 4; c < g * 4 + n; ++c) vals.push_back(w[((k * 10 + c) * 3 + r) * 2 + s]);
            const GroupTernary ref = ternarize_group(vals.data(), n, m);
            CHECK(tw.alpha[((k * 3 + g) * 3 + r) * 2 + s] == ref.alpha);
            for (int i = 0; i < n; ++i) {
              const int c = g * 4 + i;
              const size_t idx = ((k * 10 + c) * 3 + r) * 2 + s;
              const int t = std::fabs(vals[i]) > ref.delta ? (vals[i] > 0 ? 1 : -1) : 0;
              CHECK(tw.t[idx] == t);
              CHECK(w_hat[idx] == ref.alpha * t);
            }
          }
  }
}

TEST_CASE("ternarize: N=1 is lossless") {
  auto w = test::random_floats(4 * 6 * 3 * 3, 3);
  w[5] = 0;
  for (Threshold m : {Threshold::Exact, Threshold::Twn}) {
    const TernaryWeights tw = ternarize(w.data(), {4, 6, 3, 3}, 1, m);
    CHECK(tw.dequantize() == w);
    const TernaryStats s = ternary_stats(w.data(), tw);
    CHECK(s.rel_error == 0);
    CHECK(s.sparsity == Approx(1.0 / w.size()));
    CHECK(s.groups == int64_t(w.size()));
  }
}

TEST_CASE("ternarize: dequantized weights ternarize to themselves") {
  const Shape shape{8, 13, 3, 3};
  const auto w = test::random_floats(numel(shape), 5);
  for (int n : {2, 4, 16}) {
    const TernaryWeights a = ternarize(w.data(), shape, n, Threshold::Exact);
    const std::vector<float> w_hat = a.dequantize();
    const TernaryWeights b = ternarize(w_hat.data(), shape, n, Threshold::Exact);
    CHECK(b.t == a.t);
    CHECK(b.alpha == a.alpha);
    CHECK(b.dequantize() == w_hat);
  }
}

TEST_CASE("ternarize: FC weights and per-layer stats") {
  const std::vector<float> w{3, -1, 0.5f, 2, 0, 0, 0, 1};  // [2, 4]
  const TernaryWeights tw = ternarize(w.data(), {2, 4}, 4, Threshold::Exact);
  CHECK(tw.shape == Shape{2, 4, 1, 1});
  CHECK(tw.alpha == std::vector<float>{2.5f, 1.f});
  CHECK(tw.t == std::vector<int8_t>{1, 0, 0, 1, 0, 0, 0, 1});
  const TernaryStats s = ternary_stats(w.data(), tw);
  CHECK(s.groups == 2);
  CHECK(s.sparsity == Approx(5.0 / 8));
  CHECK(s.rel_error == Approx(std::sqrt(1.75 / 15.25)));
}

TEST_CASE("ternarize: scaling output channels scales alpha only") {
  const auto w = test::random_floats(2 * 8, 9);
  TernaryWeights tw = ternarize(w.data(), {2, 8}, 4, Threshold::Exact);
  const auto before = tw.dequantize();
  tw.scale_output_channels({2.f, 0.5f});
  const auto after = tw.dequantize();
  for (int i = 0; i < 16; ++i) CHECK(after[i] == Approx(before[i] * (i < 8 ? 2.f : 0.5f)));
  CHECK_THROWS_AS(tw.scale_output_channels({1.f}), Error);
  CHECK_THROWS_AS(tw.scale_output_channels({1.f, -1.f}), Error);
}

TEST_CASE("ternarize: bad arguments are errors") {
  const std::vector<float> w(8, 1.f);
  CHECK_THROWS_AS(ternarize(w.data(), {2, 2, 2}, 4, Threshold::Exact), Error);
  CHECK_THROWS_AS(ternarize(w.data(), {2, 4}, 0, Threshold::Exact), Error);
  CHECK_THROWS_AS(parse_threshold("median"), Error);
  CHECK(parse_threshold("twn") == Threshold::Twn);
}
