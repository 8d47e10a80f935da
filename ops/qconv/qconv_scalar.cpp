// Portable micro-kernel of ops/qconv (interface and layouts: qconv_ukernel.h): the same packed
// weights, indirection rows and tiling as the AVX-512 VNNI path, in plain C++ for a baseline
// x86-64 CPU (compiled with -march=x86-64). Multi-threaded through the common driver; the
// single-threaded, unpacked specification is qconv_reference.
//
// Accumulation is in uint32 (wrap-around like the SIMD paths: acc + comp is exact whenever the
// true sum fits int32, which the caller guarantees). The epilogue uses the same float operations
// as the specification (fmaf, max then min, nearbyintf under the default rounding mode).
//
// Everything here is in an anonymous namespace except the extern "C" entry point; no standard
// library (fmaf / nearbyintf come from libm through the builtins).
#include <cstddef>
#include <cstdint>

#include "ops/qconv/qconv_ukernel.h"

namespace fgq::ops::qk {
namespace {

constexpr int kMaxTile = kTileRows * kBlockVnni;

void epilogue(const Layer& L, const Task& T, int64_t m, int n, int width, const uint32_t* acc) {
  const uint8_t* rp =
      L.has_res ? static_cast<const uint8_t*>(T.res) + m * L.res_pixel_bytes : nullptr;
  const int64_t img = m / L.ohw, pix = m - img * L.ohw;
  int v[kBlockVnni];
  for (int i = 0; i < width; ++i) {
    const int k = n + i;
    const int32_t a = int32_t(acc[i] + uint32_t(L.comp[k]));
    float y = __builtin_fmaf(float(a), L.mult[k], L.bias[k]);
    if (rp) {
      int r = 0;
      if (k < L.res_cstride) {
        if (L.res_type == kU8) r = rp[k];
        else if (L.res_type == kS8) r = int8_t(rp[k]);
        else r = (rp[k / 2] >> (4 * (k & 1))) & 15;
      }
      y = __builtin_fmaf(float(r), L.res_scale, y);
    }
    y = y > L.lo ? y : L.lo;
    y = y < L.hi ? y : L.hi;
    if (L.out_type == kF32) {
      if (k < L.K) static_cast<float*>(T.y)[(img * L.K + k) * L.ohw + pix] = y;
      continue;
    }
    // y is inside the type's range (lo, hi were intersected with it); padding channels get 0.
    v[i] = k < L.K ? int(__builtin_nearbyintf(y)) : 0;
  }
  if (L.out_type == kF32) return;
  uint8_t* op = static_cast<uint8_t*>(T.y) + m * L.out_pixel_bytes;
  for (int i = 0; i < width && n + i < L.out_cstride; ++i) {
    const int k = n + i;
    if (L.out_type != kU4)
      op[k] = uint8_t(v[i]);
    else if ((k & 1) == 0)  // the u4 stride is even: channel k + 1 is in the storage too
      op[k / 2] = uint8_t(v[i] | (v[i + 1] << 4));
  }
}

void tile(const Layer& L, const Task& T, int64_t m, int mr, int n, int nb16, const int8_t* wb) {
  uint32_t acc[kMaxTile];
  const int width = 16 * nb16;
  for (int i = 0; i < mr * width; ++i) acc[i] = 0;
  const int taps = L.taps, groups = L.groups;
  const int8_t* wp = wb;
  for (int t = 0; t < taps; ++t) {
    const uint8_t* a[kTileRows];
    for (int p = 0; p < mr; ++p)
      a[p] = T.rows ? T.rows[(m - T.m0 + p) * taps + t] : T.x + (m + p - T.x_m0) * T.x_row_bytes;
    for (int g = 0; g < groups; ++g) {
      for (int p = 0; p < mr; ++p) {
        const uint8_t* x = a[p] + 4 * g;
        uint32_t* ap = acc + p * width;
        for (int j = 0; j < width; ++j) {
          // vector j / 16, lane j % 16: bytes 4 * (j % 16) .. + 3 of that vector
          const int8_t* wj = wp + (j / 16) * 64 + (j % 16) * 4;
          ap[j] += uint32_t(x[0]) * uint32_t(int32_t(wj[0])) +
                   uint32_t(x[1]) * uint32_t(int32_t(wj[1])) +
                   uint32_t(x[2]) * uint32_t(int32_t(wj[2])) +
                   uint32_t(x[3]) * uint32_t(int32_t(wj[3]));
        }
      }
      wp += 64 * nb16;
    }
  }
  for (int p = 0; p < mr; ++p) epilogue(L, T, m + p, n, width, acc + p * width);
}

}  // namespace

extern "C" void fgq_qconv_ukernel_scalar(const Layer* layer, const Task* task) {
  const Layer& L = *layer;
  const Task& T = *task;
  const int8_t* w = static_cast<const int8_t*>(L.w);
  const int64_t block_bytes = int64_t(L.taps) * L.groups * 256;
  for (int n = T.n0; n < T.n1; n += kBlockVnni) {
    const int width = T.n1 - n < kBlockVnni ? T.n1 - n : kBlockVnni;
    const int8_t* wb = w + (n / kBlockVnni) * block_bytes;
    for (int64_t m = T.m0; m < T.m1; m += kTileRows) {
      const int mr = T.m1 - m < kTileRows ? int(T.m1 - m) : kTileRows;
      tile(L, T, m, mr, n, (width + 15) / 16, wb);
    }
  }
}

}  // namespace fgq::ops::qk
