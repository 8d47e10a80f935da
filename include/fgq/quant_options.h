#pragma once
// Options of load-time FGQ quantization (public: part of the embedding API).
#include <string>

namespace fgq {

struct QuantOptions {
  // N: weights per (alpha, delta) group along input channels, 1..65536 (else quantize() throws
  // fgq::Error); a group wider than a layer's input channels spans all of them.
  int group = 4;
  std::string threshold = "exact";  // exact | twn
  int act_bits = 8;                  // 8 | 4 | 0 (0 = keep FP32 activations)
  std::string act_calib = "mse";     // max | percentile | mse
  float percentile = 99.99f;
  bool pow2_scales = false;          // dynamic fixed point
  bool ternarize_first = false;      // first conv: ternary, else kept at 8-bit weights
  bool ternarize_last = false;       // classifier: ternary, else kept at 8-bit weights
  bool stats_correction = true;      // per-channel correction of every conv output
  // Its target: "fp32" matches each channel's mean/variance to the FP32 network's on the same
  // calibration images (exact for lossless weights); "bn" re-estimates folded BatchNorm instead
  // (which also moves the network off its training-time statistics); "mean" only removes the
  // per-channel mean shift (bias correction).
  std::string correction = "fp32";
  // GPTQ: ternarize each layer against its calibration inputs, compensating every rounding
  // error with the weights not yet quantized (minimises the layer's output error).
  bool gptq = true;
  // Input patches per layer (spread evenly over the calibration batch) that GPTQ's Hessian is
  // estimated from; its cost is linear in them.
  int gptq_samples = 16384;
  // Levels A (1..127) the group scales of a ternary layer are folded into, per output channel:
  // alpha_g ~= s_o * a_g with a_g in 0..A, so the layer runs as per-channel int8 (weights a_g * t)
  // on the integer pipeline. 0 keeps the exact float alpha_g: simulation only.
  int fold_levels = 127;
  // Run the quantized network as the fake-quant FP32 simulation (FakeQuant nodes on float
  // kernels) instead of the integer pipeline. Both compute the same numbers up to float rounding
  // at requantization ties; the integer pipeline is several times faster.
  bool simulate = false;
};

}  // namespace fgq
