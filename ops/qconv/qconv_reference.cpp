// The specification of ops/qconv (qconv.h): plain loops, one thread, no packing, the arithmetic
// of one output element written out literally. Compiled with -ffp-contract=off like every file
// in ops/qconv, so the only fused operations are the explicit std::fma.
#include <cmath>
#include <cstdint>

#include "ops/qconv/qconv.h"

namespace fgq::ops {
namespace {

// Channel c of a pixel stored at p with the given type (U8, S8 or U4).
int load_q(QType t, const uint8_t* p, int64_t c) {
  switch (t) {
    case QType::U8: return p[c];
    case QType::S8: return int8_t(p[c]);
    case QType::U4: return (p[c / 2] >> (4 * (c & 1))) & 15;
    case QType::F32: break;
  }
  return 0;
}

void store_q(QType t, uint8_t* p, int64_t c, int v) {
  if (t == QType::U4) {
    uint8_t& b = p[c / 2];
    b = (c & 1) ? uint8_t((b & 0x0F) | (v << 4)) : uint8_t((b & 0xF0) | v);
  } else {
    p[c] = uint8_t(v);  // S8: two's complement
  }
}

}  // namespace

void qconv_reference(const QConvParams& p, int batch, const uint8_t* x, const int8_t* w,
                     const float* mult, const float* bias, const void* residual, void* y) {
  const QConvGeometry& g = p.g;
  const int OH = g.OH(), OW = g.OW();
  const int64_t xpb = qpixel_bytes(p.in_type, g.C);
  const int64_t ypb = qpixel_bytes(p.out_type, g.K);
  const int64_t ycs = qchannel_stride(p.out_type, g.K);
  const int64_t rpb = p.has_residual ? qpixel_bytes(p.res_type, g.K) : 0;
  const bool f32 = p.out_type == QType::F32;
  int lo_q = 0, hi_q = 255;  // the integer output's range
  if (p.out_type == QType::S8) lo_q = -128, hi_q = 127;
  if (p.out_type == QType::U4) hi_q = 15;

  for (int b = 0; b < batch; ++b) {
    const uint8_t* xb = x + int64_t(b) * g.H * g.W * xpb;
    for (int oh = 0; oh < OH; ++oh)
      for (int ow = 0; ow < OW; ++ow) {
        const int64_t m = (int64_t(b) * OH + oh) * OW + ow;  // output pixel over the batch
        for (int k = 0; k < g.K; ++k) {
          int64_t acc = 0;  // the int32 accumulator; int64 so that partial sums cannot overflow
          for (int c = 0; c < g.C; ++c)
            for (int r = 0; r < g.KH; ++r)
              for (int s = 0; s < g.KW; ++s) {
                const int ih = oh * g.SH - g.PT + r * g.DH, iw = ow * g.SW - g.PL + s * g.DW;
                int xv = p.in_zero;  // padding reads the zero point
                if (ih >= 0 && ih < g.H && iw >= 0 && iw < g.W)
                  xv = load_q(p.in_type, xb + (int64_t(ih) * g.W + iw) * xpb, c);
                acc += int64_t(xv - p.in_zero) * w[((int64_t(k) * g.C + c) * g.KH + r) * g.KW + s];
              }
          float v = std::fma(float(int32_t(acc)), mult[k], bias[k]);
          if (p.has_residual) {
            const auto* rp = static_cast<const uint8_t*>(residual) + m * rpb;
            v = std::fma(float(load_q(p.res_type, rp, k)), p.res_scale, v);
          }
          v = v > p.clamp_lo ? v : p.clamp_lo;
          v = v < p.clamp_hi ? v : p.clamp_hi;
          if (f32) {
            static_cast<float*>(y)[((int64_t(b) * g.K + k) * OH + oh) * OW + ow] = v;
            continue;
          }
          const float r = std::nearbyint(v);  // ties to even (default rounding mode)
          const int q = r < float(lo_q) ? lo_q : r > float(hi_q) ? hi_q : int(r);
          store_q(p.out_type, static_cast<uint8_t*>(y) + m * ypb, k, q);
        }
        // Padding channels of an integer output are written as 0.
        if (!f32)
          for (int64_t k = g.K; k < ycs; ++k)
            store_q(p.out_type, static_cast<uint8_t*>(y) + m * ypb, k, 0);
      }
  }
}

}  // namespace fgq::ops
