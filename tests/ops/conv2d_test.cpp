#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include <tbb/global_control.h>
#include <tbb/parallel_invoke.h>
#include <tbb/task_arena.h>

#include "fgq/error.h"
#include "ops/conv2d.h"
#include "support/test_util.h"
#include "tests/ops/op_test_util.h"

using fgq::ops::Conv2dShape;
using fgq::test::conv_shape;
using fgq::test::random_floats;

namespace {

struct ConvCase {
  Conv2dShape s;
  bool bias, residual, relu;
};

std::string describe(const ConvCase& c) {
  return fgq::test::describe_conv(c.s) + (c.bias ? " bias" : "") +
         (c.residual ? " residual" : "") + (c.relu ? " relu" : "");
}

// conv2d_f32 against the double-accumulating naive loop: the largest error divided by the
// allowed one (<= 1 passes). FP32 GEMM sums in another order, so the error grows with the
// reduction depth; a wrong tap or offset gives errors of order one instead. No Catch2 macros
// here, so it can run on several threads at once.
double error_ratio(const ConvCase& c, uint32_t seed) {
  const auto& s = c.s;
  const size_t out = size_t(s.K) * s.OH() * s.OW();
  const auto x = random_floats(size_t(s.C) * s.H * s.W, seed);
  const auto w = random_floats(size_t(s.K) * s.C * s.KH * s.KW, seed + 1);
  const auto b = random_floats(s.K, seed + 2);
  const auto r = random_floats(out, seed + 3);
  const float* bias = c.bias ? b.data() : nullptr;
  const float* res = c.residual ? r.data() : nullptr;
  std::vector<float> got(out, NAN), want(out, NAN);
  fgq::ops::conv2d_f32(s, x.data(), w.data(), bias, res, c.relu, got.data());
  fgq::ops::conv2d_f32_naive(s, x.data(), w.data(), bias, res, c.relu, want.data());
  // |x|,|w| <= 1: partial sums grow like sqrt(depth), rounding error like eps per addition.
  const double tol = 1e-5 * std::sqrt(double(s.C) * s.KH * s.KW);
  double worst = 0;
  for (size_t i = 0; i < out; ++i) {
    const double e = std::fabs(double(got[i]) - want[i]);
    worst = std::max(worst, std::isnan(e) || (c.relu && got[i] < 0) ? HUGE_VAL : e);
  }
  return worst / tol;
}

void check_against_naive(const ConvCase& c, uint32_t seed) {
  INFO(describe(c));
  CHECK(error_ratio(c, seed) <= 1.0);
}

}  // namespace

TEST_CASE("conv2d: output size follows the ONNX formula") {
  Conv2dShape s = conv_shape(3, 224, 224, 64, 7, 2, 3);
  CHECK(s.OH() == 112);
  CHECK(s.OW() == 112);
  s = conv_shape(1, 7, 9, 1, 3, 1, 0);
  s.DH = 2, s.DW = 3;  // effective kernel 5 x 7
  CHECK(s.OH() == 3);
  CHECK(s.OW() == 3);
}

TEST_CASE("conv2d: small odd shapes match the naive loop") {
  uint32_t seed = 1;
  for (int C : {1, 3, 5, 17})
    for (int H : {1, 7, 13})
      for (int k : {1, 3, 7})
        for (int stride : {1, 2}) {
          const int pad = k / 2;
          if (H + 2 * pad < k) continue;
          for (int flags = 0; flags < 8; ++flags) {
            ConvCase c{conv_shape(C, H, H + 2, 5 + C % 4, k, stride, pad), bool(flags & 1),
                       bool(flags & 2), bool(flags & 4)};
            check_against_naive(c, seed += 7);
          }
        }
}

TEST_CASE("conv2d: 1x1 convolutions (direct GEMM, strided gather, padded)") {
  uint32_t seed = 100;
  for (int stride : {1, 2, 3})
    for (int pad : {0, 1}) {
      check_against_naive({conv_shape(17, 13, 11, 9, 1, stride, pad), true, true, true}, seed += 5);
      check_against_naive({conv_shape(64, 30, 30, 48, 1, stride, pad), true, false, false}, seed += 5);
    }
}

