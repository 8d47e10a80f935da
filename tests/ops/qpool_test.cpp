// maxpool2d_q and global_avgpool_q (ops/qpool.h) against the FP32 max pool on the dequantized
// values, a double-precision average reference and hand-computed cases.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "fgq/error.h"
#include "ops/pool.h"
#include "ops/qlinear.h"
#include "ops/qpool.h"
#include "ops/qtypes.h"
#include "tests/ops/op_test_util.h"

using fgq::ops::Pool2dShape;
using fgq::ops::QType;
using fgq::ops::qchannel_stride;
using fgq::ops::qpixel_bytes;
using fgq::test::kCanary;
using fgq::test::pool_shape;
using fgq::test::qget;

namespace {

// `pixels` valid pixels of type t: random values in [0, max] (max 255 or 15), padding = zero.
std::vector<uint8_t> random_q(QType t, int C, int64_t pixels, int zero, uint32_t seed,
                              size_t extra = 0) {
  std::mt19937 rng(seed);
  const int64_t stride = qchannel_stride(t, C), pb = qpixel_bytes(t, C);
  const int vmax = t == QType::U4 ? 15 : 255;
  std::vector<uint8_t> v(size_t(pixels * pb) + extra, kCanary);
  std::fill(v.begin(), v.begin() + pixels * pb, 0);
  for (int64_t p = 0; p < pixels; ++p)
    for (int64_t c = 0; c < stride; ++c) {
      // Few distinct values, so that windows often hold ties and repeated maxima.
      const int q = c < C ? (rng() % 4 == 0 ? int(rng() % 3) * vmax / 2 : int(rng() % (vmax + 1)))
                          : zero;
      if (t == QType::U4)
        v[p * pb + c / 2] |= static_cast<uint8_t>(q << (c % 2 * 4));
      else
        v[p * pb + c] = static_cast<uint8_t>(q);
    }
  return v;
}

// maxpool2d_q against maxpool2d_f32 on the dequantized images: max commutes with
// q -> scale * (q - zero), so the dequantized outputs must be equal exactly.
void check_maxpool(const Pool2dShape& s, int batch, QType t, int zero, uint32_t seed) {
  INFO(fgq::ops::qtype_name(t) << " batch " << batch << " C" << s.C << " H" << s.H << " W" << s.W
                               << " k" << s.KH << "x" << s.KW << " s" << s.SH << "," << s.SW
                               << " p" << s.PT << "," << s.PL << "," << s.PB << "," << s.PR
                               << " ceil " << s.ceil_mode);
  const int OH = s.OH(), OW = s.OW();
  const int64_t in_pixels = int64_t(batch) * s.H * s.W, out_pixels = int64_t(batch) * OH * OW;
  const auto x = random_q(t, s.C, in_pixels, zero, seed);
  std::vector<uint8_t> y(size_t(out_pixels * qpixel_bytes(t, s.C)) + 16, kCanary);
  fgq::ops::maxpool2d_q(s, batch, t, x.data(), y.data());
  for (size_t i = y.size() - 16; i < y.size(); ++i) REQUIRE(y[i] == kCanary);

  const float scale = 0.0371f;
  std::vector<float> xf(size_t(in_pixels) * s.C), yf(size_t(out_pixels) * s.C),
      qf(yf.size());
  fgq::ops::dequantize_nhwc(x.data(), t, batch, s.C, s.H, s.W, scale, zero, xf.data());
  fgq::ops::dequantize_nhwc(y.data(), t, batch, s.C, OH, OW, scale, zero, qf.data());
  for (int b = 0; b < batch; ++b)
    fgq::ops::maxpool2d_f32(s, xf.data() + size_t(b) * s.C * s.H * s.W,
                            yf.data() + size_t(b) * s.C * OH * OW);
  for (size_t i = 0; i < yf.size(); ++i) REQUIRE(qf[i] == yf[i]);
  // Padding channels keep the zero point.
  for (int64_t p = 0; p < out_pixels; ++p)
    for (int64_t c = s.C; c < qchannel_stride(t, s.C); ++c)
      REQUIRE(qget(y.data(), t, s.C, p, c) == zero);
}

// Expected global_avgpool_q output for one channel sum: the double-precision value, except at a
// float tie (float(sum) * mult exactly k + 0.5 after rounding to float), which goes to even.
// Returns -1 when the tie case applied (and checks it), else the reference.
struct AvgRef {
  int value;
  bool tie;
};
AvgRef avg_reference(int64_t sum, float mult, int qmin, int qmax) {
  const float f = static_cast<float>(sum) * mult;
  const float fc = std::min(std::max(f, float(qmin)), float(qmax));
  if (fc - std::floor(fc) == 0.5f) {
    const int fl = static_cast<int>(std::floor(fc));
    return {fl % 2 == 0 ? fl : fl + 1, true};
  }
  const double d = std::min(std::max(double(sum) * double(mult), double(qmin)), double(qmax));
  return {static_cast<int>(std::floor(d + 0.5)), false};  // not a tie: plain nearest
}

int64_t check_avgpool(int batch, int C, int HW, QType in, QType out, float mult, int qmin,
                      int qmax, uint32_t seed) {
  INFO(fgq::ops::qtype_name(in) << " -> " << fgq::ops::qtype_name(out) << " batch " << batch
                                << " C" << C << " HW" << HW << " mult " << mult << " ["
                                << qmin << ", " << qmax << "]");
  const auto x = random_q(in, C, int64_t(batch) * HW, 0, seed);
  const int64_t out_pb = qpixel_bytes(out, C);
  std::vector<uint8_t> y(size_t(batch * out_pb) + 16, kCanary);
  fgq::ops::global_avgpool_q(batch, C, HW, in, x.data(), mult, qmin, qmax, out, y.data());
  for (size_t i = y.size() - 16; i < y.size(); ++i) REQUIRE(y[i] == kCanary);
  int64_t ties = 0;
  for (int b = 0; b < batch; ++b) {
    for (int c = 0; c < C; ++c) {
      int64_t sum = 0;
      for (int p = 0; p < HW; ++p) sum += qget(x.data(), in, C, int64_t(b) * HW + p, c);
      const AvgRef r = avg_reference(sum, mult, qmin, qmax);
      ties += r.tie;
      INFO("sum " << sum << " -> " << double(sum) * mult);
      REQUIRE(qget(y.data(), out, C, b, c) == r.value);
    }
    for (int64_t c = C; c < qchannel_stride(out, C); ++c) REQUIRE(qget(y.data(), out, C, b, c) == 0);
  }
  return ties;
}

}  // namespace

