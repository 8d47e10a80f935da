// Fully connected layers with Eigen. Batch-1 FC is a matrix-vector product bound by reading B,
// so large products are split over output columns (N) with TBB to use every core's bandwidth.
#include "ops/gemm.h"

#include "ops/eigen_impl.h"  // first: see the note there

#include <algorithm>

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include "fgq/error.h"

namespace fgq::ops {
namespace {

using detail::ConstMatMap;
using detail::MatMap;

constexpr double kParallelMacs = 1e6;  // below this one thread is faster than splitting
constexpr int kMinTileCols = 64;

void check(int M, int N, int K) {
  if (M <= 0 || N <= 0 || K <= 0) fail("gemm", "non-positive size");
}

// Y[:, n0:n1] = alpha * A * op(B)[:, n0:n1] + beta * C[:, n0:n1]
void gemm_cols(int M, int N, int K, const float* A, const float* B, bool trans_b, const float* C,
               bool c_is_row, float alpha, float beta, float* Y, int n0, int n1) {
  const int n = n1 - n0;
  ConstMatMap a(A, M, K, Eigen::OuterStride<>(K));
  MatMap y(Y + n0, M, n, Eigen::OuterStride<>(N));
  if (trans_b) {
    ConstMatMap b(B + static_cast<long>(n0) * K, n, K, Eigen::OuterStride<>(K));
    y.noalias() = a * b.transpose();
  } else {
    ConstMatMap b(B + n0, K, n, Eigen::OuterStride<>(N));
    y.noalias() = a * b;
  }
  if (alpha != 1.f) y *= alpha;
  if (!C || beta == 0.f) return;
  if (c_is_row) {
    Eigen::Map<const Eigen::RowVectorXf> c(C + n0, n);
    y.rowwise() += beta * c;
  } else {
    y += beta * ConstMatMap(C + n0, M, n, Eigen::OuterStride<>(N));
  }
}

}  // namespace

void gemm_f32(int M, int N, int K, const float* A, const float* B, bool trans_b, const float* C,
              bool c_is_row, float alpha, float beta, float* Y) {
  use_fixed_eigen_blocking();
  check(M, N, K);
  if (double(M) * N * K < kParallelMacs || N < 2 * kMinTileCols) {
    gemm_cols(M, N, K, A, B, trans_b, C, c_is_row, alpha, beta, Y, 0, N);
    return;
  }
  const int tile = std::max(kMinTileCols, (N + 7) / 8 / 16 * 16);
  const int tiles = (N + tile - 1) / tile;
  tbb::parallel_for(tbb::blocked_range<int>(0, tiles, 1), [&](const tbb::blocked_range<int>& r) {
    for (int t = r.begin(); t < r.end(); ++t)
      gemm_cols(M, N, K, A, B, trans_b, C, c_is_row, alpha, beta, Y, t * tile,
                std::min(N, (t + 1) * tile));
  });
}

void gemm_f32_naive(int M, int N, int K, const float* A, const float* B, bool trans_b,
                    const float* C, bool c_is_row, float alpha, float beta, float* Y) {
  check(M, N, K);
  for (int m = 0; m < M; ++m)
    for (int n = 0; n < N; ++n) {
      double acc = 0;  // double: the reference must not depend on summation order
      for (int k = 0; k < K; ++k)
        acc += double(A[static_cast<long>(m) * K + k]) *
               (trans_b ? B[static_cast<long>(n) * K + k] : B[static_cast<long>(k) * N + n]);
      double v = alpha * acc;
      if (C) v += double(beta) * (c_is_row ? C[n] : C[static_cast<long>(m) * N + n]);
      Y[static_cast<long>(m) * N + n] = static_cast<float>(v);
    }
}

}  // namespace fgq::ops
