#include "ops/conv_transpose.h"

#include <algorithm>

#include "fgq/error.h"
#include "ops/gemm.h"

namespace fgq::ops {

std::vector<float> pack_conv_transpose_weight(const ConvTranspose2dShape& s, const float* w) {
  const int64_t cg = s.C / s.group, kg = s.K / s.group, taps = s.kh * s.kw;
  std::vector<float> p(size_t(s.C * kg * taps));
  for (int64_t g = 0; g < s.group; ++g)
    for (int64_t c = 0; c < cg; ++c)
      for (int64_t r = 0; r < kg * taps; ++r)  // r = (k * kh + i) * kw + j
        p[size_t(g * kg * taps * cg + r * cg + c)] = w[(g * cg + c) * kg * taps + r];
  return p;
}

int64_t conv_transpose_scratch(const ConvTranspose2dShape& s) { return (s.K / s.group) * s.kh * s.kw * s.H * s.W; }

void conv_transpose2d_f32(const ConvTranspose2dShape& s, const float* x, const float* packed_w, const float* bias,
                          float* y, float* cols) {
  if (s.C <= 0 || s.K <= 0 || s.group <= 0 || s.C % s.group || s.K % s.group) fail("conv_transpose", "invalid shape");
  const int64_t cg = s.C / s.group, kg = s.K / s.group, taps = s.kh * s.kw, hw = s.H * s.W;
  for (int64_t k = 0; k < s.K; ++k) std::fill(y + k * s.OH * s.OW, y + (k + 1) * s.OH * s.OW, bias ? bias[k] : 0.f);
  for (int64_t g = 0; g < s.group; ++g) {
    // cols[kg * taps, H * W] = packed[kg * taps, cg] * x_g[cg, H * W]
    gemm_f32(int(kg * taps), int(hw), int(cg), packed_w + g * kg * taps * cg, x + g * cg * hw, false, nullptr, true,
             1.f, 0.f, cols);
    for (int64_t k = 0; k < kg; ++k) {
      float* yk = y + (g * kg + k) * s.OH * s.OW;
      for (int64_t i = 0; i < s.kh; ++i)
        for (int64_t j = 0; j < s.kw; ++j) {
          const float* cr = cols + ((k * s.kh + i) * s.kw + j) * hw;
          for (int64_t h = 0; h < s.H; ++h) {
            const int64_t oh = h * s.sh - s.pt + i * s.dh;
            if (oh < 0 || oh >= s.OH) continue;
            float* yr = yk + oh * s.OW;
            const float* c = cr + h * s.W;
            for (int64_t w = 0; w < s.W; ++w) {
              const int64_t ow = w * s.sw - s.pl + j * s.dw;
              if (ow >= 0 && ow < s.OW) yr[ow] += c[w];
            }
          }
        }
    }
  }
}

}  // namespace fgq::ops
