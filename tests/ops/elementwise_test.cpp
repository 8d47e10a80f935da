#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

#include "fgq/error.h"
#include "ops/elementwise.h"
#include "support/test_util.h"

using fgq::test::random_floats;

TEST_CASE("elementwise: relu in place and out of place") {
  auto x = random_floats(1001, 1);
  std::vector<float> y(x.size());
  fgq::ops::relu_f32(x.data(), y.data(), int64_t(x.size()));
  for (size_t i = 0; i < x.size(); ++i) REQUIRE(y[i] == (x[i] > 0 ? x[i] : 0.f));
  fgq::ops::relu_f32(x.data(), x.data(), int64_t(x.size()));
  CHECK(x == y);
}

TEST_CASE("elementwise: add with and without relu, output aliasing an input") {
  const auto a = random_floats(257, 2), b = random_floats(257, 3);
  std::vector<float> y(a.size()), r(a.size());
  fgq::ops::add_f32(a.data(), b.data(), y.data(), int64_t(a.size()), false);
  fgq::ops::add_f32(a.data(), b.data(), r.data(), int64_t(a.size()), true);
  for (size_t i = 0; i < a.size(); ++i) {
    REQUIRE(y[i] == a[i] + b[i]);
    REQUIRE(r[i] == std::max(a[i] + b[i], 0.f));
  }
  auto inplace = a;
  fgq::ops::add_f32(inplace.data(), b.data(), inplace.data(), int64_t(a.size()), false);
  CHECK(inplace == y);
}

TEST_CASE("elementwise: softmax rows sum to one and match a double reference") {
  const int rows = 3, cols = 1000;
  auto x = random_floats(size_t(rows) * cols, 4, -10.f, 10.f);
  x[5] = 500.f;  // would overflow exp() without subtracting the max
  x[cols + 7] = -500.f;
  std::vector<float> y(x.size());
  fgq::ops::softmax_f32(x.data(), y.data(), rows, cols);
  for (int r = 0; r < rows; ++r) {
    double mx = -INFINITY, sum = 0, total = 0;
    for (int c = 0; c < cols; ++c) mx = std::max(mx, double(x[r * cols + c]));
    for (int c = 0; c < cols; ++c) sum += std::exp(double(x[r * cols + c]) - mx);
    for (int c = 0; c < cols; ++c) {
      const double want = std::exp(double(x[r * cols + c]) - mx) / sum;
      REQUIRE(std::isfinite(y[r * cols + c]));
      REQUIRE(y[r * cols + c] == Approx(want).epsilon(1e-5).margin(1e-12));
      total += y[r * cols + c];
    }
    CHECK(total == Approx(1.0).epsilon(1e-5));
  }
  CHECK(y[5] == Approx(1.0));
}

TEST_CASE("elementwise: pad with a constant on each side") {
  const std::vector<float> x{1, 2, 3, 4, 5, 6};  // C=1, H=2, W=3
  std::vector<float> y(4 * 5, NAN);
  fgq::ops::pad_f32(x.data(), y.data(), 1, 2, 3, 1, 0, 1, 2, -1.f);
  const std::vector<float> want{-1, -1, -1, -1, -1,  //
                                1,  2,  3,  -1, -1,  //
                                4,  5,  6,  -1, -1,  //
                                -1, -1, -1, -1, -1};
  CHECK(y == want);
  const auto many = random_floats(2 * 3 * 4, 5);
  std::vector<float> z(2 * 5 * 7);
  fgq::ops::pad_f32(many.data(), z.data(), 2, 3, 4, 2, 1, 0, 2, 0.f);
  for (int c = 0; c < 2; ++c)
    for (int h = 0; h < 5; ++h)
      for (int w = 0; w < 7; ++w) {
        const int ih = h - 2, iw = w - 1;
        const bool in = ih >= 0 && ih < 3 && iw >= 0 && iw < 4;
        REQUIRE(z[(c * 5 + h) * 7 + w] == (in ? many[(c * 3 + ih) * 4 + iw] : 0.f));
      }
}

TEST_CASE("elementwise: fake_quant rounds half to even and clamps") {
  const std::vector<float> x{0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 0.49f, 300.f, -300.f, 127.5f};
  std::vector<float> y(x.size());
  fgq::ops::fake_quant_f32(x.data(), y.data(), int64_t(x.size()), 1.f, -128, 127);
  const std::vector<float> want{0, 2, 2, -0.f, -2, -2, 0, 127, -128, 127};
  CHECK(y == want);
  // Scale 0.5: x/scale = 0.5 -> 0, 1.5 -> 2 (times 0.5 = 1), 2.5 -> 2 (= 1); grid [-2, 3].
  const std::vector<float> s{0.25f, 0.75f, 1.25f, 5.f, -5.f};
  std::vector<float> q(s.size());
  fgq::ops::fake_quant_f32(s.data(), q.data(), int64_t(s.size()), 0.5f, -2, 3);
  CHECK(q == std::vector<float>{0.f, 1.f, 1.f, 1.5f, -1.f});
  CHECK_THROWS_AS(fgq::ops::fake_quant_f32(s.data(), q.data(), 1, 0.f, -1, 1), fgq::Error);
  CHECK_THROWS_AS(fgq::ops::fake_quant_f32(s.data(), q.data(), 1, 1.f, 1, -1), fgq::Error);
}

TEST_CASE("elementwise: fake_quant over long buffers matches nearbyint, in place too") {
  // Lengths that are not a multiple of the vector width; ties exactly between grid points.
  for (const int64_t n : {int64_t(17), int64_t(1000), int64_t(4099)}) {
    auto x = random_floats(size_t(n), 7, -40.f, 40.f);
    const float scale = 0.25f;
    for (int64_t i = 0; i < n; i += 5) x[size_t(i)] = (std::floor(x[size_t(i)]) + 0.5f) * scale;
    std::vector<float> y(x.size());
    fgq::ops::fake_quant_f32(x.data(), y.data(), n, scale, -100, 27);
    for (int64_t i = 0; i < n; ++i) {
      const float want = std::clamp(std::nearbyint(x[size_t(i)] / scale), -100.f, 27.f) * scale;
      REQUIRE(y[size_t(i)] == want);
    }
    fgq::ops::fake_quant_f32(x.data(), x.data(), n, scale, -100, 27);
    CHECK(x == y);
  }
}

TEST_CASE("elementwise: scale_shift in place and out of place") {
  auto x = random_floats(1003, 8);
  std::vector<float> y(x.size());
  fgq::ops::scale_shift_f32(x.data(), y.data(), int64_t(x.size()), -1.5f, 0.25f);
  for (size_t i = 0; i < x.size(); ++i) REQUIRE(y[i] == Approx(x[i] * -1.5f + 0.25f).margin(1e-6));
  fgq::ops::scale_shift_f32(x.data(), x.data(), int64_t(x.size()), -1.5f, 0.25f);
  CHECK(x == y);
}
