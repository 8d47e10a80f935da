// Eigen first: see ops/eigen_impl.h for the GCC 12 warning it silences.
#include "ops/eigen_impl.h"

#include "quant/gptq.h"

#include <Eigen/Cholesky>
#include <algorithm>
#include <cmath>

#include <tbb/enumerable_thread_specific.h>
#include <tbb/parallel_for.h>

#include "graph/error.h"

namespace fgq {

namespace {

using MatF = Eigen::MatrixXf;
using MatD = Eigen::MatrixXd;
using RowMatF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

constexpr int64_t kChunk = 2048;  // patches per rank update
constexpr int64_t kBlock = 128;   // columns per lazy GPTQ update

// Column q of the patch matrix: the patch at sampled output position p.
void gather_patch(const float* x, const PatchWindow& w, int64_t p, float* col) {
  const int64_t per_img = w.OH * w.OW;
  const int64_t b = p / per_img, oh = (p % per_img) / w.OW, ow = p % w.OW;
  const float* img = x + b * w.C * w.H * w.W;
  int64_t j = 0;
  for (int64_t c = 0; c < w.C; ++c)
    for (int64_t r = 0; r < w.KH; ++r) {
      const int64_t ih = oh * w.SH - w.PT + r * w.DH;
      for (int64_t s = 0; s < w.KW; ++s, ++j) {
        const int64_t iw = ow * w.SW - w.PL + s * w.DW;
        col[j] = ih >= 0 && ih < w.H && iw >= 0 && iw < w.W ? img[(c * w.H + ih) * w.W + iw] : 0.f;
      }
    }
}

}  // namespace

void accumulate_hessian(LayerHessian& h, const float* x, int64_t batch, const PatchWindow& win,
                        int64_t max_samples) {
  const int64_t d = win.C * win.KH * win.KW;
  if (h.d == 0) {
    h.d = d;
    h.h.assign(size_t(d * d), 0.f);
  }
  if (h.d != d) fail("gptq", "patch size changed between calibration batches");
  const int64_t positions = batch * win.OH * win.OW;
  const int64_t step = std::max<int64_t>(1, (positions + max_samples - 1) / std::max<int64_t>(1, max_samples));
  const int64_t n = (positions + step - 1) / step;
  const int64_t chunks = (n + kChunk - 1) / kChunk;

  tbb::enumerable_thread_specific<MatF> partial([d] { return MatF::Zero(d, d); });
  tbb::parallel_for(int64_t(0), chunks, [&](int64_t ci) {
    const int64_t q0 = ci * kChunk, q1 = std::min(n, q0 + kChunk);
    MatF m(d, q1 - q0);
    for (int64_t q = q0; q < q1; ++q) gather_patch(x, win, q * step, m.col(q - q0).data());
    partial.local().selfadjointView<Eigen::Lower>().rankUpdate(m);
  });
  Eigen::Map<MatF> H(h.h.data(), d, d);
  for (const MatF& p : partial) H.triangularView<Eigen::Lower>() += p;
  H.triangularView<Eigen::StrictlyUpper>() = H.transpose();
  h.samples += n;
}

TernaryWeights gptq_ternarize(const float* w, const Shape& shape, int group, Threshold method,
                              const LayerHessian& hess, double damp) {
  if (group < 1) fail("gptq", "group size must be >= 1, got " + std::to_string(group));
  const bool fc = shape.size() == 2;
  if (!fc && shape.size() != 4) fail("gptq", "weights must be [K, C] or [K, C, KH, KW]");
  const int64_t K = shape[0], C = shape[1], KH = fc ? 1 : shape[2], KW = fc ? 1 : shape[3];
  const int64_t d = C * KH * KW, G = (C + group - 1) / group, RS = KH * KW;
  if (hess.d != d || hess.samples == 0) return ternarize(w, shape, group, method);

  // Process columns group by group: order (r, s, c), so an FGQ group is a contiguous range.
  std::vector<int64_t> perm(d);
  for (int64_t rs = 0, a = 0; rs < RS; ++rs)
    for (int64_t c = 0; c < C; ++c) perm[a++] = c * RS + rs;

  MatD H(d, d);
  for (int64_t a = 0; a < d; ++a)
    for (int64_t b = 0; b < d; ++b) H(a, b) = hess.h[size_t(perm[a] * d + perm[b])];
  RowMatF W(K, d);
  for (int64_t k = 0; k < K; ++k)
    for (int64_t a = 0; a < d; ++a) W(k, a) = w[k * d + perm[a]];
  // Inputs that never fire carry no output error: their weights are free, so zero them.
  for (int64_t a = 0; a < d; ++a)
    if (H(a, a) <= 0) {
      H(a, a) = 1;
      W.col(a).setZero();
    }

  // U = upper Cholesky factor of H^-1: row a holds the error propagation of column a.
  RowMatF U;
  double lambda = damp * H.diagonal().mean();
  for (int attempt = 0;; ++attempt) {
    MatD Hd = H;
    Hd.diagonal().array() += lambda;
    Eigen::LLT<MatD> llt(Hd);
    if (llt.info() == Eigen::Success) {
      MatD Hinv = llt.solve(MatD::Identity(d, d));
      Eigen::LLT<MatD> inv(Hinv);
      if (inv.info() == Eigen::Success) {
        U = MatD(inv.matrixU()).cast<float>();
        break;
      }
    }
    if (attempt == 4) return ternarize(w, shape, group, method);
    lambda *= 10;
  }

  TernaryWeights tw;
  tw.shape = {K, C, KH, KW};
  tw.group = group;
  tw.t.assign(size_t(K * d), 0);
  tw.alpha.assign(size_t(K * G * RS), 0.f);

  // Group boundaries in permuted order.
  std::vector<int64_t> starts;
  for (int64_t rs = 0; rs < RS; ++rs)
    for (int64_t c = 0; c < C; c += group) starts.push_back(rs * C + c);
  starts.push_back(d);

  size_t gi = 0;
  while (gi + 1 < starts.size()) {
    const int64_t b0 = starts[gi];
    size_t ge = gi + 1;
    while (ge + 1 < starts.size() && starts[ge] - b0 < kBlock) ++ge;
    const int64_t b1 = starts[ge];
    RowMatF err(K, b1 - b0);
    tbb::parallel_for(int64_t(0), K, [&](int64_t k) {
      float* row = W.row(k).data();
      for (size_t g = gi; g < ge; ++g) {
        const int64_t g0 = starts[g], g1 = starts[g + 1];
        const float alpha = ternarize_group(row + g0, int(g1 - g0), method).alpha;
        const int64_t rs = g0 / C, gc = (g0 % C) / group;
        tw.alpha[size_t((k * G + gc) * RS + rs)] = alpha;
        for (int64_t a = g0; a < g1; ++a) {
          const float v = row[a];
          const int8_t t = alpha > 0 && std::fabs(v) > 0.5f * alpha ? (v > 0 ? 1 : -1) : 0;
          tw.t[size_t(k * d + perm[a])] = t;
          const float e = (v - alpha * t) / U(a, a);
          for (int64_t a2 = a + 1; a2 < b1; ++a2) row[a2] -= e * U(a, a2);
          err(k, a - b0) = e;
        }
      }
    });
    if (b1 < d) W.rightCols(d - b1).noalias() -= err * U.block(b0, b1, b1 - b0, d - b1);
    gi = ge;
  }
  return tw;
}

}  // namespace fgq
