// quantize_nchw / dequantize_nhwc / pack_u4 / unpack_u4 (ops/qlinear.h) against FakeQuant
// (ops::fake_quant_f32), an independent nearbyint reference and hand-computed cases.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "fgq/error.h"
#include "ops/elementwise.h"
#include "ops/qlinear.h"
#include "ops/qtypes.h"
#include "support/test_util.h"
#include "tests/ops/op_test_util.h"

using fgq::ops::QType;
using fgq::ops::qchannel_stride;
using fgq::ops::qpixel_bytes;
using fgq::test::kCanary;
using fgq::test::kInf;
using fgq::test::qget;

namespace {

const float kNaN = std::numeric_limits<float>::quiet_NaN();

uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

struct QCase {
  QType type;
  int zero, qmin, qmax;
};

// The header's formula, with nearbyint in float and the clamp done in double (no int overflow).
int ref_quant(float x, float scale, const QCase& q) {
  const float v = x / scale;
  if (std::isnan(v)) return q.qmin;
  const double r = double(std::nearbyint(v)) + q.zero;
  return r < q.qmin ? q.qmin : r > q.qmax ? q.qmax : int(r);
}

// Random values spread over a bit more than the grid (so both clamps are hit), with exact
// ties, grid points, signed zeros, tiny, huge, infinite and NaN values mixed in.
std::vector<float> test_values(size_t n, uint32_t seed, float scale, const QCase& q) {
  std::mt19937 rng(seed);
  const float lo = (q.qmin - q.zero - 3) * scale, hi = (q.qmax - q.zero + 3) * scale;
  std::uniform_real_distribution<float> d(lo, hi);
  std::uniform_int_distribution<int> k(q.qmin - q.zero - 2, q.qmax - q.zero + 2);
  std::uniform_int_distribution<int> pick(0, 15);
  const float specials[] = {0.f, -0.f, kNaN, kInf, -kInf, 1e30f, -1e30f, 1e-40f, -1e-40f,
                            std::numeric_limits<float>::max(), -std::numeric_limits<float>::max()};
  std::vector<float> v(n);
  for (auto& x : v) {
    switch (pick(rng)) {
      case 0: x = (k(rng) + 0.5f) * scale; break;  // a tie (exact when scale is a power of two)
      case 1: x = static_cast<float>(k(rng)) * scale; break;
      case 2: x = specials[rng() % (sizeof specials / sizeof *specials)]; break;
      case 3: x = kNaN; break;
      default: x = d(rng);
    }
  }
  return v;
}

// Quantizes, then checks every stored element against ref_quant and FakeQuant, the padding
// against the zero point, and the canary past the end.
void check_quantize(int N, int C, int H, int W, float scale, const QCase& q, uint32_t seed) {
  INFO("N" << N << " C" << C << " H" << H << " W" << W << " scale " << scale << " "
            << fgq::ops::qtype_name(q.type) << " zero " << q.zero << " [" << q.qmin << ", "
            << q.qmax << "]");
  const int64_t HW = int64_t(H) * W, n = N * C * HW;
  const auto x = test_values(size_t(n), seed, scale, q);
  const int64_t bytes = N * HW * qpixel_bytes(q.type, C);
  std::vector<uint8_t> y(size_t(bytes) + 16, kCanary);
  fgq::ops::quantize_nchw(x.data(), N, C, H, W, scale, q.zero, q.qmin, q.qmax, q.type, y.data());
  for (size_t i = size_t(bytes); i < y.size(); ++i) REQUIRE(y[i] == kCanary);

  std::vector<float> fq(x.size());
  fgq::ops::fake_quant_f32(x.data(), fq.data(), n, scale, q.qmin - q.zero, q.qmax - q.zero);
  std::vector<float> dq(x.size());
  fgq::ops::dequantize_nhwc(y.data(), q.type, N, C, H, W, scale, q.zero, dq.data());

  const int64_t stride = qchannel_stride(q.type, C);
  int64_t ties = 0, nans = 0;
  for (int b = 0; b < N; ++b)
    for (int64_t p = 0; p < HW; ++p) {
      const int64_t pixel = b * HW + p;
      for (int c = 0; c < C; ++c) {
        const int64_t i = (int64_t(b) * C + c) * HW + p;
        const int got = qget(y.data(), q.type, C, pixel, c);
        INFO("x = " << x[i] << " (x / scale = " << x[i] / scale << ")");
        REQUIRE(got == ref_quant(x[i], scale, q));
        if (std::isnan(x[i])) {
          ++nans;  // FakeQuant keeps NaN; the integer domain stores qmin
          REQUIRE(got == q.qmin);
          continue;
        }
        const float v = x[i] / scale;
        if (v - std::floor(v) == 0.5f && v > q.qmin - q.zero && v < q.qmax - q.zero) {
          ++ties;  // exactly half-way: the even neighbour
          const int f = static_cast<int>(std::floor(v));
          REQUIRE(got - q.zero == (f % 2 == 0 ? f : f + 1));
        }
        // FakeQuant with the same scale and range gives exactly scale * (q - zero) ...
        REQUIRE(bits(static_cast<float>(got - q.zero) * scale) == bits(fq[i]));
        // ... which is what dequantize returns.
        REQUIRE(bits(dq[i]) == bits(fq[i]));
      }
      for (int64_t c = C; c < stride; ++c) REQUIRE(qget(y.data(), q.type, C, pixel, c) == q.zero);
    }
  if (n >= 200) {
    CHECK(nans > 0);
    // With scale = m / 256 the generated ties (k + 0.5) * scale are exact.
    if (scale * 256 == std::round(scale * 256)) CHECK(ties > 0);
  }
}

const QCase kCases[] = {
    {QType::U8, 0, 0, 255},      // post-ReLU activations
    {QType::U8, 128, 1, 255},    // the signed image stored as u8 + 128
    {QType::U8, 3, 2, 200},      // narrowed range, odd zero point
    {QType::S8, 0, -128, 127},
    {QType::S8, 0, -127, 127},   // symmetric
    {QType::S8, -5, -100, 90},
    {QType::U4, 0, 0, 15},
    {QType::U4, 8, 1, 15},       // u4 with a zero point: padding nibbles hold 8
};

}  // namespace

