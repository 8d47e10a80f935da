#pragma once
// FP32 2-D convolution, NCHW: one image per call, or a batch (conv2d_f32_batch).
// The reference that quantized kernels are checked against.
#include <cstdint>

namespace fgq::ops {

struct Conv2dShape {
  int C = 0, H = 0, W = 0;          // input channels and size
  int K = 0, KH = 1, KW = 1;        // output channels, kernel
  int SH = 1, SW = 1;               // stride
  int PT = 0, PL = 0, PB = 0, PR = 0;  // padding top/left/bottom/right
  int DH = 1, DW = 1;               // dilation
  int OH() const { return (H + PT + PB - DH * (KH - 1) - 1) / SH + 1; }
  int OW() const { return (W + PL + PR - DW * (KW - 1) - 1) / SW + 1; }
};

// y[K,OH,OW] = relu?( conv(x[C,H,W], w[K,C,KH,KW]) + bias[K] + residual[K,OH,OW] )
// bias and residual may be null. May run in parallel internally (TBB); thread-safe.
void conv2d_f32(const Conv2dShape& s, const float* x, const float* w, const float* bias,
                const float* residual, bool relu, float* y);

// conv2d_f32 over a batch in one call: image b reads x + b*x_stride and residual + b*y_stride
// and writes y + b*y_stride (strides in floats; groups of a grouped conv are slices of larger
// images). Faster than a call per image: a weight is read once per batch, and small feature
// maps are packed across images. Same result as conv2d_f32 per image (up to rounding).
void conv2d_f32_batch(const Conv2dShape& s, int batch, const float* x, long x_stride,
                      const float* w, const float* bias, const float* residual, bool relu,
                      float* y, long y_stride);

// Plain loops, no tricks: what the tests compare conv2d_f32 against.
void conv2d_f32_naive(const Conv2dShape& s, const float* x, const float* w, const float* bias,
                      const float* residual, bool relu, float* y);

}  // namespace fgq::ops
