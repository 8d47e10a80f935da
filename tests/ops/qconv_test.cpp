// ops/qconv: the reference against hand-computed cases and an independent float convolution;
// every ISA path this CPU runs against the reference, byte for byte, on many shapes.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <tbb/global_control.h>
#include <tbb/task_arena.h>

#include "fgq/error.h"
#include "ops/conv2d.h"
#include "ops/cpu_features.h"
#include "ops/parallel_tasks.h"
#include "ops/qconv/qconv.h"
#include "ops/qtypes.h"
#include "tests/ops/op_test_util.h"

using fgq::ops::Isa;
using fgq::ops::QConvGeometry;
using fgq::ops::QConvParams;
using fgq::ops::QType;
using fgq::test::kInf;

namespace {


struct Free {
  void operator()(void* p) const { std::free(p); }
};
// 64-byte aligned bytes, filled with `fill`, plus a guard tail that must stay untouched.
struct Bytes {
  std::unique_ptr<uint8_t[], Free> p;
  size_t n = 0, guard = 64;
  explicit Bytes(size_t size, uint8_t fill = 0) : n(size) {
    const size_t total = (n + guard + 63) / 64 * 64;
    p.reset(static_cast<uint8_t*>(std::aligned_alloc(64, total)));
    std::memset(p.get(), fill, total);
  }
  uint8_t* data() { return p.get(); }
  bool guard_intact(uint8_t fill) const {
    for (size_t i = n; i < n + guard; ++i)
      if (p[i] != fill) return false;
    return true;
  }
};

std::string describe(const QConvParams& p, int batch) {
  const QConvGeometry& g = p.g;
  std::string s = "C" + std::to_string(g.C) + " " + std::to_string(g.H) + "x" +
                  std::to_string(g.W) + " -> K" + std::to_string(g.K) + " k" +
                  std::to_string(g.KH) + "x" + std::to_string(g.KW) + " s" +
                  std::to_string(g.SH) + "," + std::to_string(g.SW) + " p" +
                  std::to_string(g.PT) + "," + std::to_string(g.PL) + "," +
                  std::to_string(g.PB) + "," + std::to_string(g.PR) + " d" +
                  std::to_string(g.DH) + "," + std::to_string(g.DW) + " batch " +
                  std::to_string(batch) + " in " + fgq::ops::qtype_name(p.in_type) + " zero " +
                  std::to_string(p.in_zero) + " out " + fgq::ops::qtype_name(p.out_type);
  if (p.has_residual)
    s += std::string(" res ") + fgq::ops::qtype_name(p.res_type) + " x" +
         std::to_string(p.res_scale);
  s += " clamp [" + std::to_string(p.clamp_lo) + ", " + std::to_string(p.clamp_hi) + "]";
  return s;
}

// Writes channel c of a pixel of type t (U8/S8/U4).
void put(QType t, uint8_t* px, int64_t c, int v) {
  if (t == QType::U4) {
    uint8_t& b = px[c / 2];
    b = (c & 1) ? uint8_t((b & 0x0F) | (v << 4)) : uint8_t((b & 0xF0) | v);
  } else {
    px[c] = uint8_t(v);
  }
}
int get(QType t, const uint8_t* px, int64_t c) {
  if (t == QType::U4) return (px[c / 2] >> (4 * (c & 1))) & 15;
  return t == QType::S8 ? int(int8_t(px[c])) : int(px[c]);
}

// A random activation tensor: `pixels` pixels of C channels, values in [lo, hi], padding
// channels holding `zero`.
std::vector<uint8_t> random_act(QType t, int64_t pixels, int C, int lo, int hi, int zero,
                                std::mt19937& rng) {
  const int64_t pb = fgq::ops::qpixel_bytes(t, C), cs = fgq::ops::qchannel_stride(t, C);
  std::vector<uint8_t> v(size_t(pixels * pb) + 1, 0);  // +1: never empty
  std::uniform_int_distribution<int> d(lo, hi);
  for (int64_t px = 0; px < pixels; ++px)
    for (int64_t c = 0; c < cs; ++c) put(t, v.data() + px * pb, c, c < C ? d(rng) : zero);
  return v;
}

struct Layer {
  QConvParams p;
  int batch = 1;
  std::vector<int8_t> w;
  std::vector<float> mult, bias;
  std::vector<uint8_t> x, res;
};

enum class Weights { Full, Ternary };

// Random weights, multipliers that spread the outputs over (and past) the output range, biases
// and inputs covering the whole input range.
void fill_random(Layer& L, Weights wk, std::mt19937& rng) {
  const QConvGeometry& g = L.p.g;
  const int taps = g.KH * g.KW;
  L.w.resize(size_t(g.K) * g.C * taps);
  if (wk == Weights::Full) {
    std::uniform_int_distribution<int> d(-128, 127);
    for (auto& v : L.w) v = int8_t(d(rng));
  } else {  // FGQ: a_g * t, t in {-1, 0, 1}, one a_g per group of 4 input channels at a tap
    std::uniform_int_distribution<int> da(1, 127), dt(-1, 1);
    for (int k = 0; k < g.K; ++k)
      for (int c0 = 0; c0 < g.C; c0 += 4)
        for (int t = 0; t < taps; ++t) {
          const int a = da(rng);
          for (int c = c0; c < std::min(g.C, c0 + 4); ++c)
            L.w[(size_t(k) * g.C + c) * taps + t] = int8_t(a * dt(rng));
        }
  }
  const int in_max = L.p.in_type == QType::U4 ? 15 : 255;
  const double x_sd = in_max * 0.6, w_sd = wk == Weights::Full ? 74 : 50;
  const double acc_sd = std::sqrt(double(g.C) * taps) * x_sd * w_sd;
  std::uniform_real_distribution<double> u(0.3, 3.0), ub(-40, 40), sign(-1, 1);
  L.mult.resize(g.K);
  L.bias.resize(g.K);
  for (int k = 0; k < g.K; ++k) {
    L.mult[k] = float((sign(rng) < -0.8 ? -1 : 1) * u(rng) * 100 / acc_sd);
    L.bias[k] = float(ub(rng));
  }
  L.x = random_act(L.p.in_type, int64_t(L.batch) * g.H * g.W, g.C, 0, in_max, L.p.in_zero, rng);
  if (L.p.has_residual) {
    const int64_t out_px = int64_t(L.batch) * g.OH() * g.OW();
    const QType rt = L.p.res_type;
    L.res = rt == QType::U8   ? random_act(rt, out_px, g.K, 0, 255, 0, rng)
            : rt == QType::S8 ? random_act(rt, out_px, g.K, -128, 127, 0, rng)
                              : random_act(rt, out_px, g.K, 0, 15, 0, rng);
  }
}

size_t out_bytes(const QConvParams& p, int batch) {
  const int64_t px = int64_t(batch) * p.g.OH() * p.g.OW();
  return size_t(px * fgq::ops::qpixel_bytes(p.out_type, p.g.K));
}

std::vector<uint8_t> run_reference(const Layer& L) {
  Bytes y(out_bytes(L.p, L.batch), 0xCD);
  fgq::ops::qconv_reference(L.p, L.batch, L.x.data(), L.w.data(), L.mult.data(), L.bias.data(),
                            L.p.has_residual ? L.res.data() : nullptr, y.data());
  return std::vector<uint8_t>(y.data(), y.data() + y.n);
}

// Runs one ISA path; `ok_guard` tells whether the bytes after the output stayed untouched.
std::vector<uint8_t> run_isa(Isa isa, const Layer& L, bool& ok_guard) {
  auto k = fgq::ops::make_qconv(isa, L.p, L.w.data(), L.mult.data(), L.bias.data());
  Bytes scratch(std::max<size_t>(1, fgq::ops::qconv_scratch_bytes(*k, L.batch)), 0x5A);
  Bytes y(out_bytes(L.p, L.batch), 0xAB);
  fgq::ops::qconv_run(*k, L.batch, L.x.data(), L.p.has_residual ? L.res.data() : nullptr,
                      y.data(), scratch.data());
  ok_guard = y.guard_intact(0xAB);
  return std::vector<uint8_t>(y.data(), y.data() + y.n);
}

// First differing element, for the failure message.
std::string first_diff(const QConvParams& p, const std::vector<uint8_t>& a,
                       const std::vector<uint8_t>& b) {
  const size_t es = p.out_type == QType::F32 ? 4 : 1;
  for (size_t i = 0; i < a.size(); i += es)
    if (std::memcmp(&a[i], &b[i], es) != 0) {
      if (es == 4) {
        float fa, fb;
        std::memcpy(&fa, &a[i], 4);
        std::memcpy(&fb, &b[i], 4);
        return "float " + std::to_string(i / 4) + ": ref " + std::to_string(fa) + " got " +
               std::to_string(fb);
      }
      return "byte " + std::to_string(i) + ": ref " + std::to_string(a[i]) + " got " +
             std::to_string(b[i]);
    }
  return "none";
}

std::string isa_list(const std::vector<Isa>& v) {
  std::string s;
  for (Isa i : v) s += (s.empty() ? "" : ", ") + std::string(fgq::ops::isa_name(i));
  return s.empty() ? "none" : s;
}

void report_paths_once() {
  static bool done = false;
  if (done) return;
  done = true;
  std::vector<Isa> run = fgq::ops::supported_isas(), skipped;
  for (Isa i : {Isa::Scalar, Isa::Avx2, Isa::Avx512Vnni})
    if (!fgq::ops::cpu_supports(i)) skipped.push_back(i);
  WARN("qconv paths checked against the reference: " << isa_list(run)
                                                     << "; skipped (this CPU lacks them): "
                                                     << isa_list(skipped));
}

// Every supported path must reproduce the reference's bytes exactly.
void check_all_isas(const Layer& L) {
  const auto ref = run_reference(L);
  for (Isa isa : fgq::ops::supported_isas()) {
    bool guard = false;
    const auto got = run_isa(isa, L, guard);
    INFO(fgq::ops::isa_name(isa) << ": " << describe(L.p, L.batch));
    INFO("first difference: " << first_diff(L.p, ref, got));
    REQUIRE(got == ref);
    REQUIRE(guard);
  }
}

QConvParams params(int C, int H, int W, int K, int KH, int KW, int S = 1, int pad = 0) {
  QConvParams p;
  p.g.C = C, p.g.H = H, p.g.W = W, p.g.K = K, p.g.KH = KH, p.g.KW = KW, p.g.SH = p.g.SW = S;
  p.g.PT = p.g.PL = p.g.PB = p.g.PR = pad;
  return p;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// The reference itself.

TEST_CASE("qconv reference: hand-computed 1x1", "[qconv]") {
  // One channel, 2x2, w = 2, mult 0.5, bias 1: y = x + 1, saturated at 255.
  QConvParams p = params(1, 2, 2, 1, 1, 1);
  const std::vector<uint8_t> x = {0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 255, 0, 0, 0};
  const int8_t w = 2;
  const float mult = 0.5f, bias = 1.f;
  std::vector<uint8_t> y(16, 0xEE);
  fgq::ops::qconv_reference(p, 1, x.data(), &w, &mult, &bias, nullptr, y.data());
  CHECK(y == std::vector<uint8_t>{1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 255, 0, 0, 0});
}

TEST_CASE("qconv reference: zero point 128 with padding", "[qconv]") {
  // 3x3 ones over a 2x2 image padded by 1: every output sees all 4 pixels, and the 5 padding
  // taps contribute nothing: (128-128) + (130-128) + (126-128) + (200-128) = 72.
  QConvParams p = params(1, 2, 2, 1, 3, 3, 1, 1);
  p.in_zero = 128;
  p.out_type = QType::S8;
  p.clamp_lo = -128, p.clamp_hi = 127;
  std::vector<uint8_t> x = {128, 128, 128, 128, 130, 128, 128, 128,
                            126, 128, 128, 128, 200, 128, 128, 128};
  const std::vector<int8_t> w(9, 1);
  const float mult = 1.f, bias = 0.f;
  std::vector<uint8_t> y(16, 0xEE);
  fgq::ops::qconv_reference(p, 1, x.data(), w.data(), &mult, &bias, nullptr, y.data());
  CHECK(y == std::vector<uint8_t>{72, 0, 0, 0, 72, 0, 0, 0, 72, 0, 0, 0, 72, 0, 0, 0});
  // mult -2: -144 saturates to -128; F32 output keeps it.
  const float m2 = -2.f;
  fgq::ops::qconv_reference(p, 1, x.data(), w.data(), &m2, &bias, nullptr, y.data());
  CHECK(y[0] == uint8_t(int8_t(-128)));
  p.out_type = QType::F32;
  p.clamp_lo = -kInf, p.clamp_hi = kInf;
  std::vector<float> f(4);
  fgq::ops::qconv_reference(p, 1, x.data(), w.data(), &m2, &bias, nullptr, f.data());
  CHECK(f == std::vector<float>{-144.f, -144.f, -144.f, -144.f});
}

TEST_CASE("qconv reference: ties round to even, clamp, residual", "[qconv]") {
  // 1x1, 1 channel -> 1 channel, w = 1, mult 0.5: x = 1, 3, 5, 7 give 0.5, 1.5, 2.5, 3.5.
  QConvParams p = params(1, 1, 4, 1, 1, 1);
  p.out_type = QType::S8;
  p.clamp_lo = -128, p.clamp_hi = 127;
  const std::vector<uint8_t> x = {1, 0, 0, 0, 3, 0, 0, 0, 5, 0, 0, 0, 7, 0, 0, 0};
  const int8_t w = 1;
  const float half = 0.5f, zero = 0.f;
  std::vector<uint8_t> y(16, 0xEE);
  fgq::ops::qconv_reference(p, 1, x.data(), &w, &half, &zero, nullptr, y.data());
  CHECK((std::vector<int>{y[0], y[4], y[8], y[12]}) == std::vector<int>{0, 2, 2, 4});
  // Negative: mult -0.5 gives -0.5, -1.5, -2.5, -3.5 -> 0, -2, -2, -4.
  const float mhalf = -0.5f;
  fgq::ops::qconv_reference(p, 1, x.data(), &w, &mhalf, &zero, nullptr, y.data());
  CHECK((std::vector<int>{int8_t(y[0]), int8_t(y[4]), int8_t(y[8]), int8_t(y[12])}) ==
        std::vector<int>{0, -2, -2, -4});
  // Clamp [1, 2.2] (then rounding): 1, 2, 2, 2.
  p.clamp_lo = 1.f, p.clamp_hi = 2.2f;
  fgq::ops::qconv_reference(p, 1, x.data(), &w, &half, &zero, nullptr, y.data());
  CHECK((std::vector<int>{y[0], y[4], y[8], y[12]}) == std::vector<int>{1, 2, 2, 2});
  // Residual s8 (-3, 0, 10, 127) x 0.25 added before a ReLU, u8 output.
  p.clamp_lo = 0, p.clamp_hi = 255, p.out_type = QType::U8;
  p.has_residual = true, p.res_type = QType::S8, p.res_scale = 0.25f;
  const std::vector<uint8_t> res = {uint8_t(int8_t(-3)), 0, 0, 0, 0, 0, 0, 0,
                                    10, 0, 0, 0, 127, 0, 0, 0};
  fgq::ops::qconv_reference(p, 1, x.data(), &w, &half, &zero, res.data(), y.data());
  // 0.5 - 0.75 = -0.25 -> 0; 1.5; 2.5 + 2.5 = 5; 3.5 + 31.75 = 35.25 -> 35
  CHECK((std::vector<int>{y[0], y[4], y[8], y[12]}) == std::vector<int>{0, 2, 5, 35});
}

TEST_CASE("qconv reference: u4 nibble order in, out and residual", "[qconv]") {
  // C = 3 u4 channels (1, 2, 3) in one pixel: bytes 0x21, 0x03, padding 0.
  QConvParams p = params(3, 1, 1, 3, 1, 1);
  p.in_type = QType::U4;
  p.out_type = QType::U4;
  p.clamp_hi = 15;
  const std::vector<uint8_t> x = {0x21, 0x03, 0x00, 0x00};
  // out k0 = x0, k1 = x2, k2 = x1 + residual
  const std::vector<int8_t> w = {1, 0, 0, 0, 0, 1, 0, 1, 0};
  const std::vector<float> mult(3, 1.f), bias(3, 0.f);
  p.has_residual = true, p.res_type = QType::U4, p.res_scale = 1.f;
  const std::vector<uint8_t> res = {0x00, 0x05, 0x00, 0x00};  // channels 0, 0, 5
  std::vector<uint8_t> y(4, 0xEE);
  fgq::ops::qconv_reference(p, 1, x.data(), w.data(), mult.data(), bias.data(), res.data(),
                            y.data());
  CHECK(y == std::vector<uint8_t>{0x31, 0x07, 0x00, 0x00});
  for (Isa isa : fgq::ops::supported_isas()) {
    auto k = fgq::ops::make_qconv(isa, p, w.data(), mult.data(), bias.data());
    Bytes scratch(std::max<size_t>(1, fgq::ops::qconv_scratch_bytes(*k, 1)));
    std::vector<uint8_t> z(4, 0xEE);
    fgq::ops::qconv_run(*k, 1, x.data(), res.data(), z.data(), scratch.data());
    INFO(fgq::ops::isa_name(isa));
    CHECK(z == y);
  }
}

// The reference against conv2d_f32_naive on the dequantized values: the accumulator exactly
// (F32 output, mult 1, bias 0, no clamp), then the whole epilogue in double within 1 LSB.
TEST_CASE("qconv reference matches an independent float convolution", "[qconv]") {
  std::mt19937 rng(7);
  struct G {
    int C, H, W, K, KH, KW, SH, SW, PT, PL, PB, PR, DH, DW;
  };
  const G shapes[] = {{3, 7, 7, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},
                      {5, 9, 6, 4, 3, 3, 2, 2, 0, 1, 2, 0, 1, 1},
                      {4, 8, 8, 3, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2},
                      {17, 5, 4, 6, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1},
                      {2, 11, 10, 3, 7, 7, 2, 2, 3, 3, 3, 3, 1, 1},
                      {6, 6, 9, 7, 1, 5, 1, 2, 0, 2, 0, 1, 1, 1}};
  for (const G& s : shapes)
    for (QType in : {QType::U8, QType::U4}) {
      Layer L;
      QConvGeometry& g = L.p.g;
      g.C = s.C, g.H = s.H, g.W = s.W, g.K = s.K, g.KH = s.KH, g.KW = s.KW, g.SH = s.SH,
      g.SW = s.SW, g.PT = s.PT, g.PL = s.PL, g.PB = s.PB, g.PR = s.PR, g.DH = s.DH, g.DW = s.DW;
      L.p.in_type = in;
      L.p.in_zero = in == QType::U8 ? 128 : 7;
      L.p.out_type = QType::F32;
      L.p.clamp_lo = -kInf, L.p.clamp_hi = kInf;
      fill_random(L, Weights::Full, rng);
      const int OH = g.OH(), OW = g.OW();
      // Dequantized NCHW input (x - zero) and float weights.
      std::vector<float> xf(size_t(g.C) * g.H * g.W), wf(L.w.begin(), L.w.end());
      const int64_t pb = fgq::ops::qpixel_bytes(in, g.C);
      for (int c = 0; c < g.C; ++c)
        for (int i = 0; i < g.H * g.W; ++i)
          xf[size_t(c) * g.H * g.W + i] = float(get(in, L.x.data() + i * pb, c) - L.p.in_zero);
      fgq::ops::Conv2dShape cs;
      cs.C = g.C, cs.H = g.H, cs.W = g.W, cs.K = g.K, cs.KH = g.KH, cs.KW = g.KW;
      cs.SH = g.SH, cs.SW = g.SW, cs.PT = g.PT, cs.PL = g.PL, cs.PB = g.PB, cs.PR = g.PR;
      cs.DH = g.DH, cs.DW = g.DW;
      std::vector<float> acc(size_t(g.K) * OH * OW);
      fgq::ops::conv2d_f32_naive(cs, xf.data(), wf.data(), nullptr, nullptr, false, acc.data());

      INFO(describe(L.p, 1));
      // 1. The accumulator.
      std::vector<float> ones(g.K, 1.f), zeros(g.K, 0.f), yf(acc.size());
      fgq::ops::qconv_reference(L.p, 1, L.x.data(), L.w.data(), ones.data(), zeros.data(),
                                nullptr, yf.data());
      REQUIRE(yf == acc);
      // 2. The epilogue: mult, bias, s8 residual, clamp, u8 output.
      L.p.out_type = QType::U8;
      L.p.clamp_lo = 3.f, L.p.clamp_hi = 200.f;
      L.p.has_residual = true, L.p.res_type = QType::S8, L.p.res_scale = 0.375f;
      L.res = random_act(QType::S8, int64_t(OH) * OW, g.K, -128, 127, 0, rng);
      for (auto& m : L.mult) m *= 2;
      const auto y = run_reference(L);
      const int64_t ypb = fgq::ops::qpixel_bytes(QType::U8, g.K);
      int worst = 0;
      for (int k = 0; k < g.K; ++k)
        for (int i = 0; i < OH * OW; ++i) {
          double v = double(acc[size_t(k) * OH * OW + i]) * L.mult[k] + L.bias[k] +
                     double(get(QType::S8, L.res.data() + i * ypb, k)) * L.p.res_scale;
          v = std::min(200.0, std::max(3.0, v));
          worst = std::max(worst, std::abs(int(std::lround(v)) - int(y[size_t(i * ypb + k)])));
        }
      CHECK(worst <= 1);
    }
}

// ---------------------------------------------------------------------------------------------
// The ISA paths against the reference.

TEST_CASE("qconv paths are bit-exact: named shapes", "[qconv]") {
  report_paths_once();
  std::mt19937 rng(1234);
  struct S {
    QConvParams p;
    int batch;
  };
  std::vector<S> cases;
  // 1x1 (plain GEMM), odd channel counts, batch 3 with tiles across images.
  cases.push_back({params(130, 5, 7, 100, 1, 1), 3});
  cases.push_back({params(63, 7, 7, 33, 1, 1), 1});
  cases.push_back({params(1, 1, 1, 1, 1, 1), 1});
  cases.push_back({params(3, 13, 9, 17, 1, 1), 3});
  // 3x3 pad 1, stride 2, 7x7 stride 2 (the first conv: C = 3, in_zero 128).
  cases.push_back({params(17, 13, 9, 33, 3, 3, 1, 1), 1});
  cases.push_back({params(64, 14, 14, 64, 3, 3, 2, 1), 1});
  {
    QConvParams p = params(3, 29, 29, 64, 7, 7, 2, 3);
    p.in_zero = 128;
    cases.push_back({p, 1});
  }
  // 1xN and Nx1, asymmetric padding, dilation 2.
  {
    QConvParams p = params(5, 9, 13, 5, 1, 5);
    p.g.PL = 2, p.g.PR = 1;
    cases.push_back({p, 3});
    QConvParams q = params(17, 11, 6, 100, 3, 1);
    q.g.PT = 0, q.g.PB = 2, q.g.SH = 2;
    cases.push_back({q, 1});
    QConvParams d = params(63, 9, 9, 17, 3, 3);
    d.g.DH = d.g.DW = 2, d.g.PT = d.g.PL = 2, d.g.PB = 1, d.g.PR = 0;
    cases.push_back({d, 1});
  }
  // Spatial 1x1 (a fully connected layer), batch 3.
  cases.push_back({params(130, 1, 1, 100, 1, 1), 3});
  // One big case: 56x56x64 -> 64 3x3.
  cases.push_back({params(64, 56, 56, 64, 3, 3, 1, 1), 1});

  int n = 0;
  for (const S& s : cases) {
    for (int variant = 0; variant < 4; ++variant) {
      if (n > 0 && s.p.g.H == 56 && variant > 0) break;  // the big case once
      Layer L;
      L.p = s.p;
      L.batch = s.batch;
      // Variants: u8 -> u8 ReLU; u4 in -> s8 with u8 residual; u8 zero 128 -> u4 with s8
      // residual; u8 -> f32 with u4 residual, no clamp.
      if (variant == 1) {
        L.p.in_type = QType::U4, L.p.in_zero = L.p.in_zero ? 8 : 0;
        L.p.out_type = QType::S8, L.p.clamp_lo = -128, L.p.clamp_hi = 127;
        L.p.has_residual = true, L.p.res_type = QType::U8, L.p.res_scale = 0.5f;
      } else if (variant == 2) {
        L.p.in_zero = 128;
        L.p.out_type = QType::U4, L.p.clamp_lo = 0, L.p.clamp_hi = 15;
        L.p.has_residual = true, L.p.res_type = QType::S8, L.p.res_scale = 0.0625f;
      } else if (variant == 3) {
        L.p.out_type = QType::F32, L.p.clamp_lo = -kInf, L.p.clamp_hi = kInf;
        L.p.has_residual = true, L.p.res_type = QType::U4, L.p.res_scale = -1.5f;
      }
      fill_random(L, (n++ % 2) ? Weights::Ternary : Weights::Full, rng);
      check_all_isas(L);
    }
  }
}

TEST_CASE("qconv paths are bit-exact: random shapes", "[qconv]") {
  report_paths_once();
  std::mt19937 rng(42);
  const int Cs[] = {1, 3, 5, 17, 63, 130, 4, 8, 64};
  const int Ks[] = {1, 5, 17, 33, 100, 16, 64, 80};
  const int kernels[][2] = {{1, 1}, {3, 3}, {7, 7}, {1, 3}, {3, 1}, {1, 5}, {5, 5}, {2, 2}};
  const int sizes[][2] = {{1, 1}, {7, 7}, {13, 9}, {5, 11}, {2, 3}, {8, 8}};
  const QType outs[] = {QType::U8, QType::S8, QType::U4, QType::F32};
  const QType ress[] = {QType::U8, QType::S8, QType::U4};
  auto pick = [&](int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng); };
  int done = 0;
  for (int attempt = 0; done < 300 && attempt < 20000; ++attempt) {
    Layer L;
    QConvGeometry& g = L.p.g;
    g.C = Cs[pick(9)], g.K = Ks[pick(8)];
    const auto& kk = kernels[pick(8)];
    g.KH = kk[0], g.KW = kk[1];
    const auto& hw = sizes[pick(6)];
    g.H = hw[0], g.W = hw[1];
    g.SH = 1 + pick(2), g.SW = pick(4) ? g.SH : 1 + pick(2);
    g.DH = pick(4) ? 1 : 2, g.DW = pick(4) ? g.DH : 3 - g.DH;
    g.PT = pick(3), g.PB = pick(3), g.PL = pick(3), g.PR = pick(3);
    if (pick(3) == 0) g.PT = g.PB = g.PL = g.PR = 0;
    if (g.H + g.PT + g.PB < g.DH * (g.KH - 1) + 1 || g.W + g.PL + g.PR < g.DW * (g.KW - 1) + 1)
      continue;
    L.batch = pick(3) ? 1 : 3;
    const int64_t macs = int64_t(L.batch) * g.OH() * g.OW() * g.K * g.C * g.KH * g.KW;
    if (macs > 1500000) continue;
    L.p.in_type = pick(3) ? QType::U8 : QType::U4;
    L.p.in_zero = pick(2) ? 0 : L.p.in_type == QType::U8 ? 128 : 8;
    if (pick(5) == 0) L.p.in_zero = L.p.in_type == QType::U8 ? 255 : 15;
    L.p.out_type = outs[pick(4)];
    switch (pick(4)) {  // clamps: ReLU, the type's range, a narrow window, none
      case 0: L.p.clamp_lo = 0, L.p.clamp_hi = kInf; break;
      case 1: L.p.clamp_lo = -128, L.p.clamp_hi = 255; break;
      case 2: L.p.clamp_lo = -3.5f, L.p.clamp_hi = 6.25f; break;
      default: L.p.clamp_lo = -kInf, L.p.clamp_hi = kInf; break;
    }
    L.p.has_residual = pick(2);
    L.p.res_type = ress[pick(3)];
    L.p.res_scale = pick(2) ? 0.75f : -0.03125f;
    fill_random(L, pick(2) ? Weights::Ternary : Weights::Full, rng);
    if (pick(4) == 0)  // exact halves: ties must round to even everywhere
      for (int k = 0; k < g.K; ++k) L.mult[k] = 0.5f, L.bias[k] = float(k % 3);
    check_all_isas(L);
    ++done;
  }
  CHECK(done == 300);
}

TEST_CASE("qconv paths: u8 / s8 saturation and ties at the bounds (the unclamped epilogue)",
          "[qconv]") {
  // acc = x[channel 0] (0..255), y = acc * 0.5 + bias[k] with biases ending in .5: ties when x
  // is even, values from far below to far above both the u8 and the s8 range. The avx512vnni
  // path drops the float clamp here (the saturating packs clamp, then a narrower clamp with
  // integer bounds on the bytes) - it must not show; bounds that are not whole numbers keep it.
  struct Clamp {
    float lo, hi;
  };
  for (QType out : {QType::U8, QType::S8})
    for (Clamp c : {Clamp{-1e9f, 1e9f}, Clamp{-127, 127}, Clamp{3, 100}, Clamp{-0.5f, 99.5f}})
    for (int res = 0; res < 3; ++res)
      for (float mult : {0.5f, 3e7f}) {  // 3e7: |y| may pass 2^31, the clamped epilogue again
        Layer L;
        L.p = params(4, 16, 16, 128, 1, 1);
        L.p.out_type = out;
        L.p.clamp_lo = c.lo;  // the type's range where wider
        L.p.clamp_hi = c.hi;
        if (res) {
          L.p.has_residual = true, L.p.res_scale = 0.5f;
          L.p.res_type = res == 1 ? QType::U8 : QType::S8;
        }
        std::mt19937 rng(11 + res);
        fill_random(L, Weights::Full, rng);
        std::fill(L.w.begin(), L.w.end(), int8_t(0));
        for (int k = 0; k < 128; ++k) {
          L.w[size_t(k) * 4] = 1;
          L.mult[k] = mult;
          L.bias[k] = -300.5f + 5.f * float(k);
        }
        for (int px = 0; px < 256; ++px) L.x[size_t(px) * 4] = uint8_t(px);
        INFO("out " << fgq::ops::qtype_name(out) << " clamp [" << c.lo << ", " << c.hi << "] residual "
                    << res << " mult " << mult);
        check_all_isas(L);
      }
}

TEST_CASE("qconv paths: int16 saturation would show (all-255 input, +-127 weights)", "[qconv]") {
  // Pairs of 255 * 127 sum to 64770 > 32767: a vpmaddubsw path would saturate.
  for (int wsign : {1, -1}) {
    Layer L;
    L.p = params(64, 6, 6, 32, 3, 3, 1, 1);
    L.p.out_type = QType::F32, L.p.clamp_lo = -kInf, L.p.clamp_hi = kInf;
    std::mt19937 rng(3);
    fill_random(L, Weights::Full, rng);
    std::fill(L.x.begin(), L.x.end(), 255);
    for (size_t i = 0; i < L.w.size(); ++i) L.w[i] = int8_t(wsign * ((i % 7) ? 127 : -128));
    std::fill(L.mult.begin(), L.mult.end(), 1.f);
    check_all_isas(L);
  }
}

// A ternary 3x3 layer big enough to run on two threads (17 M multiply-adds, 200 channels).
Layer two_thread_layer(unsigned seed) {
  std::mt19937 rng(seed);
  Layer L;
  L.p = params(40, 9, 9, 200, 3, 3, 1, 1);
  L.batch = 3;
  fill_random(L, Weights::Ternary, rng);
  return L;
}

TEST_CASE("qconv paths: same bytes on 1 and 2 threads, on TBB and on a spinning team", "[qconv]") {
  Layer dense;  // the first conv's path (dense padded image, converted in a parallel loop)
  dense.p = params(3, 40, 40, 64, 7, 7, 2, 3);
  dense.batch = 2;
  std::mt19937 rng(3);
  fill_random(dense, Weights::Full, rng);
  Layer u4 = two_thread_layer(98);  // u4 input: unpacked in a parallel loop first
  u4.p.in_type = QType::U4;
  u4.p.in_zero = 0;
  fill_random(u4, Weights::Ternary, rng);
  for (const Layer& L : {two_thread_layer(99), dense, u4}) {
    const auto ref = run_reference(L);
    for (Isa isa : fgq::ops::supported_isas())
      for (int threads : {1, 2})
        for (bool team : {false, true}) {
          tbb::task_arena arena(threads);
          std::vector<uint8_t> got;
          bool guard = false;
          arena.execute([&] {
            std::optional<fgq::ops::SpinTeam> t;
            if (team) t.emplace(threads);
            for (int rep = 0; rep < 3; ++rep) got = run_isa(isa, L, guard);
          });
          INFO(fgq::ops::isa_name(isa) << " threads " << threads << (team ? ", spinning team" : ", TBB") << ": "
                                       << describe(L.p, L.batch));
          CHECK(got == ref);
        }
  }
}

// Counts the hook's calls (thread-safe: tasks run on every thread of the arena).
struct CountingTimeline : fgq::ops::QConvTimeline {
  std::atomic<int> layer_begin{0}, layer_end{0}, task_begin{0}, task_end{0}, task_outside{0};
  std::atomic<bool> open{false};
  void mark(Event e) override {
    switch (e) {
      case kLayerBegin: layer_begin++, open = true; break;
      case kLayerEnd: layer_end++, open = false; break;
      case kTaskBegin: task_begin++, task_outside += !open; break;
      case kTaskEnd: task_end++, task_outside += !open; break;
    }
  }
};

TEST_CASE("qconv paths: the timeline hook sees one layer span around all its tasks, same bytes", "[qconv]") {
  const Layer L = two_thread_layer(17);
  const auto ref = run_reference(L);
  for (Isa isa : fgq::ops::supported_isas()) {
    INFO(fgq::ops::isa_name(isa));
    CountingTimeline t;
    fgq::ops::qconv_set_timeline(&t);
    tbb::task_arena arena(2);
    std::vector<uint8_t> got;
    bool guard = false;
    arena.execute([&] { got = run_isa(isa, L, guard); });
    fgq::ops::qconv_set_timeline(nullptr);
    CHECK(got == ref);
    CHECK(t.layer_begin == 1);
    CHECK(t.layer_end == 1);
    CHECK(t.task_begin >= 2);  // 200 output channels, 243 pixels: split over 2 threads
    CHECK(t.task_end == t.task_begin.load());
    CHECK(t.task_outside == 0);
  }
}

TEST_CASE("qconv paths: the output may overwrite a residual of the same type", "[qconv]") {
  std::mt19937 rng(5);
  for (QType t : {QType::U8, QType::S8, QType::U4}) {
    Layer L;
    L.p = params(24, 7, 7, 70, 3, 3, 1, 1);
    L.batch = 2;
    L.p.out_type = t, L.p.has_residual = true, L.p.res_type = t, L.p.res_scale = 0.5f;
    L.p.clamp_lo = -128, L.p.clamp_hi = 255;
    fill_random(L, Weights::Full, rng);
    const auto ref = run_reference(L);
    for (Isa isa : fgq::ops::supported_isas()) {
      auto k = fgq::ops::make_qconv(isa, L.p, L.w.data(), L.mult.data(), L.bias.data());
      Bytes scratch(std::max<size_t>(1, fgq::ops::qconv_scratch_bytes(*k, L.batch)));
      std::vector<uint8_t> inout = L.res;  // residual in, output out
      fgq::ops::qconv_run(*k, L.batch, L.x.data(), inout.data(), inout.data(), scratch.data());
      inout.resize(ref.size());
      INFO(fgq::ops::isa_name(isa) << " " << fgq::ops::qtype_name(t));
      CHECK(inout == ref);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Ternary weights (make_qconv_ternary), resident as masks + levels or packed as int8.

namespace {

struct Ternary {
  std::vector<uint8_t> codes, levels;
  std::vector<int8_t> w;  // levels * t, what make_qconv and the reference get
  int group = 4;
};

// Random T2 codes (about a third zeros) and levels 0..127 (both ends included).
Ternary random_ternary(const QConvGeometry& g, int group, std::mt19937& rng) {
  Ternary t;
  t.group = group;
  const int64_t taps = int64_t(g.KH) * g.KW, n = int64_t(g.K) * g.C * taps;
  const int64_t G = (g.C + group - 1) / group;
  t.codes.assign(size_t((n + 3) / 4), 0);
  t.levels.resize(size_t(g.K * G * taps));
  t.w.resize(size_t(n));
  std::uniform_int_distribution<int> dt(0, 2), dl(0, 127);
  for (auto& l : t.levels) l = uint8_t(dl(rng));
  t.levels[0] = 127;
  for (int64_t k = 0; k < g.K; ++k)
    for (int64_t c = 0; c < g.C; ++c)
      for (int64_t q = 0; q < taps; ++q) {
        const int64_t i = (k * g.C + c) * taps + q;
        const int code = dt(rng);
        t.codes[size_t(i / 4)] |= uint8_t(code << (2 * (i % 4)));
        const int tv = code == 1 ? 1 : code == 2 ? -1 : 0;
        t.w[size_t(i)] = int8_t(tv * t.levels[size_t((k * G + c / group) * taps + q)]);
      }
  return t;
}

}  // namespace

TEST_CASE("qconv ternary weights: resident or int8, bit-exact on every path", "[qconv]") {
  std::mt19937 rng(2024);
  struct S {
    QConvParams p;
    int batch;
  };
  std::vector<S> cases;
  cases.push_back({params(64, 9, 7, 64, 1, 1), 1});        // 1x1 GEMM, one block
  cases.push_back({params(130, 5, 7, 100, 1, 1), 3});      // partial groups and blocks, batch 3
  cases.push_back({params(36, 11, 9, 200, 3, 3, 1, 1), 1});  // fused rows, 4 blocks (last 8 wide)
  cases.push_back({params(72, 13, 13, 48, 3, 3, 2, 1), 2});  // indirect rows, stride 2
  cases.push_back({params(256, 1, 1, 1000, 1, 1), 1});     // fully connected: 1 tile per block
  cases.push_back({params(40, 2, 2, 70, 1, 1), 1});        // 4 pixels: tiles expand themselves
  cases.push_back({params(17, 6, 6, 17, 5, 5, 1, 2), 1});  // K < 64, C odd
  // Short reductions (blocks of the pipelined epilogue): fused rows, indirect rows of a
  // strided 1x1, and a GEMM of two pixel tasks on one block (> 256 KB of input), the second
  // finding the block expanded by the first.
  cases.push_back({params(20, 10, 11, 128, 3, 3, 1, 1), 1});
  cases.push_back({params(64, 15, 15, 128, 1, 1, 2, 0), 1});
  cases.push_back({params(64, 72, 64, 64, 1, 1), 1});
  {
    QConvParams p = params(3, 21, 21, 64, 7, 7, 2, 3);     // the first conv (dense, stays int8)
    p.in_zero = 128;
    cases.push_back({p, 1});
  }
  int n = 0;
  for (const S& s : cases)
    for (int group : {4, 8, 2}) {
      Layer L;
      L.p = s.p;
      L.batch = s.batch;
      const int variant = n++ % 4;  // the epilogues of the named-shapes test
      if (variant == 1) {
        L.p.out_type = QType::S8, L.p.clamp_lo = -128, L.p.clamp_hi = 127;
        L.p.has_residual = true, L.p.res_type = QType::U8, L.p.res_scale = 0.5f;
      } else if (variant == 2) {
        L.p.in_zero = 128;
        L.p.out_type = QType::U4, L.p.clamp_lo = 0, L.p.clamp_hi = 15;
      } else if (variant == 3) {
        L.p.out_type = QType::F32, L.p.clamp_lo = -kInf, L.p.clamp_hi = kInf;
        L.p.has_residual = true, L.p.res_type = QType::S8, L.p.res_scale = -1.5f;
      }
      fill_random(L, Weights::Full, rng);  // inputs, residual, multipliers, biases
      const Ternary t = random_ternary(L.p.g, group, rng);
      L.w = t.w;
      const auto ref = run_reference(L);
      fgq::ops::QConvTernaryWeights tw;
      tw.codes = t.codes.data(), tw.levels = t.levels.data(), tw.group = group;
      for (Isa isa : fgq::ops::supported_isas())
        for (bool resident : {false, true})
          for (int threads : {1, 2}) {
            std::shared_ptr<const fgq::ops::QConvKernel> k;
            Bytes y(out_bytes(L.p, L.batch), 0xAB);
            tbb::task_arena arena(threads);
            arena.execute([&] {
              k = fgq::ops::make_qconv_ternary(isa, L.p, tw, L.mult.data(), L.bias.data(),
                                               resident);
              Bytes scratch(std::max<size_t>(1, fgq::ops::qconv_scratch_bytes(*k, L.batch)));
              fgq::ops::qconv_run(*k, L.batch, L.x.data(),
                                  L.p.has_residual ? L.res.data() : nullptr, y.data(),
                                  scratch.data());
            });
            const std::vector<uint8_t> got(y.data(), y.data() + y.n);
            INFO(fgq::ops::isa_name(isa) << " group " << group << " resident " << resident
                                         << " threads " << threads << ": "
                                         << describe(L.p, L.batch));
            INFO("first difference: " << first_diff(L.p, ref, got));
            REQUIRE(got == ref);
            REQUIRE(y.guard_intact(0xAB));
            // Resident on avx512vnni when a VNNI lane's 4 channels share a level (group a multiple
            // of 4), except the first conv's dense layout (C < 4).
            const bool expect =
                resident && isa == Isa::Avx512Vnni && group % 4 == 0 && L.p.g.C >= 4;
            CHECK(fgq::ops::qconv_resident_codes(*k) == expect);
            if (expect) {  // half the int8 bytes
              auto k8 = fgq::ops::make_qconv(isa, L.p, L.w.data(), L.mult.data(), L.bias.data());
              CHECK(fgq::ops::qconv_packed_bytes(*k) < fgq::ops::qconv_packed_bytes(*k8));
            }
          }
    }
}

// A thread keeps the last block of resident weights it expanded and skips expanding it again
// for its next task on that block: layers of the same shape, run alternately on one thread,
// must never see each other's weights (nor a layer made later at a freed layer's address).
TEST_CASE("qconv resident weights: a thread's expanded block never serves another layer", "[qconv]") {
  if (!fgq::ops::cpu_supports(Isa::Avx512Vnni)) {
    WARN("this CPU has no AVX-512 VNNI: resident ternary weights are not used, nothing to test");
    return;
  }
  std::mt19937 rng(77);
  Layer L;
  L.p = params(64, 12, 12, 64, 3, 3, 1, 1);  // one block, 24 tiles: several tasks on it
  L.batch = 1;
  fill_random(L, Weights::Full, rng);
  struct Made {
    Ternary t;
    std::vector<uint8_t> ref;
    std::shared_ptr<const fgq::ops::QConvKernel> k;
  };
  auto make = [&]() {
    Made m{random_ternary(L.p.g, 4, rng), {}, nullptr};
    Layer l = L;
    l.w = m.t.w;
    m.ref = run_reference(l);
    fgq::ops::QConvTernaryWeights tw;
    tw.codes = m.t.codes.data(), tw.levels = m.t.levels.data(), tw.group = 4;
    m.k = fgq::ops::make_qconv_ternary(Isa::Avx512Vnni, L.p, tw, L.mult.data(), L.bias.data(), true);
    REQUIRE(fgq::ops::qconv_resident_codes(*m.k));
    return m;
  };
  auto run = [&](const Made& m) {
    Bytes y(out_bytes(L.p, L.batch), 0xAB);
    fgq::ops::qconv_run(*m.k, L.batch, L.x.data(), nullptr, y.data(), nullptr);
    return std::vector<uint8_t>(y.data(), y.data() + y.n);
  };
  for (int threads : {1, 2}) {
    tbb::task_arena arena(threads);
    arena.execute([&] {
      Made a = make(), b = make();
      REQUIRE(a.ref != b.ref);
      for (int i = 0; i < 3; ++i) {
        INFO("threads " << threads << ", round " << i);
        CHECK(run(a) == a.ref);
        CHECK(run(b) == b.ref);
      }
      b = Made{};  // freed; the next layer may be made at its address
      Made c = make();
      CHECK(run(c) == c.ref);
      CHECK(run(a) == a.ref);
    });
  }
}

TEST_CASE("qconv next-layer prefetch: each part's first weights, and chained runs stay exact", "[qconv]") {
  std::mt19937 rng(91);
  // A fully-connected layer (channels split: the parts start at different blocks), a 3x3 and a
  // 1x1 at 14x14 (pixels split first), each with int8 and resident ternary weights.
  const std::vector<QConvParams> shapes = {params(2048, 1, 1, 1000, 1, 1), params(64, 14, 14, 96, 3, 3, 1, 1),
                                           params(128, 14, 14, 256, 1, 1)};
  for (size_t si = 0; si < shapes.size(); ++si) {
    Layer L;
    L.p = shapes[si];
    fill_random(L, Weights::Full, rng);
    const Ternary t = random_ternary(L.p.g, 4, rng);
    L.w = t.w;
    const std::vector<uint8_t> ref = run_reference(L);
    fgq::ops::QConvTernaryWeights tw;
    tw.codes = t.codes.data(), tw.levels = t.levels.data(), tw.group = 4;
    for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512Vnni}) {
      if (!fgq::ops::cpu_supports(isa)) continue;
      for (bool resident : {false, true}) {
        INFO(describe(L.p, 1) << " on " << fgq::ops::isa_name(isa) << (resident ? ", resident" : ", int8"));
        const auto k = fgq::ops::make_qconv_ternary(isa, L.p, tw, L.mult.data(), L.bias.data(), resident);
        const auto [w0, b0] = fgq::ops::qconv_first_weights(*k, 1, 0, 2);
        if (isa != Isa::Avx512Vnni) {  // the other paths prefetch nothing
          CHECK(w0 == nullptr);
          continue;
        }
        REQUIRE(w0 != nullptr);
        CHECK(b0 > 0);
        const auto* base = static_cast<const uint8_t*>(w0);
        const size_t packed = fgq::ops::qconv_packed_bytes(*k);
        tbb::task_arena arena(2);
        arena.execute([&] {
          for (int parts = 1; parts <= 3; ++parts)
            for (int part = 0; part < parts; ++part) {
              const auto [w, bytes] = fgq::ops::qconv_first_weights(*k, 1, part, parts);
              if (!w) continue;
              const auto* q = static_cast<const uint8_t*>(w);
              CHECK(q >= base);
              CHECK(size_t(q - base) % 64 == 0);
              CHECK(size_t(q - base) + bytes <= packed);
            }
          if (si == 0) {  // fully connected: the second thread starts further into the weights
            const auto [w1, b1] = fgq::ops::qconv_first_weights(*k, 1, 1, 2);
            CHECK(static_cast<const uint8_t*>(w1) > base);
          }
          CHECK(fgq::ops::qconv_first_weights(*k, 1, 2, 2).first == nullptr);  // no part 2 of 2
          // A layer run with this one as its successor, and this one after itself.
          Bytes y(out_bytes(L.p, 1), 0xAB);
          fgq::ops::qconv_run(*k, 1, L.x.data(), nullptr, y.data(), nullptr, k.get());
          CHECK(std::vector<uint8_t>(y.data(), y.data() + y.n) == ref);
        });
      }
    }
  }
}

TEST_CASE("make_qconv_ternary rejects bad codes, levels and groups", "[qconv]") {
  const QConvParams p = params(8, 5, 5, 4, 3, 3, 1, 1);
  std::vector<uint8_t> codes(4 * 8 * 9 / 4, 0x15), levels(4 * 2 * 9, 5);  // codes 1, 1, 1, 0
  const std::vector<float> mult(4, 1.f), bias(4, 0.f);
  fgq::ops::QConvTernaryWeights tw;
  tw.codes = codes.data(), tw.levels = levels.data(), tw.group = 4;
  CHECK_NOTHROW(fgq::ops::make_qconv_ternary(Isa::Scalar, p, tw, mult.data(), bias.data(), true));
  auto bad = [&](fgq::ops::QConvTernaryWeights t, const char* what) {
    INFO(what);
    CHECK_THROWS_AS(fgq::ops::make_qconv_ternary(Isa::Scalar, p, t, mult.data(), bias.data(), true),
                    fgq::Error);
  };
  fgq::ops::QConvTernaryWeights t = tw;
  t.group = 0;
  bad(t, "group 0");
  t = tw, t.codes = nullptr;
  bad(t, "null codes");
  codes[3] = 0x3C;  // weight 14 has code 3
  bad(tw, "code 3");
  codes[3] = 0x15, levels[7] = 128;
  bad(tw, "level 128");
}

// ---------------------------------------------------------------------------------------------
// The contract.

TEST_CASE("make_qconv rejects out-of-contract parameters", "[qconv]") {
  const std::vector<int8_t> w(64 * 64 * 9, 1);
  const std::vector<float> mult(64, 1.f), bias(64, 0.f);
  const QConvParams good = params(8, 5, 5, 4, 3, 3, 1, 1);
  CHECK_NOTHROW(fgq::ops::make_qconv(Isa::Scalar, good, w.data(), mult.data(), bias.data()));
  auto bad = [&](auto edit, const char* what) {
    QConvParams p = good;
    std::vector<float> m = mult, b = bias;
    edit(p, m, b);
    INFO(what);
    CHECK_THROWS_AS(fgq::ops::make_qconv(Isa::Scalar, p, w.data(), m.data(), b.data()),
                    fgq::Error);
  };
  using P = QConvParams;
  using V = std::vector<float>;
  bad([](P& p, V&, V&) { p.g.C = 0; }, "C = 0");
  bad([](P& p, V&, V&) { p.g.K = 0; }, "K = 0");
  bad([](P& p, V&, V&) { p.g.H = 0; }, "H = 0");
  bad([](P& p, V&, V&) { p.g.KW = 0; }, "KW = 0");
  bad([](P& p, V&, V&) { p.g.SH = 0; }, "SH = 0");
  bad([](P& p, V&, V&) { p.g.DW = 0; }, "DW = 0");
  bad([](P& p, V&, V&) { p.g.PL = -1; }, "PL = -1");
  bad([](P& p, V&, V&) { p.g.PT = p.g.PB = 0, p.g.H = 2; }, "kernel taller than the input");
  bad([](P& p, V&, V&) { p.in_type = QType::S8; }, "s8 input");
  bad([](P& p, V&, V&) { p.in_type = QType::F32; }, "f32 input");
  bad([](P& p, V&, V&) { p.in_zero = 256; }, "in_zero 256");
  bad([](P& p, V&, V&) { p.in_zero = -1; }, "in_zero -1");
  bad([](P& p, V&, V&) { p.in_type = QType::U4, p.in_zero = 16; }, "u4 in_zero 16");
  bad([](P& p, V&, V&) { p.has_residual = true, p.res_type = QType::F32; }, "f32 residual");
  bad([](P& p, V&, V&) { p.has_residual = true, p.res_scale = NAN; }, "NaN res_scale");
  bad([](P& p, V&, V&) { p.out_type = QType(7); }, "bad out_type");
  bad([](P& p, V&, V&) { p.clamp_lo = 5, p.clamp_hi = 4; }, "clamp_lo > clamp_hi");
  bad([](P& p, V&, V&) { p.clamp_lo = NAN; }, "NaN clamp");
  bad([](P&, V& m, V&) { m[3] = kInf; }, "infinite mult");
  bad([](P&, V&, V& b) { b[1] = NAN; }, "NaN bias");
  for (Isa isa : {Isa::Avx2, Isa::Avx512Vnni})
    if (!fgq::ops::cpu_supports(isa))
      CHECK_THROWS_AS(fgq::ops::make_qconv(isa, good, w.data(), mult.data(), bias.data()),
                      fgq::Error);
  // A message names the problem.
  QConvParams p = good;
  p.in_zero = 300;
  try {
    fgq::ops::make_qconv(Isa::Scalar, p, w.data(), mult.data(), bias.data());
    FAIL("no error");
  } catch (const fgq::Error& e) {
    CHECK(std::string(e.what()).find("zero point 300") != std::string::npos);
  }
}

TEST_CASE("qconv accessors and run-time checks", "[qconv]") {
  QConvParams p = params(8, 5, 5, 4, 3, 3, 2, 1);
  p.in_type = QType::U4;
  const std::vector<int8_t> w(4 * 8 * 9, 1);
  const std::vector<float> mult(4, 1.f), bias(4, 0.f);
  for (Isa isa : fgq::ops::supported_isas()) {
    auto k = fgq::ops::make_qconv(isa, p, w.data(), mult.data(), bias.data());
    CHECK(fgq::ops::qconv_isa(*k) == isa);
    CHECK(fgq::ops::qconv_params(*k).g.K == 4);
    CHECK(fgq::ops::qconv_macs(*k, 2) == int64_t(2) * 3 * 3 * 4 * 8 * 9);
    CHECK(fgq::ops::qconv_packed_bytes(*k) >= size_t(4 * 8 * 9));
    CHECK(fgq::ops::qconv_scratch_bytes(*k, 2) >= size_t(2 * 25 * 8));  // u4 unpacked
    std::vector<uint8_t> x(2 * 25 * 4, 0x11), y(2 * 9 * 4), r(2 * 9 * 4);
    CHECK_THROWS_AS(fgq::ops::qconv_run(*k, 1, x.data(), nullptr, y.data(), nullptr), fgq::Error);
    Bytes scratch(fgq::ops::qconv_scratch_bytes(*k, 2));
    CHECK_THROWS_AS(fgq::ops::qconv_run(*k, 0, x.data(), nullptr, y.data(), scratch.data()),
                    fgq::Error);
    CHECK_THROWS_AS(fgq::ops::qconv_run(*k, 1, x.data(), r.data(), y.data(), scratch.data()),
                    fgq::Error);
    CHECK_NOTHROW(fgq::ops::qconv_run(*k, 2, x.data(), nullptr, y.data(), scratch.data()));
  }
  // A u8 input needs no scratch on the u8 paths.
  p.in_type = QType::U8;
  auto k = fgq::ops::make_qconv(Isa::Scalar, p, w.data(), mult.data(), bias.data());
  CHECK(fgq::ops::qconv_scratch_bytes(*k, 4) == 0);
}