TEST_CASE("quantize_nchw equals FakeQuant bit for bit on random data and odd shapes",
          "[qlinear]") {
  uint32_t seed = 1;
  struct Shape {
    int N, C, H, W;
  };
  const Shape shapes[] = {{1, 1, 1, 1},  {2, 3, 5, 7},  {1, 5, 3, 3},   {3, 17, 4, 9},
                          {1, 64, 2, 3}, {2, 100, 3, 1}, {1, 7, 1, 33}, {2, 9, 5, 17},
                          {1, 2, 3, 21}, {2, 4, 2, 16}};
  for (const QCase& q : kCases)
    for (const Shape& s : shapes)
      for (float scale : {0.25f, 0.0371f, 3.f / 256}) check_quantize(s.N, s.C, s.H, s.W, scale, q, seed++);
}

TEST_CASE("quantize_nchw: ImageNet-sized batch takes the parallel path", "[qlinear]") {
  check_quantize(3, 3, 224, 224, 0.0185f, {QType::U8, 128, 1, 255}, 1000);
  check_quantize(2, 5, 67, 129, 0.5f, {QType::U4, 0, 0, 15}, 1001);
  check_quantize(2, 3, 131, 97, 1.f / 64, {QType::S8, 0, -127, 127}, 1002);
}

