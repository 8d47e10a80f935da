#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include "fgq/error.h"
#include "ops/pool.h"
#include "support/test_util.h"
#include "tests/ops/op_test_util.h"

using fgq::ops::Pool2dShape;
using fgq::test::pool_shape;
using fgq::test::random_floats;

namespace {

// Reference on an explicitly padded image: windows are counted by the ONNX rule (a window exists
// while it starts inside the input or the left padding), clipped to the padded image.
struct Reference {
  const Pool2dShape& s;
  const std::vector<float>& x;

  int windows(int in, int k, int stride, int pb, int pe) const {
    const int span = in + pb + pe - k;  // last start (padded coordinates) of a full window
    int n = 0;
    for (int start = 0;; start += stride, ++n) {
      const bool fits = s.ceil_mode ? start < span + stride && start < in + pb : start <= span;
      if (!fits) return n;
    }
  }
  int OH() const { return windows(s.H, s.KH, s.SH, s.PT, s.PB); }
  int OW() const { return windows(s.W, s.KW, s.SW, s.PL, s.PR); }

  // op(c, oh, ow): max or average over the window.
  float at(int c, int oh, int ow, bool max) const {
    const int PH = s.H + s.PT + s.PB, PW = s.W + s.PL + s.PR;
    double sum = 0, m = -INFINITY;
    int padded = 0, inside = 0;
    for (int ph = oh * s.SH; ph < oh * s.SH + s.KH && ph < PH; ++ph)
      for (int pw = ow * s.SW; pw < ow * s.SW + s.KW && pw < PW; ++pw) {
        ++padded;
        const int h = ph - s.PT, w = pw - s.PL;
        if (h < 0 || h >= s.H || w < 0 || w >= s.W) continue;
        ++inside;
        const float v = x[(size_t(c) * s.H + h) * s.W + w];
        sum += v;
        m = std::max(m, double(v));
      }
    if (max) return float(m);
    return float(sum / (s.count_include_pad ? padded : inside));
  }
};

void check_pool(const Pool2dShape& s, uint32_t seed) {
  INFO("H" << s.H << " W" << s.W << " k" << s.KH << " s" << s.SH << " p" << s.PT << ","
            << s.PL << "," << s.PB << "," << s.PR << " ceil " << s.ceil_mode << " incl "
            << s.count_include_pad);
  const auto x = random_floats(size_t(s.C) * s.H * s.W, seed);
  Reference ref{s, x};
  REQUIRE(s.OH() == ref.OH());
  REQUIRE(s.OW() == ref.OW());
  std::vector<float> mx(size_t(s.C) * s.OH() * s.OW()), av(mx.size());
  fgq::ops::maxpool2d_f32(s, x.data(), mx.data());
  fgq::ops::avgpool2d_f32(s, x.data(), av.data());
  for (int c = 0; c < s.C; ++c)
    for (int oh = 0; oh < s.OH(); ++oh)
      for (int ow = 0; ow < s.OW(); ++ow) {
        const size_t i = (size_t(c) * s.OH() + oh) * s.OW() + ow;
        REQUIRE(mx[i] == ref.at(c, oh, ow, true));
        REQUIRE(av[i] == Approx(ref.at(c, oh, ow, false)).margin(1e-6));
      }
}

}  // namespace

TEST_CASE("pool: output size with and without ceil_mode") {
  CHECK(pool_shape(1, 112, 112, 3, 2, 1).OH() == 56);           // ResNet stem max pool
  CHECK(pool_shape(1, 4, 4, 3, 2, 0).OH() == 1);
  CHECK(pool_shape(1, 4, 4, 3, 2, 0, true).OH() == 2);           // ONNX MaxPool ceil_mode example
  CHECK(pool_shape(1, 5, 5, 2, 2, 0, true).OH() == 3);
  // ceil would give 3, but the third window would start in the bottom padding: dropped.
  CHECK(pool_shape(1, 3, 3, 2, 2, 1, true).OH() == 2);
  CHECK(pool_shape(1, 3, 3, 2, 2, 1, false).OH() == 2);
  CHECK_THROWS_AS(pool_shape(1, 2, 2, 5, 1, 0).OH(), fgq::Error);
}

TEST_CASE("pool: max and average match the padded-image reference") {
  uint32_t seed = 1;
  for (int H : {1, 5, 7, 13})
    for (int k : {1, 2, 3})
      for (int stride : {1, 2, 3})
        for (int pad : {0, 1})
          for (int mode = 0; mode < 4; ++mode) {
            if (pad >= k || H + 2 * pad < k) continue;
            check_pool(pool_shape(3, H, H + 1, k, stride, pad, mode & 1, mode & 2), seed++);
          }
  Pool2dShape s = pool_shape(2, 9, 8, 3, 2, 0, true, true);
  s.PT = 2, s.PL = 0, s.PB = 1, s.PR = 2;  // asymmetric
  s.KW = 2, s.SW = 3;
  check_pool(s, 99);
  // Big enough to be split over channels across threads (ResNet stem-like, odd size, ceil).
  check_pool(pool_shape(64, 57, 58, 3, 2, 1, true, true), 100);
}

TEST_CASE("pool: count_include_pad changes the border divisor only") {
  const std::vector<float> ones(9, 1.f);
  std::vector<float> y(9);
  fgq::ops::avgpool2d_f32(pool_shape(1, 3, 3, 3, 1, 1, false, true), ones.data(), y.data());
  CHECK(y[0] == Approx(4.0 / 9));  // corner: 4 real values, 9 in the padded window
  CHECK(y[1] == Approx(6.0 / 9));
  CHECK(y[4] == Approx(1.0));
  fgq::ops::avgpool2d_f32(pool_shape(1, 3, 3, 3, 1, 1, false, false), ones.data(), y.data());
  for (float v : y) CHECK(v == Approx(1.0));
}

TEST_CASE("pool: max pooling ignores padding even for negative inputs") {
  const std::vector<float> neg{-5, -4, -3, -2};
  std::vector<float> y(9);
  fgq::ops::maxpool2d_f32(pool_shape(1, 2, 2, 2, 1, 1), neg.data(), y.data());
  CHECK(y[0] == -5.f);
  CHECK(y[4] == -2.f);
}

TEST_CASE("pool: global average") {
  const auto x = random_floats(3 * 49, 5);
  std::vector<float> y(3);
  fgq::ops::global_avgpool_f32(3, 49, x.data(), y.data());
  for (int c = 0; c < 3; ++c) {
    double sum = 0;
    for (int i = 0; i < 49; ++i) sum += x[c * 49 + i];
    CHECK(y[c] == Approx(sum / 49).margin(1e-7));
  }
}
