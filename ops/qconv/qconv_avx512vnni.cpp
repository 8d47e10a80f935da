// AVX-512 VNNI micro-kernel of ops/qconv (interface and layouts: qconv_ukernel.h).
//
// Register tile: MR <= 6 output pixels x NB <= 4 zmm of 16 output channels (up to 24 int32
// accumulators). Per 4-channel input group: NB weight loads (16 oc x 4 ic each), per pixel one
// vpbroadcastd of its 4 input bytes and NB vpdpbusd (u8 input x s8 weight): 24 vpdpbusd per
// 4 + 6 loads, 29 of the 32 zmm. Taps come from the driver's row pointers (indirection, or one
// pointer per fused kernel row) or, for 1x1 stride 1, from the pixel index (a plain GEMM).
// The epilogue (compensation, multiplier, bias, residual, clamp, round, narrowing masked
// store; 64 u8/s8 channels of a pixel leave in one 64-byte store) runs on the accumulators
// before they leave the registers. Lane masks per 16-channel vector are computed once a tile.
//
// Compiled with -march=x86-64-v4 -mavx512vnni: everything here is in an anonymous namespace
// (internal linkage) except the one extern "C" entry point; no standard library.
// GCC 12 bug 105593: false -Wmaybe-uninitialized inside <avx512fintrin.h>.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#include <cstddef>
#include <cstdint>

#include "ops/qconv/qconv_ukernel.h"

namespace fgq::ops::qk {
namespace {

#define FGQ_INLINE inline __attribute__((always_inline))

FGQ_INLINE int32_t load32(const uint8_t* p) {
  int32_t v;
  __builtin_memcpy(&v, p, 4);
  return v;
}

// Bits 0..n-1 of a 16-lane mask (n clamped to 0..16).
FGQ_INLINE __mmask16 lanes16(int n) {
  return n <= 0 ? __mmask16(0) : n >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << n) - 1);
}

// What the epilogue needs, copied into a local at the start of a tile: the stores go through
// byte pointers, which may alias anything reachable from the Layer, so reading Layer fields
// after a store would reload them.
struct Epi {
  const int32_t* comp;
  const float* mult;
  const float* bias;
  const uint8_t* res;
  uint8_t* y;
  int64_t opb, rpb, ohw;
  int K, ocs, rcs, out_type, res_type;
  bool has_res, has_comp;
  __m512 lo, hi, rscale;
};

FGQ_INLINE Epi make_epi(const Layer& L, const Task& T) {
  Epi e;
  e.comp = L.comp, e.mult = L.mult, e.bias = L.bias;
  e.res = static_cast<const uint8_t*>(T.res);
  e.y = static_cast<uint8_t*>(T.y);
  e.opb = L.out_pixel_bytes, e.rpb = L.res_pixel_bytes, e.ohw = L.ohw;
  e.K = L.K, e.ocs = L.out_cstride, e.rcs = L.res_cstride;
  e.out_type = L.out_type, e.res_type = L.res_type, e.has_res = L.has_res != 0;
  e.has_comp = L.has_comp != 0;
  e.lo = _mm512_set1_ps(L.lo), e.hi = _mm512_set1_ps(L.hi), e.rscale = _mm512_set1_ps(L.res_scale);
  return e;
}

// Lane masks of one 16-channel vector at channel n, the same for every pixel of a tile.
struct Masks {
  __mmask16 k;    // lanes < K (others are padding channels: written as 0)
  __mmask16 res;  // residual bytes present in storage (u4: 8 bytes at most)
  __mmask16 out;  // output bytes present in storage (u4: 8 bytes at most)
};

FGQ_INLINE Masks make_masks(const Epi& e, int n) {
  Masks mk;
  mk.k = lanes16(e.K - n);
  const int rv = e.rcs - n, ov = e.ocs - n;
  mk.res = lanes16(e.res_type == kU4 ? (rv >= 16 ? 8 : rv / 2) : rv);
  mk.out = lanes16(e.out_type == kU4 ? (ov >= 16 ? 8 : ov / 2) : ov);
  return mk;
}

