// conv2d_f32_batch (whole batch per call) and the two paths behind conv2d_f32 (AVX-512 kernel,
// Eigen GEMM) against the naive loop, image by image. The AVX-512 path packs columns of several
// images into one 32-wide register block, cuts the depth into chunks of whole channels, lowers
// strided convs with masked loads and shares lowered panels between output-channel tasks: the
// shapes below are picked to cross each of those edges.
#include <sys/mman.h>
#include <tbb/global_control.h>
#include <tbb/parallel_invoke.h>
#include <tbb/task_arena.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "fgq/error.h"
#include "ops/conv2d.h"
#include "ops/conv2d_paths.h"
#include "support/test_util.h"
#include "tests/ops/op_test_util.h"

using fgq::ops::Conv2dShape;
using fgq::test::conv_shape;
using fgq::test::random_floats;

namespace {

enum class Path { Public, Avx512, Eigen };

struct BatchCase {
  Conv2dShape s;
  int batch = 1;
  long x_pad = 0, y_pad = 0;  // extra floats between images (as for one group of a grouped conv)
  bool bias = true, residual = false, relu = false;
};

std::string describe(const BatchCase& c) {
  return fgq::test::describe_conv(c.s) + " batch " +
         std::to_string(c.batch) + " pads " + std::to_string(c.x_pad) + "," +
         std::to_string(c.y_pad) + (c.bias ? " bias" : "") + (c.residual ? " residual" : "") +
         (c.relu ? " relu" : "");
}

// Largest error over the batch divided by the allowed one (<= 1 passes); the floats between
// images of y must stay untouched (HUGE_VAL otherwise). No Catch2 macros: callable from threads.
double batch_error_ratio(const BatchCase& c, Path path, uint32_t seed) {
  const auto& s = c.s;
  const long x_img = long(s.C) * s.H * s.W, y_img = long(s.K) * s.OH() * s.OW();
  const long xs = x_img + c.x_pad, ys = y_img + c.y_pad;
  const auto x = random_floats(size_t(xs * c.batch), seed);
  const auto w = random_floats(size_t(s.K) * s.C * s.KH * s.KW, seed + 1);
  const auto b = random_floats(s.K, seed + 2);
  const auto r = random_floats(size_t(ys * c.batch), seed + 3);
  const float* bias = c.bias ? b.data() : nullptr;
  const float* res = c.residual ? r.data() : nullptr;
  constexpr float kSentinel = 12345.f;
  std::vector<float> got(size_t(ys * c.batch), kSentinel);
  switch (path) {
    case Path::Public:
      fgq::ops::conv2d_f32_batch(s, c.batch, x.data(), xs, w.data(), bias, res, c.relu, got.data(),
                                 ys);
      break;
    case Path::Avx512:
      if (!fgq::ops::detail::conv2d_f32_avx512(s, c.batch, x.data(), xs, w.data(), bias, res,
                                               c.relu, got.data(), ys))
        return HUGE_VAL;
      break;
    case Path::Eigen:
      for (int i = 0; i < c.batch; ++i)
        fgq::ops::detail::conv2d_f32_eigen(s, x.data() + i * xs, w.data(), bias,
                                           res ? res + i * ys : nullptr, c.relu,
                                           got.data() + i * ys);
      break;
  }
  const double tol = 1e-5 * std::sqrt(double(s.C) * s.KH * s.KW);
  double worst = 0;
  std::vector<float> want(static_cast<size_t>(y_img));
  for (int i = 0; i < c.batch; ++i) {
    fgq::ops::conv2d_f32_naive(s, x.data() + i * xs, w.data(), bias, res ? res + i * ys : nullptr,
                               c.relu, want.data());
    for (long k = 0; k < y_img; ++k) {
      const float g = got[size_t(i * ys + k)];
      const double e = std::fabs(double(g) - want[size_t(k)]);
      worst = std::max(worst, std::isnan(e) || (c.relu && g < 0) ? HUGE_VAL : e);
    }
    for (long k = y_img; k < ys; ++k)
      if (got[size_t(i * ys + k)] != kSentinel) worst = HUGE_VAL;
  }
  return worst / tol;
}

std::vector<Path> paths() {
  std::vector<Path> p{Path::Public, Path::Eigen};
  if (fgq::ops::detail::conv2d_avx512_available()) p.push_back(Path::Avx512);
  return p;
}

const char* name(Path p) {
  return p == Path::Public ? "public" : p == Path::Avx512 ? "avx512" : "eigen";
}

void check_all_paths(const BatchCase& c, uint32_t seed) {
  for (Path p : paths()) {
    INFO(describe(c) << " [" << name(p) << "]");
    CHECK(batch_error_ratio(c, p, seed) <= 1.0);
  }
}

BatchCase bcase(Conv2dShape s, int batch, bool bias = true, bool residual = false,
                bool relu = false) {
  BatchCase c;
  c.s = s, c.batch = batch, c.bias = bias, c.residual = residual, c.relu = relu;
  return c;
}

}  // namespace