TEST_CASE("quantize_nchw: hand-computed ties, clamps, NaN and infinities", "[qlinear]") {
  // x / 0.5 = 0.5, 1.5, 2.5, -0.5, -1.5, 3.5, -2.5: ties go to the even neighbour.
  const std::vector<float> ties{0.25f, 0.75f, 1.25f, -0.25f, -0.75f, 1.75f, -1.25f};
  std::vector<uint8_t> y(7 * 4);
  fgq::ops::quantize_nchw(ties.data(), 1, 1, 1, 7, 0.5f, 0, -128, 127, QType::S8, y.data());
  const int want_s8[] = {0, 2, 2, 0, -2, 4, -2};
  for (int i = 0; i < 7; ++i) CHECK(static_cast<int8_t>(y[i * 4]) == want_s8[i]);
  fgq::ops::quantize_nchw(ties.data(), 1, 1, 1, 7, 0.5f, 128, 1, 255, QType::U8, y.data());
  const int want_u8[] = {128, 130, 130, 128, 126, 132, 126};
  for (int i = 0; i < 7; ++i) {
    CHECK(y[i * 4] == want_u8[i]);
    CHECK(y[i * 4 + 1] == 128);  // padding: the zero point
    CHECK(y[i * 4 + 3] == 128);
  }

  // u8 + 128, scale 1/64: -2 -> -128 + 128 = 0 -> clamped to qmin 1; 2 -> 256 -> 255.
  const std::vector<float> x{-1e30f, -kInf, kInf, kNaN, -2.f, 1.99f, 2.f, -1.984375f, 0.f};
  std::vector<uint8_t> q(x.size() * 4);
  fgq::ops::quantize_nchw(x.data(), 1, 1, 1, int(x.size()), 1.f / 64, 128, 1, 255, QType::U8,
                          q.data());
  const int want[] = {1, 1, 255, 1, 1, 255, 255, 1, 128};
  for (size_t i = 0; i < x.size(); ++i) {
    INFO(i);
    CHECK(q[i * 4] == want[i]);
  }
  // FakeQuant agrees on everything but NaN (which it keeps).
  std::vector<float> fq(x.size());
  fgq::ops::fake_quant_f32(x.data(), fq.data(), int64_t(x.size()), 1.f / 64, 1 - 128, 255 - 128);
  for (size_t i = 0; i < x.size(); ++i) {
    if (std::isnan(x[i])) {
      CHECK(std::isnan(fq[i]));
      continue;
    }
    CHECK(bits(fq[i]) == bits(float(q[i * 4] - 128) * (1.f / 64)));
  }
}

TEST_CASE("quantize_nchw: u8 + 128 is the s8 image shifted", "[qlinear]") {
  const int N = 2, C = 3, H = 9, W = 11;
  const auto x = fgq::test::random_floats(N * C * H * W, 7, -3.f, 3.f);
  const int64_t bytes = N * H * W * qpixel_bytes(QType::U8, C);
  std::vector<uint8_t> u(bytes), s(bytes);
  fgq::ops::quantize_nchw(x.data(), N, C, H, W, 0.02f, 128, 1, 255, QType::U8, u.data());
  fgq::ops::quantize_nchw(x.data(), N, C, H, W, 0.02f, 0, -127, 127, QType::S8, s.data());
  for (int64_t i = 0; i < bytes; ++i) REQUIRE(u[i] == static_cast<int8_t>(s[i]) + 128);
}

TEST_CASE("quantize_nchw: NHWC layout, channel padding and u4 nibble order by hand", "[qlinear]") {
  // [1, 3, 1, 2]: channel-major in, pixel-major out.
  const std::vector<float> x{1, 2, 3, 4, 5, 6};  // c0 = {1, 2}, c1 = {3, 4}, c2 = {5, 6}
  std::vector<uint8_t> y(8, kCanary);
  fgq::ops::quantize_nchw(x.data(), 1, 3, 1, 2, 1.f, 7, 0, 255, QType::U8, y.data());
  CHECK(y == std::vector<uint8_t>{8, 10, 12, 7, 9, 11, 13, 7});
  // U4, zero 2: pixel = 4 bytes (C = 3 rounds up to 8 nibbles), even channel in the low nibble.
  fgq::ops::quantize_nchw(x.data(), 1, 3, 1, 2, 1.f, 2, 0, 15, QType::U4, y.data());
  CHECK(y == std::vector<uint8_t>{0x53, 0x27, 0x22, 0x22, 0x64, 0x28, 0x22, 0x22});
  // C = 1, U4 zero 0.
  std::vector<uint8_t> z(4, kCanary);
  const float v = 9.f;
  fgq::ops::quantize_nchw(&v, 1, 1, 1, 1, 1.f, 0, 0, 15, QType::U4, z.data());
  CHECK(z == std::vector<uint8_t>{0x09, 0, 0, 0});
}

