#pragma once
// Normalizations over one [C, spatial] image, FP32: ONNX LRN (across channels) and
// InstanceNormalization (per channel over the spatial positions).
#include <cstdint>

namespace fgq::ops {

// y[c, i] = x[c, i] / (bias + alpha / size * sum of x[c', i]^2 over c' in
// [c - floor((size - 1) / 2), c + ceil((size - 1) / 2)] ∩ [0, C))^beta.
void lrn_f32(const float* x, float* y, int64_t C, int64_t spatial, int64_t size, float alpha, float beta, float bias);

// y[c, i] = scale[c] * (x[c, i] - mean_c) / sqrt(var_c + eps) + shift[c], mean and (population)
// variance over the spatial positions of channel c. x == y allowed.
void instance_norm_f32(const float* x, float* y, int64_t C, int64_t spatial, const float* scale, const float* shift,
                       float eps);

}  // namespace fgq::ops