TEST_CASE("conv2d batch: register blocks spanning several images") {
  uint32_t seed = 500;
  // N = 9 positions: one 32-wide block holds parts of 4-5 images.
  check_all_paths(bcase(conv_shape(5, 3, 3, 7, 3, 1, 1), 11, true, true, true), seed += 7);
  // N = 1 (1x1 output): 32 images per block; 1x1 direct path on one-pixel images.
  check_all_paths(bcase(conv_shape(6, 1, 1, 3, 1, 1, 0), 40, true, true, false), seed += 7);
  // N = 49 (ResNet's 7x7 stage): blocks straddle image edges at every offset.
  check_all_paths(bcase(conv_shape(40, 7, 7, 20, 3, 1, 1), 5, true, true, true), seed += 7);
  check_all_paths(bcase(conv_shape(33, 7, 7, 17, 1, 1, 0), 3, false, false, true), seed += 7);
  // K from 1 to 9: partial blocks of 8 output channels.
  for (int K : {1, 2, 7, 8, 9})
    check_all_paths(bcase(conv_shape(3, 5, 6, K, 3, 1, 1), 2, K % 2 == 1, K > 4, true), seed += 7);
  // A single image goes through the same kernels.
  check_all_paths(bcase(conv_shape(17, 13, 11, 9, 3, 1, 1), 1, true, true, true), seed += 7);
}

TEST_CASE("conv2d batch: strided, padded and dilated lowering") {
  uint32_t seed = 600;
  for (int stride : {1, 2, 3})  // 1: masked loads, 2: loads + even-lane permute, 3: gathers
    for (int k : {1, 3, 5})
      for (int pad : {0, 1, 2}) {
        if (pad >= k && k > 1) continue;
        check_all_paths(bcase(conv_shape(4, 13, 11, 6, k, stride, pad), 3, true, pad == 1, k == 3),
                        seed += 3);
      }
  // Rows longer than 32 output positions, with padding on both ends (two halves per row).
  check_all_paths(bcase(conv_shape(3, 9, 75, 5, 3, 1, 1), 2, true, true, true), seed += 3);
  check_all_paths(bcase(conv_shape(3, 9, 150, 5, 3, 2, 1), 2, true, false, true), seed += 3);
  // Asymmetric pads, rectangular kernel, dilation.
  Conv2dShape s = conv_shape(5, 13, 11, 7, 3, 1, 0);
  s.PT = 2, s.PL = 0, s.PB = 1, s.PR = 3, s.KW = 5, s.SH = 2;
  check_all_paths(bcase(s, 3, true, true, false), seed += 3);
  s = conv_shape(3, 13, 13, 4, 3, 1, 2);
  s.DH = s.DW = 2;
  check_all_paths(bcase(s, 2, true, false, true), seed += 3);
  s.DH = 3, s.DW = 1, s.SH = 2, s.SW = 2, s.PT = 0, s.PB = 4;
  check_all_paths(bcase(s, 2, true, true, true), seed += 3);
  // Padding wider than the kernel's reach: whole padding rows and columns.
  s = conv_shape(2, 5, 4, 3, 3, 2, 0);
  s.PT = 4, s.PL = 5, s.PB = 3, s.PR = 4;
  check_all_paths(bcase(s, 3, true, false, false), seed += 3);
}

TEST_CASE("conv2d batch: depth cut into chunks of whole channels") {
  uint32_t seed = 700;
  // 3x3: 56 channels per chunk, 130 = 44 + 44 + 42. 1x1: 1100 channels = 367 + 367 + 366.
  check_all_paths(bcase(conv_shape(130, 6, 5, 12, 3, 1, 1), 3, true, true, true), seed += 5);
  check_all_paths(bcase(conv_shape(1100, 4, 4, 10, 1, 1, 0), 2, true, true, false), seed += 5);
  // 7x7 taps: 10 channels per chunk.
  check_all_paths(bcase(conv_shape(23, 9, 9, 8, 7, 2, 3), 2, true, false, true), seed += 5);
  // A kernel with more taps than a chunk's depth: one channel per chunk.
  check_all_paths(bcase(conv_shape(3, 25, 25, 4, 23, 1, 0), 2, true, false, false), seed += 5);
}

