#include "quant/ternarize.h"

#include <algorithm>
#include <cmath>
#include <functional>

#include <tbb/parallel_for.h>

#include "graph/error.h"

namespace fgq {

Threshold parse_threshold(const std::string& name) {
  if (name == "exact") return Threshold::Exact;
  if (name == "twn") return Threshold::Twn;
  fail("quant options", "unknown threshold method '" + name + "' (expected exact | twn)");
}

namespace {

GroupTernary exact_group(const float* w, int n, std::vector<float>& mag) {
  mag.resize(n);
  for (int i = 0; i < n; ++i) mag[i] = std::fabs(w[i]);
  std::sort(mag.begin(), mag.end(), std::greater<float>());
  // error(k) = sum w^2 - S_k^2 / k: maximise S_k^2 / k over the admissible k.
  GroupTernary best;
  double best_score = 0, sum = 0, best_sum = 0;
  for (int k = 1; k <= n; ++k) {
    if (mag[k - 1] == 0.f) break;  // zeros add nothing; never keep them
    sum += mag[k - 1];
    if (k < n && mag[k] == mag[k - 1]) continue;  // a threshold cannot split a tie
    const double score = sum * sum / k;
    if (score > best_score) {
      best_score = score;
      best_sum = sum;
      best.kept = k;
    }
  }
  if (best.kept > 0) {
    best.alpha = static_cast<float>(best_sum / best.kept);
    best.delta = best.kept < n ? mag[best.kept] : 0.f;
  }
  return best;
}

GroupTernary twn_group(const float* w, int n) {
  double mean = 0;
  for (int i = 0; i < n; ++i) mean += std::fabs(w[i]);
  mean /= n;
  GroupTernary r;
  r.delta = static_cast<float>(0.7 * mean);
  double kept_sum = 0;
  for (int i = 0; i < n; ++i) {
    const float a = std::fabs(w[i]);
    if (a > r.delta) {
      kept_sum += a;
      ++r.kept;
    }
  }
  if (r.kept > 0) r.alpha = static_cast<float>(kept_sum / r.kept);
  return r;
}

Shape as_rank4(const Shape& shape) {
  if (shape.size() == 2) return {shape[0], shape[1], 1, 1};
  if (shape.size() == 4) return shape;
  fail("ternarize", "weight shape " + shape_str(shape) + " is neither [K,C] nor [K,C,KH,KW]");
}

}  // namespace

GroupTernary ternarize_group(const float* w, int n, Threshold method) {
  if (n <= 0) fail("ternarize", "empty group");
  if (method == Threshold::Twn) return twn_group(w, n);
  thread_local std::vector<float> mag;
  return exact_group(w, n, mag);
}

TernaryWeights ternarize(const float* w, const Shape& shape, int group, Threshold method) {
  if (group < 1) fail("ternarize", "group size must be >= 1, got " + std::to_string(group));
  TernaryWeights tw;
  tw.shape = as_rank4(shape);
  tw.group = group;
  const int64_t K = tw.K(), C = tw.C(), KH = tw.KH(), KW = tw.KW(), G = tw.groups_along_c();
  const int64_t spatial = KH * KW;
  tw.t.assign(static_cast<size_t>(K * C * spatial), 0);
  tw.alpha.assign(static_cast<size_t>(K * G * spatial), 0.f);

  tbb::parallel_for(int64_t(0), K, [&](int64_t k) {
    std::vector<float> vals(static_cast<size_t>(std::min<int64_t>(group, C)));  // bounded by the layer
    for (int64_t g = 0; g < G; ++g) {
      const int64_t c0 = g * group;
      const int n = static_cast<int>(std::min<int64_t>(group, C - c0));
      for (int64_t rs = 0; rs < spatial; ++rs) {
        const int64_t base = (k * C + c0) * spatial + rs;  // stride between channels: spatial
        for (int i = 0; i < n; ++i) vals[i] = w[base + i * spatial];
        const GroupTernary gt = ternarize_group(vals.data(), n, method);
        tw.alpha[(k * G + g) * spatial + rs] = gt.alpha;
        for (int i = 0; i < n; ++i) {
          const float v = vals[i];
          tw.t[base + i * spatial] = std::fabs(v) > gt.delta && gt.kept > 0 ? (v > 0 ? 1 : -1) : 0;
        }
      }
    }
  });
  return tw;
}

std::vector<float> TernaryWeights::dequantize() const {
  const int64_t C_ = C(), G = groups_along_c(), spatial = KH() * KW();
  std::vector<float> out(t.size());
  tbb::parallel_for(int64_t(0), K(), [&](int64_t k) {
    for (int64_t c = 0; c < C_; ++c) {
      const int64_t g = c / group;
      for (int64_t rs = 0; rs < spatial; ++rs) {
        const int64_t i = (k * C_ + c) * spatial + rs;
        out[i] = alpha[(k * G + g) * spatial + rs] * t[i];
      }
    }
  });
  return out;
}

void TernaryWeights::scale_output_channels(const std::vector<float>& scale) {
  if (static_cast<int64_t>(scale.size()) != K())
    fail("ternarize", "per-channel scale has " + std::to_string(scale.size()) +
                          " entries for " + std::to_string(K()) + " output channels");
  const int64_t per_k = groups_along_c() * KH() * KW();
  for (int64_t k = 0; k < K(); ++k) {
    if (!(scale[k] >= 0)) fail("ternarize", "negative or NaN output-channel scale");
    for (int64_t j = 0; j < per_k; ++j) alpha[k * per_k + j] *= scale[k];
  }
}

TernaryStats ternary_stats(const float* w, const TernaryWeights& tw) {
  const std::vector<float> w_hat = tw.dequantize();
  double norm2 = 0, err2 = 0;
  int64_t zeros = 0;
  for (size_t i = 0; i < w_hat.size(); ++i) {
    norm2 += double(w[i]) * w[i];
    const double d = double(w[i]) - w_hat[i];
    err2 += d * d;
    zeros += tw.t[i] == 0;
  }
  TernaryStats s;
  s.groups = tw.num_groups();
  s.sparsity = w_hat.empty() ? 0 : double(zeros) / double(w_hat.size());
  s.rel_error = norm2 > 0 ? std::sqrt(err2 / norm2) : 0;
  return s;
}

}  // namespace fgq
