// AVX2 micro-kernel of ops/qconv (interface and layouts: qconv_ukernel.h).
//
// Exactness without VNNI: vpmaddubsw (u8 x s8 pairs summed into int16) saturates (255 * 127 * 2
// = 64770 > 32767), so it is not used. The driver widens the input to int16 (x - in_zero, -255..
// 255) into the scratch once per run and packs the weights as int16 pairs at make time; vpmaddwd
// then multiplies 2 input channels x 8 output channels into int32 exactly (|2 * 255 * 128| fits
// easily) and vpaddd accumulates: 16 MACs per vpmaddwd, no saturation anywhere, no compensation
// term (the zero point is already subtracted; padding rows are zeros).
//
// Register tile: MR <= 6 output pixels x NB <= 2 ymm of 8 output channels (12 accumulators +
// 2 weights + 1 broadcast + 1 product = 16 ymm).
//
// Compiled with -march=x86-64-v3: everything here is in an anonymous namespace (internal
// linkage) except the one extern "C" entry point; no standard library.
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "ops/qconv/qconv_ukernel.h"

namespace fgq::ops::qk {
namespace {

#define FGQ_INLINE inline __attribute__((always_inline))

FGQ_INLINE int32_t load32(const void* p) {
  int32_t v;
  __builtin_memcpy(&v, p, 4);
  return v;
}
FGQ_INLINE void store32(void* p, int32_t v) { __builtin_memcpy(p, &v, 4); }
FGQ_INLINE __m128i load64(const void* p) {
  return _mm_loadl_epi64(static_cast<const __m128i*>(p));
}

// 8 residual values (channels n..n+7) as int32; lanes past the storage read as 0.
FGQ_INLINE __m256i load_residual(const Layer& L, const uint8_t* rp, int n) {
  const int rv = L.res_cstride - n;
  if (L.res_type == kU4) {  // 4 bytes = 8 nibbles (the residual stride is a multiple of 8)
    if (rv < 8) return _mm256_setzero_si256();
    const __m128i b = _mm_cvtsi32_si128(load32(rp + n / 2));
    const __m128i lo = _mm_and_si128(b, _mm_set1_epi8(0x0F));
    const __m128i hi = _mm_and_si128(_mm_srli_epi16(b, 4), _mm_set1_epi8(0x0F));
    return _mm256_cvtepu8_epi32(_mm_unpacklo_epi8(lo, hi));
  }
  __m128i b;
  if (rv >= 8)
    b = load64(rp + n);
  else if (rv >= 4)  // the stride is a multiple of 4
    b = _mm_cvtsi32_si128(load32(rp + n));
  else
    return _mm256_setzero_si256();
  return L.res_type == kU8 ? _mm256_cvtepu8_epi32(b) : _mm256_cvtepi8_epi32(b);
}

// Epilogue for output pixel m, channels n..n+7.
FGQ_INLINE void epilogue(const Layer& L, const Task& T, int64_t m, int n, __m256i acc) {
  __m256 y = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc), _mm256_loadu_ps(L.mult + n),
                             _mm256_loadu_ps(L.bias + n));
  if (L.has_res) {
    const uint8_t* rp = static_cast<const uint8_t*>(T.res) + m * L.res_pixel_bytes;
    const __m256i r = load_residual(L, rp, n);
    y = _mm256_fmadd_ps(_mm256_cvtepi32_ps(r), _mm256_set1_ps(L.res_scale), y);
  }
  y = _mm256_max_ps(y, _mm256_set1_ps(L.lo));
  y = _mm256_min_ps(y, _mm256_set1_ps(L.hi));
  if (L.out_type == kF32) {
    const int64_t img = m / L.ohw, pix = m - img * L.ohw;
    float* base = static_cast<float*>(T.y) + (img * L.K + n) * L.ohw + pix;
    alignas(32) float tmp[8];
    _mm256_store_ps(tmp, y);
    const int nk = L.K - n < 8 ? L.K - n : 8;
    for (int i = 0; i < nk; ++i) base[i * L.ohw] = tmp[i];
    return;
  }
  // Lanes >= K are padding channels: written as 0. y is inside the type's range already.
  const __m256i keep = _mm256_cmpgt_epi32(_mm256_set1_epi32(L.K - n),
                                          _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  const __m256i v = _mm256_and_si256(_mm256_cvtps_epi32(y), keep);
  const __m128i w16 = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  uint8_t* op = static_cast<uint8_t*>(T.y) + m * L.out_pixel_bytes;
  const int sv = L.out_cstride - n;  // output lanes present in storage (0, 4 or 8+)
  if (L.out_type == kU4) {
    if (sv < 8) return;  // the u4 stride is a multiple of 8
    const __m128i b = _mm_packus_epi16(w16, w16);  // 8 bytes 0..15
    const __m128i nib = _mm_and_si128(_mm_or_si128(b, _mm_srli_epi16(b, 4)), _mm_set1_epi16(0xFF));
    store32(op + n / 2, _mm_cvtsi128_si32(_mm_packus_epi16(nib, nib)));
    return;
  }
  const __m128i b = L.out_type == kU8 ? _mm_packus_epi16(w16, w16) : _mm_packs_epi16(w16, w16);
  if (sv >= 8)
    _mm_storel_epi64(reinterpret_cast<__m128i*>(op + n), b);
  else if (sv >= 4)
    store32(op + n, _mm_cvtsi128_si32(b));
}

// One register tile: pixels m..m+MR-1, channels n..n+8*NB-1, weights of the block at wb.
template <int MR, int NB>
void tile(const Layer& layer, const Task& task, int64_t m, int n, const int16_t* wb) {
  // Local copies: the output stores go through byte pointers, which may alias anything
  // reachable from layer / task, so the epilogue would reload their fields after each store.
  const Layer L = layer;
  const Task T = task;
  __m256i acc[MR][NB];
#pragma GCC unroll 8
  for (int p = 0; p < MR; ++p)
#pragma GCC unroll 2
    for (int j = 0; j < NB; ++j) acc[p][j] = _mm256_setzero_si256();

  const int taps = L.taps, groups = L.groups;
  const int16_t* wp = wb;
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
      __m256i w[NB];
#pragma GCC unroll 2
      for (int j = 0; j < NB; ++j) w[j] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wp + 16 * j));
      wp += 16 * NB;
