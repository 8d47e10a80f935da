#pragma once
// Numpy-broadcast binary ops on FP32 tensors (ONNX Add / Sub / Mul / Div / Pow / PRelu / Max /
// Min, opset 7+ broadcasting):
// shapes are aligned to the right, a dim of 1 repeats. The plan collapses adjacent dims that
// broadcast the same way, so a per-channel constant on NCHW is one contiguous inner loop of H*W
// elements per channel, and two same-shape tensors are one flat loop.
#include <cstdint>
#include <vector>

namespace fgq::ops {

enum class BinaryOp { Add, Sub, Mul, Div, Pow, PRelu, Max, Min };  // PRelu: a < 0 ? a * b : a

struct BroadcastPlan {
  std::vector<int64_t> dims;    // collapsed output dims, outermost first (at least one)
  std::vector<int64_t> sa, sb;  // element strides of a and b per collapsed dim; 0 repeats
  int64_t inner() const { return dims.back(); }  // elements per row
  int64_t rows() const;                          // product of the other dims
  int64_t a_size = 0, b_size = 0, y_size = 0;    // elements of a, b, y
};

// a, b: the operand shapes (any ranks); returns false when they do not broadcast. y is filled
// with the broadcast shape.
bool broadcast_shape(const std::vector<int64_t>& a, const std::vector<int64_t>& b, std::vector<int64_t>& y);

// Plan for y = a op b with a, b broadcast to y (y must be their broadcast shape).
BroadcastPlan plan_broadcast(const std::vector<int64_t>& a, const std::vector<int64_t>& b,
                             const std::vector<int64_t>& y);

// Computes the elements [e0, e1) of y (flat, row-major), so callers can split any shape into
// chunks. y may alias a or b when that operand is not broadcast (it has y's size).
void broadcast_binary_f32(BinaryOp op, const BroadcastPlan& p, const float* a, const float* b,
                          float* y, int64_t e0, int64_t e1);

// Whole tensor, single thread.
inline void broadcast_binary_f32(BinaryOp op, const BroadcastPlan& p, const float* a, const float* b, float* y) {
  broadcast_binary_f32(op, p, a, b, y, 0, p.y_size);
}

}  // namespace fgq::ops