TEST_CASE("dequantize_nhwc: hand-computed values and the round trip", "[qlinear]") {
  // S8, C = 2, two pixels: channel 0 = {-3, 5}, channel 1 = {127, -128}.
  const std::vector<uint8_t> s8{uint8_t(-3), 127, 0, 0, 5, uint8_t(-128), 0, 0};
  std::vector<float> y(4);
  fgq::ops::dequantize_nhwc(s8.data(), QType::S8, 1, 2, 1, 2, 0.5f, -1, y.data());
  CHECK(y == std::vector<float>{-1.f, 3.f, 64.f, -63.5f});
  // U4, C = 3, one pixel: nibbles 1, 2, 3.
  const std::vector<uint8_t> u4{0x21, 0x03, 0, 0};
  std::vector<float> z(3);
  fgq::ops::dequantize_nhwc(u4.data(), QType::U4, 1, 3, 1, 1, 2.f, 1, z.data());
  CHECK(z == std::vector<float>{0.f, 2.f, 4.f});

  // Integers -> float -> integers is the identity on valid storage.
  for (const QCase& q : kCases)
    for (int C : {1, 3, 8, 13}) {
      const int N = 2, H = 3, W = 5;
      const int64_t pixels = N * H * W, stride = qchannel_stride(q.type, C);
      std::mt19937 rng(C * 31 + q.zero);
      std::uniform_int_distribution<int> d(q.qmin, q.qmax);
      std::vector<int> vals(pixels * stride);
      for (int64_t p = 0; p < pixels; ++p)
        for (int64_t c = 0; c < stride; ++c) vals[p * stride + c] = c < C ? d(rng) : q.zero;
      std::vector<uint8_t> buf(pixels * qpixel_bytes(q.type, C), 0), back(buf.size(), kCanary);
      for (int64_t i = 0; i < pixels * stride; ++i) {
        if (q.type == QType::U4)
          buf[i / 2] |= static_cast<uint8_t>(vals[i] << (i % 2 * 4));
        else
          buf[i] = static_cast<uint8_t>(vals[i]);
      }
      const float scale = 0.0371f;
      std::vector<float> f(N * C * H * W);
      fgq::ops::dequantize_nhwc(buf.data(), q.type, N, C, H, W, scale, q.zero, f.data());
      for (int b = 0; b < N; ++b)
        for (int c = 0; c < C; ++c)
          for (int p = 0; p < H * W; ++p)
            REQUIRE(f[(b * C + c) * H * W + p] ==
                    float(vals[(b * H * W + p) * stride + c] - q.zero) * scale);
      fgq::ops::quantize_nchw(f.data(), N, C, H, W, scale, q.zero, q.qmin, q.qmax, q.type,
                              back.data());
      REQUIRE(back == buf);
    }
}

