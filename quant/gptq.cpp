#include "third_party/eigen_core.h"  // first: see the note there

#include "quant/gptq.h"

#include <Eigen/Cholesky>
#include <algorithm>
#include <cmath>

#include <tbb/parallel_for.h>

#include "graph/error.h"

namespace fgq {

namespace {

using MatF = Eigen::MatrixXf;
using RowMatF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

constexpr int64_t kChunk = 1024;   // patches per rank update
constexpr int64_t kPartials = 4;   // partial Hessians (balance over threads vs memory: d^2 each)
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

// U upper triangular with (H + lambda I)^-1 = U^T U, given R = J H J (J reverses the index):
// if R + lambda I = L L^T then H^-1 = J L^-T L^-1 J = U^T U with U = J L^-1 J. One Cholesky and
// one triangular inverse, instead of inverting H and factoring the inverse.
bool upper_inverse_factor(const MatF& R, float lambda, RowMatF& U) {
  const int64_t d = R.rows();
  MatF Rd = R;
  Rd.diagonal().array() += lambda;
  Eigen::LLT<MatF> llt(Rd);
  if (llt.info() != Eigen::Success) return false;
  // L^-1 column block by column block: block [j0, j1) only involves rows >= j0. Row-major, so
  // that U = J L^-1 J is its storage reversed.
  RowMatF Linv = RowMatF::Zero(d, d);
  const int64_t blocks = (d + kBlock - 1) / kBlock;
  tbb::parallel_for(int64_t(0), blocks, [&](int64_t bi) {
    const int64_t j0 = bi * kBlock, n = std::min(kBlock, d - j0);
    auto X = Linv.block(j0, j0, d - j0, n);
    X.topRows(n).setIdentity();
    llt.matrixL().nestedExpression().bottomRightCorner(d - j0, d - j0)
        .triangularView<Eigen::Lower>().solveInPlace(X);
  });
  if (!Linv.allFinite()) return false;
  U.resize(d, d);
  std::reverse_copy(Linv.data(), Linv.data() + d * d, U.data());
  return true;
}

}  // namespace

void accumulate_hessian(LayerHessian& h, const float* x, int64_t batch, const PatchWindow& win,
                        int64_t max_samples) {
  use_fixed_eigen_blocking();
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

  // A fixed number of partial sums over fixed runs of chunks, added in a fixed order: the same
  // H (to the last bit) whatever the thread count or schedule, so quantization is reproducible.
  const int64_t parts = std::min(kPartials, chunks);
  std::vector<MatF> partial(static_cast<size_t>(parts));
  tbb::parallel_for(int64_t(0), parts, [&](int64_t pi) {
    MatF& acc = partial[size_t(pi)];
    acc = MatF::Zero(d, d);
    MatF m;
    for (int64_t ci = pi * chunks / parts; ci < (pi + 1) * chunks / parts; ++ci) {
      const int64_t q0 = ci * kChunk, q1 = std::min(n, q0 + kChunk);
      m.resize(d, q1 - q0);
      for (int64_t q = q0; q < q1; ++q) gather_patch(x, win, q * step, m.col(q - q0).data());
      acc.selfadjointView<Eigen::Lower>().rankUpdate(m);
    }
  });
  // Sum the partial lower triangles and mirror them, column by column.
  Eigen::Map<MatF> H(h.h.data(), d, d);
  tbb::parallel_for(int64_t(0), d, [&](int64_t j) {
    for (const MatF& p : partial) H.col(j).tail(d - j) += p.col(j).tail(d - j);
  });
  tbb::parallel_for(int64_t(0), d, [&](int64_t j) {
    for (int64_t i = j + 1; i < d; ++i) H(j, i) = H(i, j);
  });
  h.samples += n;
}

namespace {

// Process columns group by group: order (r, s, c), so an FGQ group is a contiguous range.
std::vector<int64_t> group_order(int64_t C, int64_t RS) {
  std::vector<int64_t> perm(C * RS);
  for (int64_t rs = 0, a = 0; rs < RS; ++rs)
    for (int64_t c = 0; c < C; ++c) perm[a++] = c * RS + rs;
  return perm;
}

}  // namespace

GptqFactor gptq_factor(const LayerHessian& hess, int64_t C, int64_t RS, double damp) {
  use_fixed_eigen_blocking();
  GptqFactor f;
  const int64_t d = C * RS;
  // Fewer samples than inputs: H is singular, and compensation would push errors into the
  // directions the calibration inputs never visited (a classifier on 200 pooled vectors of 2048
  // features collapses to chance), so such layers get plain ternarization.
  if (hess.d != d || hess.samples < d) return f;
  const std::vector<int64_t> perm = group_order(C, RS);
  // H in group order, reversed: R = J P^T H P J (J reverses the index), see upper_inverse_factor.
  // Column j of R reads row perm[d-1-j] of the symmetric H: contiguous memory.
  MatF R(d, d);
  tbb::parallel_for(int64_t(0), d, [&](int64_t j) {
    const float* hrow = hess.h.data() + perm[d - 1 - j] * d;
    for (int64_t i = 0; i < d; ++i) R(i, j) = hrow[perm[d - 1 - i]];
  });
  // Inputs that never fire carry no output error: their weights are free (set to zero).
  f.dead.assign(size_t(d), 0);
  for (int64_t a = 0; a < d; ++a)
    if (R(d - 1 - a, d - 1 - a) <= 0) {
      R(d - 1 - a, d - 1 - a) = 1;
      f.dead[size_t(a)] = 1;
    }
  RowMatF U;
  const float mean_diag = R.diagonal().mean();
  for (int attempt = 0; !upper_inverse_factor(R, float(damp) * mean_diag * std::pow(10.f, attempt), U);
       ++attempt)
    if (attempt == 4) return GptqFactor{};
  f.C = C;
  f.RS = RS;
  f.u.assign(U.data(), U.data() + d * d);
  return f;
}

TernaryWeights gptq_ternarize(const float* w, const Shape& shape, int group, Threshold method,
                              const LayerHessian& hess, double damp) {
  const bool fc = shape.size() == 2;
  if (!fc && shape.size() != 4) fail("gptq", "weights must be [K, C] or [K, C, KH, KW]");
  const int64_t RS = fc ? 1 : shape[2] * shape[3];
  return gptq_ternarize(w, shape, group, method, gptq_factor(hess, shape[1], RS, damp));
}

TernaryWeights gptq_ternarize(const float* w, const Shape& shape, int group, Threshold method,
                              const GptqFactor& f) {
  if (group < 1) fail("gptq", "group size must be >= 1, got " + std::to_string(group));
  const bool fc = shape.size() == 2;
  if (!fc && shape.size() != 4) fail("gptq", "weights must be [K, C] or [K, C, KH, KW]");
  const int64_t K = shape[0], C = shape[1], KH = fc ? 1 : shape[2], KW = fc ? 1 : shape[3];
  const int64_t d = C * KH * KW, G = (C + group - 1) / group, RS = KH * KW;
  if (f.u.empty() || f.C != C || f.RS != RS) return ternarize(w, shape, group, method);

  const std::vector<int64_t> perm = group_order(C, RS);
  const Eigen::Map<const RowMatF> U(f.u.data(), d, d);
  RowMatF W(K, d);
  tbb::parallel_for(int64_t(0), K, [&](int64_t k) {
    for (int64_t a = 0; a < d; ++a) W(k, a) = f.dead[size_t(a)] ? 0.f : w[k * d + perm[a]];
  });

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
