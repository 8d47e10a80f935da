#pragma once
// 2-D transposed convolution (ONNX ConvTranspose) of one NCHW image, FP32: per group a GEMM
// (columns = W^T x) and a col2im scatter-add of the columns into the output.
#include <cstdint>
#include <vector>

namespace fgq::ops {

struct ConvTranspose2dShape {
  int64_t C = 0, H = 0, W = 0;   // input channels and size
  int64_t K = 0, OH = 0, OW = 0; // output channels (all groups) and size
  int64_t group = 1, kh = 1, kw = 1, sh = 1, sw = 1, dh = 1, dw = 1;
  int64_t pt = 0, pl = 0;        // output rows/columns cut at the start (pads begin)
};

// The ONNX weight [C, K/group, kh, kw] rearranged once for the GEMM: per group
// [K/group * kh * kw, C/group].
std::vector<float> pack_conv_transpose_weight(const ConvTranspose2dShape& s, const float* w);

// y[K, OH, OW] = bias + transposed convolution of x[C, H, W]. cols: scratch of
// conv_transpose_scratch(s) floats.
void conv_transpose2d_f32(const ConvTranspose2dShape& s, const float* x, const float* packed_w, const float* bias,
                          float* y, float* cols);
int64_t conv_transpose_scratch(const ConvTranspose2dShape& s);

}  // namespace fgq::ops