TEST_CASE("maxpool2d_q: hand-computed u8 and u4 cases", "[qpool]") {
  // C = 1, 4x4, 2x2 stride 2: one u8 value per pixel, 3 padding bytes = zero point 0.
  const uint8_t img[16] = {1, 9, 3, 4,  //
                           5, 2, 7, 8,  //
                           0, 0, 200, 0,  //
                           17, 0, 0, 255};
  std::vector<uint8_t> x(16 * 4, 0), y(4 * 4, kCanary);
  for (int i = 0; i < 16; ++i) x[i * 4] = img[i];
  fgq::ops::maxpool2d_q(pool_shape(1, 4, 4, 2, 2, 0), 1, QType::U8, x.data(), y.data());
  CHECK(y == std::vector<uint8_t>{9, 0, 0, 0, 8, 0, 0, 0, 17, 0, 0, 0, 255, 0, 0, 0});

  // u4, C = 3, 1x2 image, 1x2 window: each nibble is maxed on its own (no carries between them).
  //   pixel 0: c0 = 15, c1 = 1, c2 = 4;  pixel 1: c0 = 1, c1 = 15, c2 = 3; padding = 2.
  const std::vector<uint8_t> u4{0x1F, 0x24, 0x22, 0x22, 0xF1, 0x23, 0x22, 0x22};
  std::vector<uint8_t> z(4, kCanary);
  Pool2dShape s = pool_shape(3, 1, 2, 1, 1, 0);
  s.KW = 2;
  fgq::ops::maxpool2d_q(s, 1, QType::U4, u4.data(), z.data());
  CHECK(z == std::vector<uint8_t>{0xFF, 0x24, 0x22, 0x22});

  // 3x3 stride 2 pad 1 on 3x3, ceil mode: 2x2 out; the padding never wins even over 0.
  std::vector<uint8_t> a(9 * 4, 0), b(4 * 4, kCanary);
  for (int i = 0; i < 9; ++i) a[i * 4] = static_cast<uint8_t>(i);
  fgq::ops::maxpool2d_q(pool_shape(1, 3, 3, 3, 2, 1, true), 1, QType::U8, a.data(), b.data());
  CHECK(b == std::vector<uint8_t>{4, 0, 0, 0, 5, 0, 0, 0, 7, 0, 0, 0, 8, 0, 0, 0});
}

