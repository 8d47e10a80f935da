#include "quant/stats_correction.h"

#include <cmath>

#include <tbb/parallel_for.h>

#include "graph/error.h"
#include "ops/elementwise.h"

namespace fgq {

namespace {

void check_rank(const Shape& shape) {
  if (shape.size() < 2) fail("stats correction", "expected [B, C, ...], got " + shape_str(shape));
}

}  // namespace

ChannelMoments channel_moments(const float* x, const Shape& shape) {
  check_rank(shape);
  const int64_t B = shape[0], C = shape[1], inner = numel(shape) / (B * C);
  ChannelMoments m;
  m.mean.assign(C, 0);
  m.var.assign(C, 0);
  tbb::parallel_for(int64_t(0), C, [&](int64_t c) {
    // Shifted sums (shift = first value) keep the variance accurate for large means; float
    // lanes within a row (vectorised), double across rows.
    const float shift = B > 0 && inner > 0 ? x[c * inner] : 0;
    double s = 0, s2 = 0;
    for (int64_t b = 0; b < B; ++b) {
      const float* p = x + (b * C + c) * inner;
      constexpr int kLanes = 16;
      float ls[kLanes] = {}, ls2[kLanes] = {};
      int64_t i = 0;
      for (; i + kLanes <= inner; i += kLanes)
        for (int j = 0; j < kLanes; ++j) {
          const float d = p[i + j] - shift;
          ls[j] += d;
          ls2[j] += d * d;
        }
      for (; i < inner; ++i) {
        const float d = p[i] - shift;
        ls[0] += d;
        ls2[0] += d * d;
      }
      for (int j = 0; j < kLanes; ++j) {
        s += ls[j];
        s2 += ls2[j];
      }
    }
    const double n = double(B * inner);
    if (n > 0) {
      m.mean[c] = shift + s / n;
      m.var[c] = std::max(0.0, s2 / n - (s / n) * (s / n));
    }
  });
  return m;
}

void apply_channel_affine(float* x, const Shape& shape, const std::vector<float>& a,
                          const std::vector<float>& b) {
  check_rank(shape);
  const int64_t B = shape[0], C = shape[1], inner = numel(shape) / (B * C);
  if (int64_t(a.size()) != C || int64_t(b.size()) != C)
    fail("stats correction", "affine has " + std::to_string(a.size()) + " channels, tensor " +
                                 shape_str(shape));
  tbb::parallel_for(int64_t(0), B * C, [&](int64_t bc) {
    ops::scale_shift_f32(x + bc * inner, x + bc * inner, inner, a[size_t(bc % C)], b[size_t(bc % C)]);
  });
}

ChannelAffine bn_reestimation(const FoldedBn& bn, const ChannelMoments& z) {
  const size_t C = z.mean.size();
  if (bn.gamma.size() != C || bn.beta.size() != C || bn.mean.size() != C || bn.var.size() != C)
    fail("stats correction", "BatchNorm parameters do not match the conv output channels");
  ChannelAffine r{std::vector<float>(C, 1.f), std::vector<float>(C, 0.f)};
  for (size_t c = 0; c < C; ++c) {
    const double s = bn.gamma[c] / std::sqrt(double(bn.var[c]) + bn.eps);
    if (s == 0 || !std::isfinite(s)) continue;
    const double a = bn.gamma[c] / (s * std::sqrt(z.var[c] / (s * s) + bn.eps));
    r.a[c] = static_cast<float>(a);
    r.b[c] = static_cast<float>(bn.beta[c] - a * z.mean[c]);
  }
  return r;
}

ChannelAffine moment_matching(const ChannelMoments& ref, const ChannelMoments& z, bool mean_only) {
  const size_t C = z.mean.size();
  if (ref.mean.size() != C || ref.var.size() != C)
    fail("stats correction", "reference statistics do not match the conv output channels");
  ChannelAffine r{std::vector<float>(C, 1.f), std::vector<float>(C, 0.f)};
  for (size_t c = 0; c < C; ++c) {
    const double a =
        !mean_only && ref.var[c] > 0 && z.var[c] > 0 ? std::sqrt(ref.var[c] / z.var[c]) : 1.0;
    r.a[c] = static_cast<float>(a);
    r.b[c] = static_cast<float>(ref.mean[c] - a * z.mean[c]);
  }
  return r;
}

}  // namespace fgq