TEST_CASE("conv2d batch: images with gaps between them (one group of a grouped conv)") {
  BatchCase c = bcase(conv_shape(6, 7, 9, 10, 3, 1, 1), 3, true, true, true);
  c.x_pad = 6 * 7 * 9 * 2 + 5;  // the other groups' channels, plus an odd offset
  c.y_pad = 10 * 7 * 9 + 3;
  check_all_paths(c, 800);
  c.s = conv_shape(6, 7, 9, 4, 1, 1, 0);  // direct path
  c.y_pad = 7;
  check_all_paths(c, 801);
}

TEST_CASE("conv2d batch: task splits on 1-4 threads (wide, deep, shared panels)") {
  // Wide: columns split. Deep (output channels > columns): channels split after the panels are
  // lowered once and shared; a chunked deep layer; a deep layer too big to share its panels
  // (each task lowers its own).
  tbb::global_control allow(tbb::global_control::max_allowed_parallelism, 4);
  const BatchCase cases[] = {
      bcase(conv_shape(16, 30, 31, 24, 3, 1, 1), 3, true, true, true),
      bcase(conv_shape(64, 7, 7, 136, 3, 1, 1), 2, true, true, true),
      bcase(conv_shape(600, 4, 4, 72, 1, 1, 0), 3, true, false, true),
      bcase(conv_shape(129, 6, 6, 70, 3, 2, 1), 4, false, true, false),
      bcase(conv_shape(131100, 1, 1, 40, 1, 1, 0), 2, true, true, true),
  };
  for (int threads : {1, 2, 3, 4}) {
    tbb::task_arena arena(threads);
    arena.execute([&] {
      uint32_t seed = 900;
      for (const BatchCase& c : cases) {
        for (Path p : paths()) {
          if (p == Path::Eigen && c.s.C > 1000) continue;  // covered above; slow here
          INFO(threads << " threads: " << describe(c) << " [" << name(p) << "]");
          CHECK(batch_error_ratio(c, p, seed) <= 1.0);
        }
        seed += 11;
      }
    });
  }
}

TEST_CASE("conv2d batch: concurrent calls (nested in TBB tasks) keep their panels apart") {
  // Deep layers lower into a buffer of the calling thread that the call's tasks share: calls
  // running at once from TBB tasks, as the executor's grouped convs do, must not mix them up.
  tbb::global_control allow(tbb::global_control::max_allowed_parallelism, 4);
  const BatchCase deep = bcase(conv_shape(64, 7, 7, 136, 3, 1, 1), 2, true, true, true);
  const BatchCase deep2 = bcase(conv_shape(129, 6, 6, 70, 3, 2, 1), 4, false, true, false);
  const BatchCase wide = bcase(conv_shape(16, 30, 31, 24, 3, 1, 1), 3, true, true, true);
  double ratio[6];
  tbb::task_arena arena(3);
  arena.execute([&] {
    tbb::parallel_invoke([&] { ratio[0] = batch_error_ratio(deep, Path::Public, 41); },
                         [&] { ratio[1] = batch_error_ratio(deep2, Path::Public, 42); },
                         [&] { ratio[2] = batch_error_ratio(wide, Path::Public, 43); },
                         [&] { ratio[3] = batch_error_ratio(deep, Path::Public, 44); },
                         [&] { ratio[4] = batch_error_ratio(deep2, Path::Public, 45); },
                         [&] { ratio[5] = batch_error_ratio(wide, Path::Public, 46); });
  });
  for (double r : ratio) CHECK(r <= 1.0);
}

