#pragma once
// ONNX Resize (and Upsample) on the H/W axes of [C, H, W] images, FP32: nearest, linear and
// cubic interpolation, separable per axis, with the opset 11+ coordinate transformation and
// nearest rounding modes. Follows the ONNX reference implementation (interpolate_1d_with_x):
// a source coordinate x, the n input positions nearest to it (clamped to the edge), weights
// from the fractional part.
#include <cstdint>
#include <string>
#include <vector>

namespace fgq::ops {

enum class ResizeMode { Nearest, Linear, Cubic };
enum class ResizeCoord { HalfPixel, Asymmetric, AlignCorners, PytorchHalfPixel, TfHalfPixelForNN };
enum class ResizeNearest { RoundPreferFloor, RoundPreferCeil, Floor, Ceil };

struct ResizeOptions {
  ResizeMode mode = ResizeMode::Nearest;
  ResizeCoord coord = ResizeCoord::HalfPixel;
  ResizeNearest nearest = ResizeNearest::RoundPreferFloor;
  float cubic_a = -0.75f;
  // Cubic: taps outside the input get weight 0, the rest renormalized. (For linear that equals
  // the edge clamping; for nearest the reference would divide by zero: ignored, as ONNX Runtime
  // does.)
  bool exclude_outside = false;
};

// Parses the attribute strings; false for an unknown name.
bool parse_resize_mode(const std::string& s, ResizeMode& m);
bool parse_resize_coord(const std::string& s, ResizeCoord& c);
bool parse_resize_nearest(const std::string& s, ResizeNearest& n);

// The input positions and weights each output position of one axis reads: taps per output,
// idx/w hold out * taps entries.
struct ResizeTaps {
  int taps = 1;
  std::vector<int64_t> idx;
  std::vector<float> w;
};
// `scale`: output / input size along the axis as the model gives it (the scales input, or
// sizes / input size).
ResizeTaps resize_taps(const ResizeOptions& o, int64_t in, int64_t out, double scale);

// y[c, oh, ow] = sum_i sum_j th.w[oh, i] * tw.w[ow, j] * x[c, th.idx[oh, i], tw.idx[ow, j]].
void resize2d_f32(const ResizeTaps& th, const ResizeTaps& tw, const float* x, float* y, int64_t C, int64_t H,
                  int64_t W, int64_t OH, int64_t OW);

}  // namespace fgq::ops
