#pragma once
// Element-wise and row-wise ops on contiguous FP32 buffers.
#include <cstdint>

namespace fgq::ops {

void relu_f32(const float* x, float* y, int64_t n);  // x == y allowed
// y = a + b (same shape), then ReLU if asked; y may alias a or b.
void add_f32(const float* a, const float* b, float* y, int64_t n, bool relu);
// y = x * scale + shift; x == y allowed.
void scale_shift_f32(const float* x, float* y, int64_t n, float scale, float shift);
// Softmax over the last dimension of a [rows, cols] matrix.
void softmax_f32(const float* x, float* y, int rows, int cols);
// Zero/constant padding of one [C,H,W] image.
void pad_f32(const float* x, float* y, int C, int H, int W, int PT, int PL, int PB, int PR,
             float value);
// Round-to-nearest-even onto the grid scale*{qmin..qmax}, then back to float (simulated quant);
// x == y allowed.
void fake_quant_f32(const float* x, float* y, int64_t n, float scale, int qmin, int qmax);

}  // namespace fgq::ops
