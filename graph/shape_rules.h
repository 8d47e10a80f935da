#pragma once
// Per-node shape rules behind infer_shapes(), exposed for passes that interleave shape
// propagation with rewriting (fold_constants evaluates Shape nodes as it goes).
#include <string>

#include "graph/ir.h"

namespace fgq {

// A possibly negative axis of a rank-r tensor normalized into [0, r) (into [0, r] with end_ok,
// as Flatten allows). Out of range it calls fail("axis A is out of range for rank R", with
// `what` for "axis"), which must throw: callers add their own context (file, node).
template <class Fail>
int64_t normalize_axis(int64_t a, int64_t r, Fail&& fail, bool end_ok = false,
                       const char* what = "axis") {
  if (a < -r || a > r || (a == r && !end_ok))
    fail(std::string(what) + " " + std::to_string(a) + " is out of range for rank " + std::to_string(r));
  return a < 0 ? a + r : a;
}

// Sets the shapes of n's outputs from the shapes of its inputs (which must already be set).
// Throws fgq::Error naming g.source and the node.
void infer_node_shapes(Graph& g, const Node& n);

// Numpy-style broadcast of two shapes; throws (naming the node) if they are incompatible.
Shape broadcast_shapes(const Shape& a, const Shape& b, const Graph& g, const Node& n);

// A Slice node's parameters resolved against input shape x (constant starts/ends/axes/steps
// inputs, negative and out-of-range values clamped the ONNX way): per axis of x, the first
// index, the step and how many elements are taken (counts is the output shape).
struct SliceParams {
  std::vector<int64_t> starts, steps, counts;
};
SliceParams slice_params(const Graph& g, const Node& n, const Shape& x);

// Which axes of a rank-r input a Reduce* node reduces: its axes (attribute, or the constant
// input of opsets 13/18+), negative ones normalized; none given means all of them, or none with
// noop_with_empty_axes=1. Throws naming the node.
std::vector<bool> reduce_axes(const Graph& g, const Node& n, size_t rank);

// A Resize node's output size and scale per axis of input x (rank 4, only H and W resized):
// from the constant scales input (output = floor(in * scale)) or the sizes input (scale =
// out / in). Throws naming the node for anything else (roi-based modes, batch/channel scaling).
struct ResizeGeometry {
  Shape out;
  std::vector<double> scale;
};
ResizeGeometry resize_geometry(const Graph& g, const Node& n, const Shape& x);

// A 2-D ConvTranspose node over input x [N, C, H, W] with weight w [C, K/group, kh, kw]: output
// shape and the window (pads resolved from output_shape / auto_pad the ONNX way).
struct ConvTransposeGeometry {
  Shape out;
  int64_t group = 1, kh = 1, kw = 1, sh = 1, sw = 1, dh = 1, dw = 1;
  int64_t pt = 0, pl = 0, pb = 0, pr = 0;
};
ConvTransposeGeometry conv_transpose_geometry(const Graph& g, const Node& n, const Shape& x, const Shape& w);

}  // namespace fgq