TEST_CASE("maxpool2d_q equals the FP32 max pool on the dequantized values", "[qpool]") {
  uint32_t seed = 1;
  for (QType t : {QType::U8, QType::U4})
    for (int C : {1, 3, 5, 17, 64, 100, 160})  // 160: whole 64-byte blocks of u4 too
      for (int H : {1, 2, 7, 8, 13}) {
        const int zero = t == QType::U8 ? (C % 2 ? 128 : 0) : (C % 2 ? 3 : 0);
        const int batch = 1 + C % 3;
        for (bool ceil_mode : {false, true}) {
          check_maxpool(pool_shape(C, H, H + 2, 3, 2, 1, ceil_mode), batch, t, zero, seed++);
          if (H >= 2) check_maxpool(pool_shape(C, H, H + 1, 2, 2, 0, ceil_mode), batch, t, zero, seed++);
          check_maxpool(pool_shape(C, H, H, 1, 1, 0, ceil_mode), batch, t, zero, seed++);
          check_maxpool(pool_shape(C, H, H + 3, 1, 2, 0, ceil_mode), batch, t, zero, seed++);
          if (H >= 3) check_maxpool(pool_shape(C, H, H, 3, 1, 1, ceil_mode), batch, t, zero, seed++);
        }
      }
  // Asymmetric kernel, stride and pads.
  Pool2dShape s = pool_shape(6, 9, 8, 3, 2, 0, true);
  s.PT = 2, s.PL = 0, s.PB = 1, s.PR = 2, s.KW = 2, s.SW = 3;
  check_maxpool(s, 3, QType::U8, 0, 500);
  check_maxpool(s, 3, QType::U4, 0, 501);
  // Pads as large as the window allows: the last windows hold a single row / column.
  s = pool_shape(5, 5, 6, 3, 2, 2, true);
  check_maxpool(s, 2, QType::U8, 0, 502);
  check_maxpool(s, 2, QType::U4, 1, 503);
}

TEST_CASE("maxpool2d_q: ResNet stem sizes take the parallel path", "[qpool]") {
  check_maxpool(pool_shape(64, 112, 112, 3, 2, 1), 2, QType::U8, 0, 900);
  check_maxpool(pool_shape(64, 112, 112, 3, 2, 1), 1, QType::U4, 0, 901);
  check_maxpool(pool_shape(17, 57, 59, 3, 2, 1, true), 3, QType::U4, 5, 902);
}