TEST_CASE("pack_u4 / unpack_u4: nibble order, padding and round trip", "[qlinear]") {
  // C = 3: u8 pixel 4 bytes, u4 pixel 4 bytes (8 nibbles).
  const std::vector<uint8_t> u8{1, 2, 3, 0, 15, 0, 9, 0};
  std::vector<uint8_t> u4(8, kCanary);
  fgq::ops::pack_u4(u8.data(), 2, 3, u4.data());
  CHECK(u4 == std::vector<uint8_t>{0x21, 0x03, 0x00, 0x00, 0x0F, 0x09, 0x00, 0x00});
  fgq::ops::pack_u4(u8.data(), 2, 3, u4.data(), 5);  // padding nibbles = zero point 5
  CHECK(u4 == std::vector<uint8_t>{0x21, 0x53, 0x55, 0x55, 0x0F, 0x59, 0x55, 0x55});
  std::vector<uint8_t> back(8, kCanary);
  fgq::ops::unpack_u4(u4.data(), 2, 3, back.data());
  CHECK(back == std::vector<uint8_t>{1, 2, 3, 5, 15, 0, 9, 5});  // u8 padding = u4 padding
  // Values above 15 (outside the contract) do not spill into the neighbouring nibble.
  const std::vector<uint8_t> big{0x13, 0xF7, 0, 0};
  std::vector<uint8_t> p(4);
  fgq::ops::pack_u4(big.data(), 1, 2, p.data());
  CHECK(p[0] == 0x73);

  for (int C : {1, 2, 3, 4, 5, 7, 8, 9, 12, 17, 64, 100})
    for (int64_t pixels : {int64_t(1), int64_t(3), int64_t(37), int64_t(40000)})
      for (int zero : {0, 6}) {
        INFO("C " << C << " pixels " << pixels << " zero " << zero);
        const int64_t s8 = qchannel_stride(QType::U8, C), b4 = qpixel_bytes(QType::U4, C);
        std::mt19937 rng(uint32_t(C * 1000 + pixels + zero));
        std::vector<uint8_t> x(pixels * s8);
        for (int64_t i = 0; i < pixels * s8; ++i)
          x[i] = i % s8 < C ? static_cast<uint8_t>(rng() % 16) : static_cast<uint8_t>(zero);
        std::vector<uint8_t> packed(pixels * b4 + 8, kCanary), un(pixels * s8 + 8, kCanary);
        fgq::ops::pack_u4(x.data(), pixels, C, packed.data(), zero);
        for (int64_t p = 0; p < pixels; ++p)
          for (int64_t c = 0; c < qchannel_stride(QType::U4, C); ++c)
            REQUIRE(qget(packed.data(), QType::U4, C, p, c) == (c < C ? x[p * s8 + c] : zero));
        for (int64_t i = pixels * b4; i < int64_t(packed.size()); ++i) REQUIRE(packed[i] == kCanary);
        fgq::ops::unpack_u4(packed.data(), pixels, C, un.data());
        REQUIRE(std::equal(x.begin(), x.end(), un.begin()));
        for (int64_t i = pixels * s8; i < int64_t(un.size()); ++i) REQUIRE(un[i] == kCanary);
      }
  // Zero pixels: nothing written.
  std::vector<uint8_t> none(4, kCanary);
  fgq::ops::pack_u4(u8.data(), 0, 3, none.data());
  fgq::ops::unpack_u4(u8.data(), 0, 3, none.data());
  CHECK(none == std::vector<uint8_t>(4, kCanary));
}

