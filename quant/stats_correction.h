#pragma once
// Per-channel statistics correction after weight quantization: the quantized network's conv
// outputs drift in mean and variance, and the drift compounds over depth. Each conv output is
// corrected by a per-channel affine map y = a * z + b, chosen from its measured moments, and the
// map is then folded into the conv (a scales the weights, b joins the bias).
#include <cstdint>
#include <vector>

#include "graph/ir.h"

namespace fgq {

struct ChannelMoments {
  std::vector<double> mean, var;  // per channel, over batch and spatial positions (biased var)
};

// x: [B, C, ...] (rank >= 2).
ChannelMoments channel_moments(const float* x, const Shape& shape);
// x[b, c, ...] = a[c] * x[b, c, ...] + b[c], in place.
void apply_channel_affine(float* x, const Shape& shape, const std::vector<float>& a,
                          const std::vector<float>& b);

// BatchNorm parameters a conv was folded with: W' = W s, b' = (b - mean) s + beta,
// s = gamma / sqrt(var + eps).
struct FoldedBn {
  std::vector<float> gamma, beta, mean, var;
  float eps = 1e-5f;
};

struct ChannelAffine {
  std::vector<float> a, b;
};

// BN re-estimation. z is the folded conv output, z = s (z_u - mean) + beta with z_u the
// unfolded output; re-estimating BN on z_u gives mean_u = (mean_z - beta) / s + mean and
// var_u = var_z / s^2, and the corrected output gamma (z_u - mean_u) / sqrt(var_u + eps) + beta
// equals a z + b with a = gamma / (s sqrt(var_z / s^2 + eps)), b = beta - a mean_z.
// Channels with s == 0 (gamma == 0) are constant and keep a = 1, b = 0.
ChannelAffine bn_reestimation(const FoldedBn& bn, const ChannelMoments& z);
// Moment matching for convs without BN parameters: a = sqrt(ref_var / var_z),
// b = ref_mean - a mean_z (a = 1 when either variance is 0).
// mean_only: a = 1 (bias correction: only the mean shift is removed).
ChannelAffine moment_matching(const ChannelMoments& ref, const ChannelMoments& z,
                              bool mean_only = false);

}  // namespace fgq