// Epilogue up to the clamp for one output pixel (residual row rp), channels n..n+15.
FGQ_INLINE __m512 epi_float(const Epi& e, const Masks& mk, const uint8_t* rp, int n,
                            __m512i acc) {
  if (e.has_comp) acc = _mm512_add_epi32(acc, _mm512_loadu_si512(e.comp + n));
  __m512 y = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), _mm512_loadu_ps(e.mult + n),
                             _mm512_loadu_ps(e.bias + n));
  if (e.has_res) {
    __m512i r;
    if (e.res_type == kU8) {
      r = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(mk.res, rp + n));
    } else if (e.res_type == kS8) {
      r = _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(mk.res, rp + n));
    } else {  // u4: 8 bytes = 16 nibbles, the even channel in the low nibble
      const __m128i b = _mm_maskz_loadu_epi8(mk.res, rp + n / 2);
      const __m128i lo = _mm_and_si128(b, _mm_set1_epi8(0x0F));
      const __m128i hi = _mm_and_si128(_mm_srli_epi16(b, 4), _mm_set1_epi8(0x0F));
      r = _mm512_cvtepu8_epi32(_mm_unpacklo_epi8(lo, hi));
    }
    y = _mm512_fmadd_ps(_mm512_cvtepi32_ps(r), e.rscale, y);
  }
  y = _mm512_max_ps(y, e.lo);
  return _mm512_min_ps(y, e.hi);
}

// F32 output: channels n..n+15 (< K) of the pixel whose channel 0 is at fp, ohw apart (NCHW).
FGQ_INLINE void store_f32(const Epi& e, float* fp, int n, __m512 y) {
  alignas(64) float tmp[16];
  _mm512_store_ps(tmp, y);
  const int nk = e.K - n < 16 ? e.K - n : 16;
  float* f = fp + n * e.ohw;
  for (int i = 0; i < nk; ++i) f[i * e.ohw] = tmp[i];
}

// Integer output: rounds (current mode: to nearest even) to int32, lanes >= K (padding
// channels) become 0. y is inside the type's range already (lo, hi intersected with it).
FGQ_INLINE __m512i round_out(const Masks& mk, __m512 y) {
  return _mm512_maskz_cvtps_epi32(mk.k, y);
}

// Integer output: stores channels n..n+15 (those inside the storage) of the pixel at op.
FGQ_INLINE void store_int(const Epi& e, const Masks& mk, uint8_t* op, int n, __m512i v) {
  if (e.out_type == kU8) {
    _mm_mask_storeu_epi8(op + n, mk.out, _mm512_cvtusepi32_epi8(v));
  } else if (e.out_type == kS8) {
    _mm_mask_storeu_epi8(op + n, mk.out, _mm512_cvtsepi32_epi8(v));
  } else {  // u4: pairs of bytes (b0, b1) -> b0 | b1 << 4
    const __m128i b = _mm512_cvtusepi32_epi8(v);
    const __m128i w = _mm_or_si128(b, _mm_srli_epi16(b, 4));
    _mm_mask_storeu_epi8(op + n / 2, mk.out, _mm_cvtepi16_epi8(w));
  }
}

// Integer u8 / s8 output, 64 channels n..n+63 all inside the storage: one 64-byte store.
// packs / packus interleave the four vectors per 128-bit lane (dword 4L + q holds lanes
// 4L..4L+3 of vector q); the dword permutation puts vector q's 16 bytes at bytes 16q...
FGQ_INLINE void store_int64(const Epi& e, uint8_t* op, int n, __m512i v0, __m512i v1,
                            __m512i v2, __m512i v3) {
  const __m512i a = _mm512_packs_epi32(v0, v1), b = _mm512_packs_epi32(v2, v3);
  const __m512i c = e.out_type == kU8 ? _mm512_packus_epi16(a, b) : _mm512_packs_epi16(a, b);
  const __m512i idx = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  _mm512_storeu_si512(op + n, _mm512_permutexvar_epi32(idx, c));
}

