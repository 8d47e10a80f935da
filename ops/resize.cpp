#include "ops/resize.h"

#include <algorithm>
#include <cmath>

#include "fgq/error.h"

namespace fgq::ops {

bool parse_resize_mode(const std::string& s, ResizeMode& m) {
  if (s == "nearest") m = ResizeMode::Nearest;
  else if (s == "linear" || s == "bilinear") m = ResizeMode::Linear;
  else if (s == "cubic") m = ResizeMode::Cubic;
  else return false;
  return true;
}

bool parse_resize_coord(const std::string& s, ResizeCoord& c) {
  if (s == "half_pixel") c = ResizeCoord::HalfPixel;
  else if (s == "asymmetric") c = ResizeCoord::Asymmetric;
  else if (s == "align_corners") c = ResizeCoord::AlignCorners;
  else if (s == "pytorch_half_pixel") c = ResizeCoord::PytorchHalfPixel;
  else if (s == "tf_half_pixel_for_nn") c = ResizeCoord::TfHalfPixelForNN;
  else return false;
  return true;
}

bool parse_resize_nearest(const std::string& s, ResizeNearest& n) {
  if (s == "round_prefer_floor") n = ResizeNearest::RoundPreferFloor;
  else if (s == "round_prefer_ceil") n = ResizeNearest::RoundPreferCeil;
  else if (s == "floor") n = ResizeNearest::Floor;
  else if (s == "ceil") n = ResizeNearest::Ceil;
  else return false;
  return true;
}

ResizeTaps resize_taps(const ResizeOptions& o, int64_t in, int64_t out, double scale) {
  if (in <= 0 || out <= 0 || !(scale > 0)) fail("resize", "non-positive size or scale");
  ResizeTaps t;
  t.taps = o.mode == ResizeMode::Cubic ? 4 : 2;
  t.idx.resize(size_t(out * t.taps));
  t.w.resize(size_t(out * t.taps));
  const double out_len = scale * double(in);  // the reference's output_width
  for (int64_t x = 0; x < out; ++x) {
    double s = 0;  // the source coordinate
    switch (o.coord) {
      case ResizeCoord::AlignCorners: s = out_len == 1 ? 0 : double(x) * (in - 1) / (out_len - 1); break;
      case ResizeCoord::Asymmetric: s = double(x) / scale; break;
      case ResizeCoord::PytorchHalfPixel: s = out_len == 1 ? -0.5 : (x + 0.5) / scale - 0.5; break;
      case ResizeCoord::HalfPixel: s = (x + 0.5) / scale - 0.5; break;
      case ResizeCoord::TfHalfPixelForNN: s = (x + 0.5) / scale; break;
    }
    // The taps start left of s; the fraction is in (0, 1] (an integral s is the right tap of
    // a pair, with weight 1 where it matters), as the reference has it.
    const double base = std::ceil(s) - 1;
    const double r = s - base;
    double c[4] = {0, 0, 0, 0};
    int64_t first = int64_t(base);
    switch (o.mode) {
      case ResizeMode::Nearest: {
        bool right = true;
        if (r != 1.0) {
          switch (o.nearest) {
            case ResizeNearest::RoundPreferFloor: right = r > 0.5; break;
            case ResizeNearest::RoundPreferCeil: right = r >= 0.5; break;
            case ResizeNearest::Floor: right = false; break;
            case ResizeNearest::Ceil: right = true; break;
          }
        }
        c[0] = right ? 0 : 1;
        c[1] = right ? 1 : 0;
        break;
      }
      case ResizeMode::Linear:
        c[0] = 1 - r;
        c[1] = r;
        break;
      case ResizeMode::Cubic: {
        const double A = o.cubic_a;
        const double u = r + 1, v = 1 - r, z = 2 - r;
        c[0] = ((A * u - 5 * A) * u + 8 * A) * u - 4 * A;
        c[1] = ((A + 2) * r - (A + 3)) * r * r + 1;
        c[2] = ((A + 2) * v - (A + 3)) * v * v + 1;
        c[3] = ((A * z - 5 * A) * z + 8 * A) * z - 4 * A;
        first -= 1;
        break;
      }
    }
    if (o.exclude_outside && o.mode == ResizeMode::Cubic) {
      double sum = 0;
      for (int k = 0; k < t.taps; ++k) {
        const int64_t p = first + k;
        if (p < 0 || p >= in) c[k] = 0;
        sum += c[k];
      }
      if (sum != 0)
        for (int k = 0; k < t.taps; ++k) c[k] /= sum;
    }
    for (int k = 0; k < t.taps; ++k) {
      t.idx[size_t(x * t.taps + k)] = std::clamp<int64_t>(first + k, 0, in - 1);  // edge padding
      t.w[size_t(x * t.taps + k)] = float(c[k]);
    }
  }
  return t;
}

void resize2d_f32(const ResizeTaps& th, const ResizeTaps& tw, const float* x, float* y, int64_t C, int64_t H,
                  int64_t W, int64_t OH, int64_t OW) {
  for (int64_t c = 0; c < C; ++c) {
    const float* xc = x + c * H * W;
    float* yc = y + c * OH * OW;
    for (int64_t oh = 0; oh < OH; ++oh) {
      float* yr = yc + oh * OW;
      std::fill(yr, yr + OW, 0.f);
      for (int i = 0; i < th.taps; ++i) {
        const float wh = th.w[size_t(oh * th.taps + i)];
        if (wh == 0.f) continue;  // nearest: one of the two rows
        const float* xr = xc + th.idx[size_t(oh * th.taps + i)] * W;
        for (int64_t ow = 0; ow < OW; ++ow) {
          float v = 0;
          for (int j = 0; j < tw.taps; ++j) v += tw.w[size_t(ow * tw.taps + j)] * xr[tw.idx[size_t(ow * tw.taps + j)]];
          yr[ow] += wh * v;
        }
      }
    }
  }
}

}  // namespace fgq::ops
