#pragma once
// Private to ops/ (and its tests): the two implementations behind conv2d_f32/conv2d_f32_batch.
// Shapes are checked by the public functions before they get here.
#include "ops/conv2d.h"

namespace fgq::ops::detail {

// True when this build has the AVX-512 path (compiled with AVX-512F, e.g. -march=native on an
// AVX-512 machine); conv2d_f32 and conv2d_f32_batch then always take it.
bool conv2d_avx512_available();

// Register-blocked AVX-512 GEMM over the whole batch (ops/conv2d_avx512.cpp), contract of
// conv2d_f32_batch. Returns false (doing nothing) when conv2d_avx512_available() is false.
bool conv2d_f32_avx512(const Conv2dShape& s, int batch, const float* x, long x_stride,
                       const float* w, const float* bias, const float* residual, bool relu,
                       float* y, long y_stride);

// im2col + Eigen GEMM, one image (ops/conv2d.cpp): every other build's path.
void conv2d_f32_eigen(const Conv2dShape& s, const float* x, const float* w, const float* bias,
                      const float* residual, bool relu, float* y);

}  // namespace fgq::ops::detail
