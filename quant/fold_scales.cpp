#include "quant/fold_scales.h"

#include <algorithm>
#include <cmath>

#include "graph/error.h"

namespace fgq {

Int8Weights fold_group_scales(const TernaryWeights& tw, int levels, FoldStats* stats) {
  if (levels < 1 || levels > 127)
    fail("fold", "levels per channel must be in 1..127, got " + std::to_string(levels));
  const int64_t K = tw.K(), C = tw.C(), G = tw.groups_along_c(), taps = tw.KH() * tw.KW();
  Int8Weights r;
  r.shape = tw.shape;
  r.q.assign(tw.t.size(), 0);
  r.scale.assign(size_t(K), 1.f);
  FoldStats st;
  double err2 = 0, norm2 = 0;
  for (int64_t k = 0; k < K; ++k) {
    const float* alpha = tw.alpha.data() + k * G * taps;
    const float amax = *std::max_element(alpha, alpha + G * taps);
    if (!(amax > 0)) continue;  // nothing kept in this channel: q stays 0
    const float s = amax / float(levels);
    r.scale[size_t(k)] = s;
    for (int64_t c = 0; c < C; ++c)
      for (int64_t q = 0; q < taps; ++q) {
        const int64_t i = (k * C + c) * taps + q;
        const int t = tw.t[size_t(i)];
        if (!t) continue;
        const float a = alpha[(c / tw.group) * taps + q];
        const int level = int(std::clamp(std::nearbyint(a / s), 0.f, float(levels)));
        r.q[size_t(i)] = int8_t(level * t);
        const double d = double(a) * t - double(s) * level * t;
        err2 += d * d;
        norm2 += double(a) * a;
      }
    for (int64_t j = 0; j < G * taps; ++j) {
      if (!(alpha[j] > 0)) continue;
      ++st.groups;
      st.zero_levels += std::nearbyint(alpha[j] / s) == 0;
    }
  }
  st.rel_error = norm2 > 0 ? std::sqrt(err2 / norm2) : 0;
  if (stats) *stats = st;
  return r;
}

}  // namespace fgq
