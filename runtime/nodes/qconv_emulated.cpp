// QConv on the FP32 convolution kernels: the integer-exact simulation. The stored integers
// (minus the zero point) and the int8 weights become floats, the float convolution sums their
// products exactly while every partial sum stays below 2^24 in magnitude, and the epilogue is
// ops/qconv/qconv.h's, operation for operation. So it computes what the integer kernels compute,
// on independent code: a network-level check of them, and what --simulate runs.
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "ops/conv2d.h"
#include "ops/qlinear.h"
#include "runtime/nodes/qconv_emulated.h"

namespace fgq::rt {
namespace {

int load_q(ops::QType t, const uint8_t* p, int64_t c) {
  switch (t) {
    case ops::QType::U8: return p[c];
    case ops::QType::S8: return int8_t(p[c]);
    case ops::QType::U4: return (p[c / 2] >> (4 * (c & 1))) & 15;
    default: return 0;
  }
}

void store_q(ops::QType t, uint8_t* p, int64_t c, int v) {
  if (t == ops::QType::U4) {
    uint8_t& b = p[c / 2];
    b = (c & 1) ? uint8_t((b & 0x0F) | (v << 4)) : uint8_t((b & 0xF0) | v);
  } else {
    p[c] = uint8_t(v);
  }
}

struct Emulated {
  ops::QConvParams p;
  std::vector<float> w, mult, bias;
  std::string node;
  mutable std::atomic<bool> warned{false};
};

}  // namespace

Compiled compile_qconv_emulated(const ops::QConvParams& p, const std::vector<int8_t>& w,
                                const std::vector<float>& mult, const std::vector<float>& bias,
                                const uint8_t* x, const void* residual, uint8_t* y, int max_batch,
                                const std::string& node) {
  auto e = std::make_shared<Emulated>();
  e->p = p;
  e->w.assign(w.begin(), w.end());
  e->mult = mult;
  e->bias = bias;
  e->node = node;
  const ops::QConvGeometry& g = p.g;
  const int64_t in_floats = int64_t(g.C) * g.H * g.W, out_floats = int64_t(g.K) * g.OH() * g.OW();
  const size_t scratch = sizeof(float) * size_t(max_batch) * size_t(in_floats + out_floats);
  auto run = [e, x, residual, y, in_floats, out_floats](int batch, void* scratch_ptr) {
    const ops::QConvParams& p = e->p;
    const ops::QConvGeometry& g = p.g;
    float* xf = static_cast<float*>(scratch_ptr);
    float* acc = xf + int64_t(batch) * in_floats;
    ops::dequantize_nhwc(x, p.in_type, batch, g.C, g.H, g.W, 1.f, p.in_zero, xf);
    ops::Conv2dShape s;
    s.C = g.C, s.H = g.H, s.W = g.W, s.K = g.K, s.KH = g.KH, s.KW = g.KW;
    s.SH = g.SH, s.SW = g.SW, s.PT = g.PT, s.PL = g.PL, s.PB = g.PB, s.PR = g.PR, s.DH = g.DH, s.DW = g.DW;
    ops::conv2d_f32_batch(s, batch, xf, in_floats, e->w.data(), nullptr, nullptr, false, acc, out_floats);

    const int64_t pixels = int64_t(g.OH()) * g.OW();
    const bool f32 = p.out_type == ops::QType::F32;
    const int64_t ypb = ops::qpixel_bytes(p.out_type, g.K), ycs = ops::qchannel_stride(p.out_type, g.K);
    const int64_t rpb = p.has_residual ? ops::qpixel_bytes(p.res_type, g.K) : 0;
    int lo_q = 0, hi_q = 255;
    if (p.out_type == ops::QType::S8) lo_q = -128, hi_q = 127;
    if (p.out_type == ops::QType::U4) hi_q = 15;
    bool inexact = false;
    for (int b = 0; b < batch; ++b)
      for (int64_t m = 0; m < pixels; ++m) {
        const int64_t pix = int64_t(b) * pixels + m;
        uint8_t* yp = f32 ? nullptr : y + pix * ypb;
        for (int k = 0; k < g.K; ++k) {
          const float a = acc[(int64_t(b) * g.K + k) * pixels + m];
          inexact = inexact || !(std::fabs(a) < 16777216.f);
          float v = std::fma(a, e->mult[k], e->bias[k]);
          if (p.has_residual)
            v = std::fma(float(load_q(p.res_type, static_cast<const uint8_t*>(residual) + pix * rpb, k)),
                         p.res_scale, v);
          v = v > p.clamp_lo ? v : p.clamp_lo;
          v = v < p.clamp_hi ? v : p.clamp_hi;
          if (f32) {
            reinterpret_cast<float*>(y)[(int64_t(b) * g.K + k) * pixels + m] = v;
            continue;
          }
          const float r = std::nearbyint(v);
          store_q(p.out_type, yp, k, r < float(lo_q) ? lo_q : r > float(hi_q) ? hi_q : int(r));
        }
        if (!f32)
          for (int64_t k = g.K; k < ycs; ++k) store_q(p.out_type, yp, k, 0);
      }
    if (inexact && !e->warned.exchange(true))
      std::fprintf(stderr, "fgq: warning: simulation of %s is not exact: an accumulator reached 2^24\n",
                   e->node.c_str());
  };
  return {run, scratch};
}

}  // namespace fgq::rt
