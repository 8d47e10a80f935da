#include "quant/weight_int8.h"

#include <algorithm>
#include <cmath>

#include "graph/error.h"

namespace fgq {

Int8Weights quantize_int8_per_channel(const float* w, const Shape& shape) {
  if (shape.empty() || shape[0] <= 0) fail("int8 weights", "bad weight shape " + shape_str(shape));
  Int8Weights r;
  r.shape = shape;
  const int64_t K = shape[0], per_k = numel(shape) / K;
  r.q.resize(static_cast<size_t>(K * per_k));
  r.scale.resize(static_cast<size_t>(K));
  for (int64_t k = 0; k < K; ++k) {
    const float* wk = w + k * per_k;
    float m = 0;
    for (int64_t j = 0; j < per_k; ++j) m = std::max(m, std::fabs(wk[j]));
    const float s = m > 0 ? m / 127.f : 1.f;
    r.scale[k] = s;
    for (int64_t j = 0; j < per_k; ++j)
      r.q[k * per_k + j] = static_cast<int8_t>(std::clamp(std::nearbyint(wk[j] / s), -127.f, 127.f));
  }
  return r;
}

std::vector<float> Int8Weights::dequantize() const {
  const int64_t K = static_cast<int64_t>(scale.size()), per_k = K ? numel(shape) / K : 0;
  std::vector<float> out(q.size());
  for (int64_t k = 0; k < K; ++k)
    for (int64_t j = 0; j < per_k; ++j) out[k * per_k + j] = scale[k] * q[k * per_k + j];
  return out;
}

void Int8Weights::scale_output_channels(const std::vector<float>& s) {
  if (s.size() != scale.size()) fail("int8 weights", "per-channel scale count mismatch");
  for (size_t k = 0; k < s.size(); ++k) {
    if (!(s[k] >= 0)) fail("int8 weights", "negative or NaN output-channel scale");
    scale[k] *= s[k];
  }
}

}  // namespace fgq
