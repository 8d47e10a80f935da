// FP32 convolution as GEMM: y[K, N] = w[K, C*KH*KW] * col[C*KH*KW, N] with N = OH*OW.
// Builds with AVX-512 take ops/conv2d_avx512.cpp (own register-blocked kernel, whole batch per
// call); the Eigen path below (one image per call) serves every other build.
// The output is cut into (column tile x output-channel tile) tasks run by TBB; each task lowers
// its column tile into a thread-local scratch (im2col, skipped for 1x1 stride-1 unpadded convs
// whose input already is the matrix), multiplies with Eigen (single-threaded) and applies
// bias + residual + ReLU while the tile is still in cache.
#include "ops/conv2d.h"

#include "ops/eigen_impl.h"  // first: see the note there

#include <algorithm>
#include <vector>

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include "fgq/error.h"
#include "ops/conv2d_paths.h"
#include "ops/im2col_impl.h"

namespace fgq::ops {
namespace {

using detail::ConstMatMap;
using detail::MatMap;

// Tuning constants, measured on the 53 ResNet-50 conv shapes at batch 1 (2 cores, AVX-512).
constexpr long kScratchFloats = 256 * 1024;  // im2col tile budget: 1 MiB, about one L2
constexpr int kWideCols = 256;                // per-thread positions worth splitting spatially
constexpr double kSerialMacs = 2e6;           // below this TBB overhead outweighs the gain

int round_up(int v, int m) { return (v + m - 1) / m * m; }
int ceil_div(long a, long b) { return static_cast<int>((a + b - 1) / b); }

struct Tiling {
  int col_tile, col_tiles;  // spatial positions per task
  int k_tile, k_tiles;      // output channels per task
};

// One task per thread measured fastest on an idle machine: every extra tile re-packs its share
// of the weights (or of the im2col matrix) inside Eigen's GEMM.
Tiling plan_tiles(int K, long depth, int N, bool needs_scratch, long macs) {
  const int threads = macs < kSerialMacs ? 1 : tbb::this_task_arena::max_concurrency();
  int col_tiles = 1, k_tiles = 1;
  if (N >= threads * kWideCols) {
    // Wide (early) layers: split spatial positions, in tiles whose im2col fits the budget.
    const int fit = needs_scratch ? ceil_div(depth * N, kScratchFloats) : 1;
    col_tiles = round_up(std::max(threads, fit), threads);
  } else {
    // Narrow (deep) layers: split output channels, each task lowering all N positions.
    k_tiles = std::max(1, std::min(threads, K / 16));
  }
  const int col_tile = std::min(N, round_up(ceil_div(N, col_tiles), 16));
  const int k_tile = std::min(K, round_up(ceil_div(K, k_tiles), 16));
  return {col_tile, ceil_div(N, col_tile), k_tile, ceil_div(K, k_tile)};
}

// bias + residual + ReLU over rows [k0, k1) and columns [n0, n1) of y[K, N].
void epilogue(const float* bias, const float* residual, bool relu, int N, int k0, int k1, int n0,
              int n1, float* y) {
  if (!bias && !residual && !relu) return;
  for (int k = k0; k < k1; ++k) {
    float* row = y + static_cast<long>(k) * N;
    const float* res = residual ? residual + static_cast<long>(k) * N : nullptr;
    const float b = bias ? bias[k] : 0.f;
    for (int j = n0; j < n1; ++j) {
      float v = row[j] + b;
      if (res) v += res[j];
      row[j] = relu ? std::max(v, 0.f) : v;
    }
  }
}

float* scratch(long floats) {
  // Grows to the largest tile a thread has seen, then never reallocates. Nested TBB use is safe:
  // a task never waits between filling the scratch and its GEMM, so a thread cannot pick up
  // another conv task (which would overwrite it) in between.
  thread_local std::vector<float> buf;
  if (static_cast<long>(buf.size()) < floats) buf.resize(floats);
  return buf.data();
}

void check_shape(const Conv2dShape& s) {
  if (s.C <= 0 || s.H <= 0 || s.W <= 0 || s.K <= 0 || s.KH <= 0 || s.KW <= 0 || s.SH <= 0 ||
      s.SW <= 0 || s.DH <= 0 || s.DW <= 0 || s.PT < 0 || s.PL < 0 || s.PB < 0 || s.PR < 0)
    fail("conv2d", "invalid shape (non-positive size, stride or dilation, or negative pad)");
  if (s.OH() <= 0 || s.OW() <= 0) fail("conv2d", "kernel larger than the padded input");
}

}  // namespace

namespace detail {

void conv2d_f32_eigen(const Conv2dShape& s, const float* x, const float* w, const float* bias,
                      const float* residual, bool relu, float* y) {
  use_fixed_eigen_blocking();
  const int N = s.OH() * s.OW();
  const long depth = static_cast<long>(s.C) * s.KH * s.KW;
  const bool direct = s.KH == 1 && s.KW == 1 && s.SH == 1 && s.SW == 1 && s.PT == 0 &&
                      s.PL == 0 && s.PB == 0 && s.PR == 0;
  const Tiling t = plan_tiles(s.K, depth, N, !direct, static_cast<long>(s.K) * depth * N);

  auto run = [&](const tbb::blocked_range<int>& r) {
    for (int task = r.begin(); task < r.end(); ++task) {
      const int ct = task / t.k_tiles, kt = task % t.k_tiles;
      const int n0 = ct * t.col_tile, n1 = std::min(N, n0 + t.col_tile);
      const int k0 = kt * t.k_tile, k1 = std::min(s.K, k0 + t.k_tile);
      const float* b_ptr = x + n0;  // 1x1 stride 1: the input is already the [C, N] matrix
      long b_stride = N;
      if (!direct) {
        // Output-channel tiles of one column tile each lower it again: that only happens for
        // narrow layers (N small), where im2col is cheap next to the GEMM.
        float* col = scratch(depth * (n1 - n0));
        detail::im2col_tile(s, x, n0, n1, col);
        b_ptr = col;
        b_stride = n1 - n0;
      }
      ConstMatMap A(w + k0 * depth, k1 - k0, depth, Eigen::OuterStride<>(depth));
      ConstMatMap B(b_ptr, depth, n1 - n0, Eigen::OuterStride<>(b_stride));
      MatMap Y(y + static_cast<long>(k0) * N + n0, k1 - k0, n1 - n0, Eigen::OuterStride<>(N));
      Y.noalias() = A * B;
      epilogue(bias, residual, relu, N, k0, k1, n0, n1, y);
    }
  };
  const int tasks = t.col_tiles * t.k_tiles;
  if (tasks == 1)
    run(tbb::blocked_range<int>(0, 1));
  else
    tbb::parallel_for(tbb::blocked_range<int>(0, tasks, 1), run, tbb::simple_partitioner());
}

}  // namespace detail

void conv2d_f32(const Conv2dShape& s, const float* x, const float* w, const float* bias,
                const float* residual, bool relu, float* y) {
  check_shape(s);
  const long y_img = static_cast<long>(s.K) * s.OH() * s.OW();
  if (!detail::conv2d_f32_avx512(s, 1, x, 0, w, bias, residual, relu, y, y_img))
    detail::conv2d_f32_eigen(s, x, w, bias, residual, relu, y);
}

void conv2d_f32_batch(const Conv2dShape& s, int batch, const float* x, long x_stride,
                      const float* w, const float* bias, const float* residual, bool relu,
                      float* y, long y_stride) {
  check_shape(s);
  if (batch < 1) fail("conv2d", "batch must be >= 1");
  if (detail::conv2d_f32_avx512(s, batch, x, x_stride, w, bias, residual, relu, y, y_stride))
    return;
  // Eigen path: one call per image, images in parallel (each call splits further if it pays).
  use_fixed_eigen_blocking();  // here, before the threads (each call also makes sure)
  auto image = [&](int b) {
    detail::conv2d_f32_eigen(s, x + b * x_stride, w, bias,
                             residual ? residual + b * y_stride : nullptr, relu, y + b * y_stride);
  };
  if (batch == 1)
    image(0);
  else
    tbb::parallel_for(0, batch, image);
}

void conv2d_f32_naive(const Conv2dShape& s, const float* x, const float* w, const float* bias,
                      const float* residual, bool relu, float* y) {
  check_shape(s);
  const int OH = s.OH(), OW = s.OW();
  for (int k = 0; k < s.K; ++k)
    for (int oh = 0; oh < OH; ++oh)
      for (int ow = 0; ow < OW; ++ow) {
        double acc = bias ? bias[k] : 0.0;  // double: the reference must not depend on order
        for (int c = 0; c < s.C; ++c)
          for (int kh = 0; kh < s.KH; ++kh)
            for (int kw = 0; kw < s.KW; ++kw) {
              const int ih = oh * s.SH - s.PT + kh * s.DH;
              const int iw = ow * s.SW - s.PL + kw * s.DW;
              if (ih < 0 || ih >= s.H || iw < 0 || iw >= s.W) continue;
              acc += double(x[(static_cast<long>(c) * s.H + ih) * s.W + iw]) *
                     w[((static_cast<long>(k) * s.C + c) * s.KH + kh) * s.KW + kw];
            }
        const long o = (static_cast<long>(k) * OH + oh) * OW + ow;
        if (residual) acc += residual[o];
        y[o] = relu ? std::max(float(acc), 0.f) : float(acc);
      }
}

}  // namespace fgq::ops