namespace {

// `n` floats ending exactly at a PROT_NONE page: reading one float past the end faults.
class GuardedFloats {
 public:
  explicit GuardedFloats(size_t n) : n_(n) {
    const size_t page = size_t(sysconf(_SC_PAGESIZE));
    data_bytes_ = (n * sizeof(float) + page - 1) / page * page;
    total_ = data_bytes_ + page;
    void* m = mmap(nullptr, total_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(m != MAP_FAILED);
    base_ = static_cast<char*>(m);
    REQUIRE(mprotect(base_ + data_bytes_, page, PROT_NONE) == 0);
  }
  ~GuardedFloats() { munmap(base_, total_); }
  float* data() { return reinterpret_cast<float*>(base_ + data_bytes_) - n_; }

 private:
  size_t n_, data_bytes_ = 0, total_ = 0;
  char* base_ = nullptr;
};

}  // namespace

TEST_CASE("conv2d batch: nothing is read past the input, weights or residual") {
  // Masked loads may start before a row, but must not touch memory past the buffers' ends;
  // a guard page right after each buffer turns an over-read into a crash.
  uint32_t seed = 1000;
  for (const auto& [s, batch] : {std::pair{conv_shape(5, 9, 13, 9, 3, 1, 1), 3},      // masked loads
                                 std::pair{conv_shape(5, 9, 13, 9, 3, 2, 1), 3},      // stride 2
                                 std::pair{conv_shape(6, 9, 31, 7, 1, 2, 0), 2},      // 1x1 stride 2
                                 std::pair{conv_shape(5, 9, 13, 9, 1, 1, 0), 3},      // 1x1 direct
                                 std::pair{conv_shape(4, 10, 11, 3, 3, 3, 0), 2},     // gathers
                                 std::pair{conv_shape(40, 7, 7, 70, 3, 1, 1), 2}}) {  // deep
    INFO(describe(bcase(s, batch)));
    const long xi = long(s.C) * s.H * s.W, yi = long(s.K) * s.OH() * s.OW();
    GuardedFloats x(size_t(xi * batch)), w(size_t(s.K) * s.C * s.KH * s.KW), r(size_t(yi * batch));
    const auto xv = random_floats(size_t(xi * batch), seed++);
    const auto wv = random_floats(size_t(s.K) * s.C * s.KH * s.KW, seed++);
    const auto rv = random_floats(size_t(yi * batch), seed++);
    std::copy(xv.begin(), xv.end(), x.data());
    std::copy(wv.begin(), wv.end(), w.data());
    std::copy(rv.begin(), rv.end(), r.data());
    std::vector<float> got(static_cast<size_t>(yi * batch)), want(static_cast<size_t>(yi));
    fgq::ops::conv2d_f32_batch(s, batch, x.data(), xi, w.data(), nullptr, r.data(), true,
                               got.data(), yi);
    double worst = 0;
    for (int i = 0; i < batch; ++i) {
      fgq::ops::conv2d_f32_naive(s, x.data() + i * xi, w.data(), nullptr, r.data() + i * yi, true,
                                 want.data());
      for (long k = 0; k < yi; ++k)
        worst = std::max(worst, std::fabs(double(got[size_t(i * yi + k)]) - want[size_t(k)]));
    }
    CHECK(worst <= 1e-5 * std::sqrt(double(s.C) * s.KH * s.KW));
  }
}

TEST_CASE("conv2d batch: batch results equal one call per image, bit for bit") {
  // Every output is one dot product over the same chunks in the same order, wherever its column
  // lands in a register block: batching must not change a single bit.
  const Conv2dShape s = conv_shape(20, 7, 7, 16, 3, 1, 1);
  const int batch = 5;
  const long xi = 20L * 49, yi = 16L * 49;
  const auto x = random_floats(size_t(xi * batch), 31);
  const auto w = random_floats(size_t(16 * 20 * 9), 32);
  const auto b = random_floats(16, 33);
  std::vector<float> all(size_t(yi * batch)), one(size_t(yi * batch));
  fgq::ops::conv2d_f32_batch(s, batch, x.data(), xi, w.data(), b.data(), nullptr, true, all.data(),
                             yi);
  for (int i = 0; i < batch; ++i)
    fgq::ops::conv2d_f32(s, x.data() + i * xi, w.data(), b.data(), nullptr, true,
                         one.data() + i * yi);
  CHECK(all == one);
}

TEST_CASE("conv2d batch: batch below 1 is rejected") {
  std::vector<float> buf(100, 0.f);
  CHECK_THROWS_AS(fgq::ops::conv2d_f32_batch(conv_shape(1, 3, 3, 1, 1, 1, 0), 0, buf.data(), 9,
                                             buf.data(), nullptr, nullptr, false, buf.data(), 9),
                  fgq::Error);
}
