#pragma once
// Data-movement kernels on FP32 tensors: ONNX Transpose, Concat, Gather and Slice over
// contiguous row-major buffers (the runtime applies them to a whole batch, batch axis first).
#include <cstdint>
#include <vector>

namespace fgq::ops {

// y = x with its axes permuted: y.shape[k] = x.shape[perm[k]]. perm is a permutation of
// 0..rank-1. Axes that stay neighbours are merged, so a permutation that keeps the last axis
// in place copies contiguous rows.
void transpose_f32(const float* x, const std::vector<int64_t>& x_shape, const std::vector<int64_t>& perm, float* y);

// Copies of `block` floats from x at each of `count` positions (with stride x_stride) into y
// back to back: y[k * block ..] = x[k * x_stride ..]. The building block of Concat (one input's
// slab per outer index), Gather and Slice.
void copy_blocks_f32(const float* x, int64_t x_stride, int64_t block, int64_t count, float* y, int64_t y_stride);

// y = x[starts[k] : ... : steps[k]] along every axis k (ONNX Slice, starts already clamped to
// valid indices, counts[k] elements taken per axis, steps nonzero, possibly negative).
void slice_f32(const float* x, const std::vector<int64_t>& x_shape, const std::vector<int64_t>& starts,
               const std::vector<int64_t>& steps, const std::vector<int64_t>& counts, float* y);

}  // namespace fgq::ops