TEST_CASE("conv2d: asymmetric padding, rectangular kernels and strides, dilation") {
  Conv2dShape s = conv_shape(5, 13, 11, 7, 3, 1, 0);
  s.PT = 2, s.PL = 0, s.PB = 1, s.PR = 3;
  check_against_naive({s, true, true, false}, 1);
  s.KH = 3, s.KW = 5, s.SH = 2, s.SW = 1;
  check_against_naive({s, false, false, true}, 2);
  s = conv_shape(3, 13, 13, 4, 3, 1, 2);
  s.DH = s.DW = 2;  // dilated 3x3 with "same" padding
  CHECK(s.OH() == 13);
  check_against_naive({s, true, false, true}, 3);
  s.DH = 3, s.DW = 1, s.SH = 2, s.PT = 0, s.PB = 4;
  check_against_naive({s, true, true, true}, 4);
  // Padding larger than the kernel reach: whole rows and columns of zeros in the im2col matrix.
  s = conv_shape(2, 5, 4, 3, 3, 2, 0);
  s.PT = 4, s.PL = 5, s.PB = 3, s.PR = 4;
  check_against_naive({s, true, false, false}, 5);
}

TEST_CASE("conv2d: layers large enough to be split into tiles across threads") {
  // The tiling depends on the thread count, so pin it: 2 (the target machine), 3 (uneven) and 4.
  // Covers several column tiles of a 3x3 conv (tile edges inside output rows), output-channel
  // tiles with a short last one, a 1x1 direct GEMM with uneven column tiles and a 7x7 stem.
  tbb::global_control allow(tbb::global_control::max_allowed_parallelism, 4);
  for (int threads : {2, 3, 4}) {
    INFO(threads << " threads");
    tbb::task_arena arena(threads);
    arena.execute([&] {
      check_against_naive({conv_shape(64, 40, 37, 40, 3, 1, 1), true, true, true}, 11);
      check_against_naive({conv_shape(300, 7, 7, 100, 3, 1, 1), true, false, true}, 12);
      check_against_naive({conv_shape(96, 29, 31, 70, 1, 1, 0), false, true, true}, 13);
      check_against_naive({conv_shape(3, 64, 61, 16, 7, 2, 3), true, false, true}, 14);
      check_against_naive({conv_shape(128, 28, 28, 64, 3, 2, 1), true, false, false}, 15);
      check_against_naive({conv_shape(512, 14, 14, 200, 1, 2, 0), true, true, false}, 16);
    });
  }
}

TEST_CASE("conv2d: concurrent calls use separate scratch") {
  const ConvCase a{conv_shape(64, 40, 37, 40, 3, 1, 1), true, false, true};
  const ConvCase b{conv_shape(30, 21, 19, 50, 5, 2, 2), false, true, false};
  double ratio[4];
  tbb::parallel_invoke([&] { ratio[0] = error_ratio(a, 21); }, [&] { ratio[1] = error_ratio(b, 22); },
                       [&] { ratio[2] = error_ratio(a, 23); }, [&] { ratio[3] = error_ratio(b, 24); });
  for (double r : ratio) CHECK(r <= 1.0);
}

TEST_CASE("conv2d: invalid shapes are rejected with fgq::Error") {
  std::vector<float> buf(1000, 0.f);
  Conv2dShape s = conv_shape(1, 2, 2, 1, 3, 1, 0);  // kernel larger than the input
  CHECK_THROWS_AS(fgq::ops::conv2d_f32(s, buf.data(), buf.data(), nullptr, nullptr, false,
                                       buf.data()),
                  fgq::Error);
  s = conv_shape(1, 5, 5, 1, 3, 0, 0);  // zero stride
  CHECK_THROWS_WITH(fgq::ops::conv2d_f32_naive(s, buf.data(), buf.data(), nullptr, nullptr,
                                               false, buf.data()),
                    Catch::Contains("conv2d"));
}