// One register tile: pixels m..m+MR-1, channels n..n+16*NB-1, weights of the block at wb.
template <int MR, int NB>
void tile(const Layer& L, const Task& T, int64_t m, int n, const int8_t* wb) {
  __m512i acc[MR][NB];
#pragma GCC unroll 8
  for (int p = 0; p < MR; ++p)
#pragma GCC unroll 4
    for (int j = 0; j < NB; ++j) acc[p][j] = _mm512_setzero_si512();

  const int taps = L.taps, groups = L.groups;
  const int8_t* wp = wb;
  for (int t = 0; t < taps; ++t) {
    const uint8_t* a[MR];
    if (T.rows) {
      const uint8_t* const* r = T.rows + (m - T.m0) * taps + t;
#pragma GCC unroll 8
      for (int p = 0; p < MR; ++p) a[p] = r[p * taps];
    } else {
#pragma GCC unroll 8
      for (int p = 0; p < MR; ++p) a[p] = T.x + (m + p - T.x_m0) * T.x_row_bytes;
    }
    for (int g = 0; g < groups; ++g) {
      __m512i w[NB];
#pragma GCC unroll 4
      for (int j = 0; j < NB; ++j) w[j] = _mm512_loadu_si512(wp + 64 * j);
      wp += 64 * NB;
#pragma GCC unroll 8
      for (int p = 0; p < MR; ++p) {
        const __m512i b = _mm512_set1_epi32(load32(a[p] + 4 * g));
#pragma GCC unroll 4
        for (int j = 0; j < NB; ++j) acc[p][j] = _mm512_dpbusd_epi32(acc[p][j], b, w[j]);
      }
    }
  }

  const Epi e = make_epi(L, T);
  Masks mk[NB];
#pragma GCC unroll 4
  for (int j = 0; j < NB; ++j) mk[j] = make_masks(e, n + 16 * j);
  const bool store64 = NB == 4 && e.out_type != kU4 && e.ocs - n >= 64;
#pragma GCC unroll 8
  for (int p = 0; p < MR; ++p) {
    const int64_t mp = m + p;
    const uint8_t* rp = e.has_res ? e.res + mp * e.rpb : nullptr;
    if (e.out_type == kF32) {
      const int64_t img = mp / e.ohw;
      float* fp = reinterpret_cast<float*>(e.y) + img * e.K * e.ohw + (mp - img * e.ohw);
#pragma GCC unroll 4
      for (int j = 0; j < NB; ++j)
        store_f32(e, fp, n + 16 * j, epi_float(e, mk[j], rp, n + 16 * j, acc[p][j]));
      continue;
    }
    uint8_t* op = e.y + mp * e.opb;
    __m512i v[NB];
#pragma GCC unroll 4
    for (int j = 0; j < NB; ++j)
      v[j] = round_out(mk[j], epi_float(e, mk[j], rp, n + 16 * j, acc[p][j]));
    if (store64) {
      store_int64(e, op, n, v[0], v[NB > 1 ? 1 : 0], v[NB > 2 ? 2 : 0], v[NB > 3 ? 3 : 0]);
    } else {
#pragma GCC unroll 4
      for (int j = 0; j < NB; ++j) store_int(e, mk[j], op, n + 16 * j, v[j]);
    }
  }
}

using TileFn = void (*)(const Layer&, const Task&, int64_t, int, const int8_t*);

#define FGQ_ROW(mr) {tile<mr, 1>, tile<mr, 2>, tile<mr, 3>, tile<mr, 4>}
constexpr TileFn kTiles[kTileRows][4] = {FGQ_ROW(1), FGQ_ROW(2), FGQ_ROW(3),
                                         FGQ_ROW(4), FGQ_ROW(5), FGQ_ROW(6)};
#undef FGQ_ROW

}  // namespace

extern "C" void fgq_qconv_ukernel_avx512vnni(const Layer* layer, const Task* task) {
  const Layer& L = *layer;
  const Task& T = *task;
  const int8_t* w = static_cast<const int8_t*>(L.w);
  const int64_t block_bytes = int64_t(L.taps) * L.groups * 256;
  for (int n = T.n0; n < T.n1; n += kBlockVnni) {
    const int width = T.n1 - n < kBlockVnni ? T.n1 - n : kBlockVnni;
    const int nb = (width + 15) / 16;
    const int8_t* wb = w + (n / kBlockVnni) * block_bytes;
    for (int64_t m = T.m0; m < T.m1; m += kTileRows) {
      const int mr = T.m1 - m < kTileRows ? int(T.m1 - m) : kTileRows;
      kTiles[mr - 1][nb - 1](L, T, m, n, wb);
    }
  }
}

}  // namespace fgq::ops::qk