TEST_CASE("maxpool2d_q: rejected arguments", "[qpool]") {
  std::vector<uint8_t> x(1024), y(1024);
  using fgq::ops::maxpool2d_q;
  CHECK_NOTHROW(maxpool2d_q(pool_shape(3, 4, 4, 2, 2, 0), 0, QType::U8, x.data(), y.data()));
  CHECK_THROWS_AS(maxpool2d_q(pool_shape(3, 4, 4, 2, 2, 0), -1, QType::U8, x.data(), y.data()), fgq::Error);
  CHECK_THROWS_AS(maxpool2d_q(pool_shape(0, 4, 4, 2, 2, 0), 1, QType::U8, x.data(), y.data()), fgq::Error);
  CHECK_THROWS_AS(maxpool2d_q(pool_shape(3, 0, 4, 2, 2, 0), 1, QType::U8, x.data(), y.data()), fgq::Error);
  CHECK_THROWS_AS(maxpool2d_q(pool_shape(3, 4, 4, 0, 2, 0), 1, QType::U8, x.data(), y.data()), fgq::Error);
  CHECK_THROWS_AS(maxpool2d_q(pool_shape(3, 4, 4, 2, 0, 0), 1, QType::U8, x.data(), y.data()), fgq::Error);
  CHECK_THROWS_AS(maxpool2d_q(pool_shape(3, 4, 4, 2, 2, -1), 1, QType::U8, x.data(), y.data()), fgq::Error);
  CHECK_THROWS_AS(maxpool2d_q(pool_shape(3, 2, 2, 5, 1, 0), 1, QType::U8, x.data(), y.data()), fgq::Error);
  CHECK_THROWS_AS(maxpool2d_q(pool_shape(3, 4, 4, 2, 2, 0), 1, QType::S8, x.data(), y.data()), fgq::Error);
  CHECK_THROWS_AS(maxpool2d_q(pool_shape(3, 4, 4, 2, 2, 0), 1, QType::F32, x.data(), y.data()), fgq::Error);
  // A window entirely in the padding (pad >= kernel): FP32 would output -inf there.
  CHECK_THROWS_AS(maxpool2d_q(pool_shape(3, 4, 4, 2, 1, 2), 1, QType::U8, x.data(), y.data()), fgq::Error);
  Pool2dShape s = pool_shape(3, 4, 4, 2, 2, 0);
  s.PB = 3;  // floor mode keeps a last window in the bottom padding
  CHECK_THROWS_AS(maxpool2d_q(s, 1, QType::U8, x.data(), y.data()), fgq::Error);
}

TEST_CASE("global_avgpool_q: hand-computed ties go to even", "[qpool]") {
  // HW = 4, mult = 1/4: sums 2, 6, 10, 14, 18 -> 0.5, 1.5, 2.5, 3.5, 4.5 -> 0, 2, 2, 4, 4;
  // sum 7 -> 1.75 -> 2, sum 5 -> 1.25 -> 1, sum 1020 -> 255.
  const int sums[8][4] = {{2, 0, 0, 0}, {1, 2, 3, 0}, {10, 0, 0, 0}, {3, 3, 4, 4},
                          {5, 5, 5, 3}, {7, 0, 0, 0}, {1, 1, 1, 2}, {255, 255, 255, 255}};
  const int want[8] = {0, 2, 2, 4, 4, 2, 1, 255};
  // u8 in, C = 8: pixel p holds channel c's p-th value.
  std::vector<uint8_t> x(4 * 8);
  for (int p = 0; p < 4; ++p)
    for (int c = 0; c < 8; ++c) x[p * 8 + c] = static_cast<uint8_t>(sums[c][p]);
  std::vector<uint8_t> y(8, kCanary);
  fgq::ops::global_avgpool_q(1, 8, 4, QType::U8, x.data(), 0.25f, 0, 255, QType::U8, y.data());
  for (int c = 0; c < 8; ++c) CHECK(int(y[c]) == want[c]);
  // Clamped to [1, 3] in u4: 0 -> 1, 4 -> 3.
  std::vector<uint8_t> z(4, kCanary);
  fgq::ops::global_avgpool_q(1, 8, 4, QType::U8, x.data(), 0.25f, 1, 3, QType::U4, z.data());
  CHECK(z == std::vector<uint8_t>{0x21, 0x32, 0x23, 0x31});

  // u4 in, C = 3 (odd: the padding nibble is never summed), u8 out, mult 1/2 on HW = 1.
  const std::vector<uint8_t> u4{0x53, 0xF7, 0, 0};  // c0 = 3, c1 = 5, c2 = 7, padding 15 (bad)
  std::vector<uint8_t> w(4, kCanary);
  fgq::ops::global_avgpool_q(1, 3, 1, QType::U4, u4.data(), 0.5f, 0, 255, QType::U8, w.data());
  CHECK(w == std::vector<uint8_t>{2, 2, 4, 0});  // 1.5 -> 2, 2.5 -> 2, 3.5 -> 4, padding 0
}