TEST_CASE("qlinear: arguments that could corrupt memory are rejected", "[qlinear]") {
  const float x[8] = {};
  uint8_t y[64] = {};
  float f[8] = {};
  using fgq::ops::dequantize_nhwc;
  using fgq::ops::quantize_nchw;
  CHECK_NOTHROW(quantize_nchw(x, 0, 1, 1, 1, 1.f, 0, 0, 255, QType::U8, y));  // empty batch
  CHECK_THROWS_AS(quantize_nchw(x, -1, 1, 1, 1, 1.f, 0, 0, 255, QType::U8, y), fgq::Error);
  CHECK_THROWS_AS(quantize_nchw(x, 1, 0, 1, 1, 1.f, 0, 0, 255, QType::U8, y), fgq::Error);
  CHECK_THROWS_AS(quantize_nchw(x, 1, 1, -2, 1, 1.f, 0, 0, 255, QType::U8, y), fgq::Error);
  CHECK_THROWS_AS(quantize_nchw(x, 1, 1, 1, 0, 1.f, 0, 0, 255, QType::U8, y), fgq::Error);
  CHECK_THROWS_AS(quantize_nchw(x, 1, 1, 1, 1, 1.f, 0, 10, 9, QType::U8, y), fgq::Error);
  CHECK_THROWS_AS(quantize_nchw(x, 1, 1, 1, 1, 1.f, 0, -1, 255, QType::U8, y), fgq::Error);
  CHECK_THROWS_AS(quantize_nchw(x, 1, 1, 1, 1, 1.f, 0, 0, 256, QType::U8, y), fgq::Error);
  CHECK_THROWS_AS(quantize_nchw(x, 1, 1, 1, 1, 1.f, 0, -129, 127, QType::S8, y), fgq::Error);
  CHECK_THROWS_AS(quantize_nchw(x, 1, 1, 1, 1, 1.f, 0, -128, 128, QType::S8, y), fgq::Error);
  CHECK_THROWS_AS(quantize_nchw(x, 1, 1, 1, 1, 1.f, 0, 0, 16, QType::U4, y), fgq::Error);
  CHECK_THROWS_AS(quantize_nchw(x, 1, 1, 1, 1, 1.f, 16, 0, 15, QType::U4, y), fgq::Error);
  CHECK_THROWS_AS(quantize_nchw(x, 1, 1, 1, 1, 1.f, 256, 0, 255, QType::U8, y), fgq::Error);
  CHECK_THROWS_AS(quantize_nchw(x, 1, 1, 1, 1, 1.f, -129, -128, 127, QType::S8, y), fgq::Error);
  CHECK_THROWS_AS(quantize_nchw(x, 1, 1, 1, 1, 1.f, 0, 0, 255, QType::F32, y), fgq::Error);
  CHECK_THROWS_AS(quantize_nchw(x, 1, 1, 1, 1, 1.f, 0, 0, 255, QType(9), y), fgq::Error);
  for (float bad : {0.f, -1.f, kNaN, kInf})
    CHECK_THROWS_AS(quantize_nchw(x, 1, 1, 1, 1, bad, 0, 0, 255, QType::U8, y), fgq::Error);
  CHECK_THROWS_AS(dequantize_nhwc(y, QType::F32, 1, 1, 1, 1, 1.f, 0, f), fgq::Error);
  CHECK_THROWS_AS(dequantize_nhwc(y, QType::U8, -1, 1, 1, 1, 1.f, 0, f), fgq::Error);
  CHECK_THROWS_AS(dequantize_nhwc(y, QType::U8, 1, 0, 1, 1, 1.f, 0, f), fgq::Error);
  CHECK_THROWS_AS(dequantize_nhwc(y, QType::U4, 1, 1, 1, 1, 1.f, 16, f), fgq::Error);
  CHECK_THROWS_AS(dequantize_nhwc(y, QType::U8, 1, 1, 1, 1, kNaN, 0, f), fgq::Error);
  CHECK_THROWS_AS(fgq::ops::pack_u4(y, -1, 3, y + 32), fgq::Error);
  CHECK_THROWS_AS(fgq::ops::pack_u4(y, 1, 0, y + 32), fgq::Error);
  CHECK_THROWS_AS(fgq::ops::pack_u4(y, 1, 3, y + 32, 16), fgq::Error);
  CHECK_THROWS_AS(fgq::ops::unpack_u4(y, -1, 3, y + 32), fgq::Error);
  CHECK_THROWS_AS(fgq::ops::unpack_u4(y, 1, 0, y + 32), fgq::Error);
  CHECK(std::string(fgq::ops::qtype_name(QType::U4)) == "u4");
  CHECK(std::string(fgq::ops::qtype_name(QType::S8)) == "s8");
  // One-line messages.
  try {
    quantize_nchw(x, 1, 1, 1, 1, 1.f, 0, 0, 16, QType::U4, y);
  } catch (const fgq::Error& e) {
    CHECK(std::string(e.what()).find('\n') == std::string::npos);
    CHECK(std::string(e.what()).rfind("quantize: ", 0) == 0);
  }
}
