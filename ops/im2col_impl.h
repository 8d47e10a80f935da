#pragma once
// Private to ops/: lowers a tile of conv output columns to a [C*KH*KW, cols] matrix so the
// convolution becomes one GEMM. Only a column tile is built at a time, so the scratch stays
// small (cache-resident) and tiles can be built by different threads.
#include <algorithm>
#include <cstring>

#include "ops/conv2d.h"

namespace fgq::ops::detail {

// col[r, j - n0] for row r = (c, kh, kw) and output position j in [n0, n1) (j = oh*OW + ow);
// col has row stride (n1 - n0). Out-of-image taps are zero (zero padding).
inline void im2col_tile(const Conv2dShape& s, const float* x, int n0, int n1, float* col) {
  const int OW = s.OW();
  const int cols = n1 - n0;
  for (int c = 0; c < s.C; ++c) {
    const float* xc = x + static_cast<long>(c) * s.H * s.W;
    for (int kh = 0; kh < s.KH; ++kh) {
      for (int kw = 0; kw < s.KW; ++kw) {
        float* row = col + (static_cast<long>(c * s.KH + kh) * s.KW + kw) * cols;
        const int dw = kw * s.DW - s.PL;  // iw = ow*SW + dw
        // Output columns whose tap lies inside the image: ow in [ow_lo, ow_hi).
        const int ow_lo = dw >= 0 ? 0 : std::min(OW, (-dw + s.SW - 1) / s.SW);
        const int ow_hi = std::max(ow_lo, std::min(OW, (s.W - dw + s.SW - 1) / s.SW));
        int j = n0;
        while (j < n1) {
          const int oh = j / OW;
          const int ow0 = j - oh * OW;
          const int ow1 = std::min(OW, ow0 + (n1 - j));  // end of this output row in the tile
          float* dst = row + (j - n0);
          const int ih = oh * s.SH - s.PT + kh * s.DH;
          if (ih < 0 || ih >= s.H) {
            std::memset(dst, 0, sizeof(float) * (ow1 - ow0));
          } else {
            const float* src = xc + static_cast<long>(ih) * s.W + dw;
            const int a = std::clamp(ow_lo, ow0, ow1), b = std::clamp(ow_hi, a, ow1);
            for (int ow = ow0; ow < a; ++ow) dst[ow - ow0] = 0.f;
            if (s.SW == 1) {
              std::memcpy(dst + (a - ow0), src + a, sizeof(float) * (b - a));
            } else {
              for (int ow = a; ow < b; ++ow) dst[ow - ow0] = src[ow * s.SW];
            }
            for (int ow = b; ow < ow1; ++ow) dst[ow - ow0] = 0.f;
          }
          j += ow1 - ow0;
        }
      }
    }
  }
}

}  // namespace fgq::ops::detail