TEST_CASE("global_avgpool_q matches a double-precision reference", "[qpool]") {
  uint32_t seed = 1;
  int64_t ties = 0;
  for (QType in : {QType::U8, QType::U4})
    for (QType out : {QType::U8, QType::U4})
      for (int C : {1, 3, 5, 17, 64, 100, 129})
        for (int HW : {1, 4, 49, 50, 196}) {
          const int in_max = in == QType::U8 ? 255 : 15, out_max = out == QType::U8 ? 255 : 15;
          const int batch = 1 + C % 3;
          // mult = in_scale / (HW * out_scale): output range roughly matched to the inputs'
          // average, then 1.5x too large (saturates), then a power of two over HW (exact ties).
          const float fit = float(out_max) / float(in_max) / float(HW) * 1.7f;
          ties += check_avgpool(batch, C, HW, in, out, fit, 0, out_max, seed++);
          ties += check_avgpool(batch, C, HW, in, out, fit * 1.5f, 0, out_max, seed++);
          ties += check_avgpool(batch, C, HW, in, out, 0.5f / float(HW) * (out_max == 15 ? 0.125f : 1.f),
                                0, out_max, seed++);
          ties += check_avgpool(batch, C, HW, in, out, fit, 2, out_max - 3, seed++);
        }
  CHECK(ties > 100);  // the exact-tie multipliers produced ties, and they went to even
}

TEST_CASE("global_avgpool_q: ResNet-50 head sizes take the parallel path", "[qpool]") {
  check_avgpool(64, 2048, 49, QType::U8, QType::U8, 0.0123f, 0, 255, 77);
  check_avgpool(3, 2048, 49, QType::U4, QType::U4, 0.0123f, 0, 15, 78);
  check_avgpool(1, 100, 65000, QType::U8, QType::U8, 1.f / 65000, 0, 255, 79);
}

TEST_CASE("global_avgpool_q: rejected arguments", "[qpool]") {
  std::vector<uint8_t> x(1024), y(1024);
  using fgq::ops::global_avgpool_q;
  auto run = [&](int batch, int C, int HW, QType in, float mult, int qmin, int qmax, QType out) {
    global_avgpool_q(batch, C, HW, in, x.data(), mult, qmin, qmax, out, y.data());
  };
  CHECK_NOTHROW(run(0, 3, 4, QType::U8, 1.f, 0, 255, QType::U8));
  CHECK_THROWS_AS(run(-1, 3, 4, QType::U8, 1.f, 0, 255, QType::U8), fgq::Error);
  CHECK_THROWS_AS(run(1, 0, 4, QType::U8, 1.f, 0, 255, QType::U8), fgq::Error);
  CHECK_THROWS_AS(run(1, 3, 0, QType::U8, 1.f, 0, 255, QType::U8), fgq::Error);
  CHECK_THROWS_AS(run(1, 3, 1 << 24, QType::U8, 1.f, 0, 255, QType::U8), fgq::Error);  // int32 sums
  CHECK_THROWS_AS(run(1, 3, 4, QType::S8, 1.f, 0, 255, QType::U8), fgq::Error);
  CHECK_THROWS_AS(run(1, 3, 4, QType::F32, 1.f, 0, 255, QType::U8), fgq::Error);
  CHECK_THROWS_AS(run(1, 3, 4, QType::U8, 1.f, 0, 127, QType::S8), fgq::Error);
  CHECK_THROWS_AS(run(1, 3, 4, QType::U8, 1.f, 0, 255, QType::F32), fgq::Error);
  CHECK_THROWS_AS(run(1, 3, 4, QType::U8, 1.f, 5, 4, QType::U8), fgq::Error);
  CHECK_THROWS_AS(run(1, 3, 4, QType::U8, 1.f, -1, 255, QType::U8), fgq::Error);
  CHECK_THROWS_AS(run(1, 3, 4, QType::U8, 1.f, 0, 256, QType::U8), fgq::Error);
  CHECK_THROWS_AS(run(1, 3, 4, QType::U8, 1.f, 0, 16, QType::U4), fgq::Error);
  CHECK_THROWS_AS(run(1, 3, 4, QType::U8, std::numeric_limits<float>::quiet_NaN(), 0, 255, QType::U8),
                  fgq::Error);
  CHECK_THROWS_AS(run(1, 3, 4, QType::U8, fgq::test::kInf, 0, 255, QType::U8),
                  fgq::Error);
}
