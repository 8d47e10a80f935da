#pragma once
// ONNX Pad on the H/W axes of one [C, H, W] image: constant, reflect (mirror without repeating
// the edge, numpy's "reflect") and edge (repeat the border value, numpy's "edge").
namespace fgq::ops {

enum class PadMode { Constant, Reflect, Edge };

// y: [C, H + PT + PB, W + PL + PR]. `value` is used by PadMode::Constant only. Pads may exceed
// the input size (reflect then bounces back and forth, as numpy does).
void pad2d_f32(PadMode mode, const float* x, float* y, int C, int H, int W, int PT, int PL, int PB, int PR,
               float value);

}  // namespace fgq::ops