#pragma GCC unroll 8
      for (int p = 0; p < MR; ++p) {
        const __m256i b = _mm256_set1_epi32(load32(a[p] + 4 * g));
#pragma GCC unroll 2
        for (int j = 0; j < NB; ++j)
          acc[p][j] = _mm256_add_epi32(acc[p][j], _mm256_madd_epi16(b, w[j]));
      }
    }
  }

#pragma GCC unroll 8
  for (int p = 0; p < MR; ++p)
#pragma GCC unroll 2
    for (int j = 0; j < NB; ++j) epilogue(L, T, m + p, n + 8 * j, acc[p][j]);
}

using TileFn = void (*)(const Layer&, const Task&, int64_t, int, const int16_t*);

#define FGQ_ROW(mr) {tile<mr, 1>, tile<mr, 2>}
constexpr TileFn kTiles[kTileRows][2] = {FGQ_ROW(1), FGQ_ROW(2), FGQ_ROW(3),
                                         FGQ_ROW(4), FGQ_ROW(5), FGQ_ROW(6)};
#undef FGQ_ROW

}  // namespace

extern "C" void fgq_qconv_ukernel_avx2(const Layer* layer, const Task* task) {
  const Layer& L = *layer;
  const Task& T = *task;
  const int16_t* w = static_cast<const int16_t*>(L.w);
  const int64_t block_elems = int64_t(L.taps) * L.groups * 32;
  for (int n = T.n0; n < T.n1; n += kBlockAvx2) {
    const int nb = T.n1 - n < kBlockAvx2 ? 1 : 2;
    const int16_t* wb = w + (n / kBlockAvx2) * block_elems;
    for (int64_t m = T.m0; m < T.m1; m += kTileRows) {
      const int mr = T.m1 - m < kTileRows ? int(T.m1 - m) : kTileRows;
      kTiles[mr - 1][nb - 1](L, T, m, n, wb);
    }
  }
}

}  // namespace fgq::ops::qk
