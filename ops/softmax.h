#pragma once
// Softmax / LogSoftmax pieces the last-axis ops::softmax_f32 (ops/elementwise.h) does not cover:
// softmax along a middle axis (ONNX opset 13 Softmax with axis not the last one), and
// LogSoftmax along the last or a middle axis.
#include <cstdint>

namespace fgq::ops {

// x, y: [n, inner] (one outer index); y[j, i] = exp(x[j, i] - max_j) / sum_j exp(...), or with
// `log` its logarithm x[j, i] - max_j - log(sum_j ...). x == y allowed.
void softmax_axis_f32(const float* x, float* y, int64_t n, int64_t inner, bool log = false);

// LogSoftmax over the last dimension of a [rows, cols] matrix. x == y allowed.
void log_softmax_rows_f32(const float* x, float* y, int64_t rows, int64_t cols);

}  // namespace fgq::ops
