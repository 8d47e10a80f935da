// AVX-512 VNNI micro-kernel of ops/qconv (interface and layouts: qconv_ukernel.h).
//
// Register tile: MR <= 6 output pixels x NB <= 4 zmm of 16 output channels (up to 24 int32
// accumulators). Per 4-channel input group: NB weight loads (16 oc x 4 ic each), per pixel one
// vpbroadcastd of its 4 input bytes and NB vpdpbusd (u8 input x s8 weight): 24 vpdpbusd per
// 4 + 6 loads, 29 of the 32 zmm. Taps come from the driver's row pointers (indirection, or one
// pointer per fused kernel row) or, for 1x1 stride 1, from the pixel index (a plain GEMM).
// The accumulators start at the compensation (in_zero != 0). The epilogue (multiplier, bias,
// residual, clamp, round, narrowing masked store; 64 u8/s8 channels of a pixel leave in one
// 64-byte store) runs on the accumulators before they leave the registers. Lane masks per
// 16-channel vector are computed once a tile. The common case (Layer::fast_epi: u8/s8 output,
// integer clamp bounds, 64 channels < K) skips the float clamp and the masks (epi_fast); in a
// block with a short reduction it is software-pipelined into the next tile's dot products
// (block_pipelined).
//
// Resident ternary weights (make_qconv_ternary) are expanded into int8 vectors with two
// AVX-512BW instructions per vector: a block at a time into a per-thread buffer, by the
// block's first tile as it computes (the other tiles then read int8), or by every tile for a
// layer of 1 or 2 tiles. While a block's tiles run, the next block's weights are prefetched
// into L2, during the task's last block the first block the thread will likely run in the next
// layer (Task::next_w). The first conv's dense input (qconv.cpp) is made by
// fgq_qconv_dense_row_avx512vnni.
//
// Compiled with -march=x86-64-v4 -mavx512vnni: everything here is in an anonymous namespace
// (internal linkage) except the extern "C" entry points; no standard library.
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
  bool has_res;
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
// acc already includes the compensation (the accumulators start at comp).
FGQ_INLINE __m512 epi_float(const Epi& e, const Masks& mk, const uint8_t* rp, int n,
                            __m512i acc) {
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

// The fast epilogue (Layer::fast_epi): MR pixels x 64 channels n..n+63, all < K, u8 (S8OUT 0)
// or s8 (1) output, residual none (RES 0), u8 (1) or s8 (2). No float clamp: the value stays
// inside int32 (make_qconv checked), cvtps2dq rounds to nearest even, the saturating packs
// clamp to the type's range and a narrower integer clamp (clamp: its bounds, or null) is applied
// to the 64 bytes. Per 16 outputs: cvtdq2ps, fma, cvtps2dq (+ vpmovzxbd / vpmovsxbd, cvtdq2ps,
// fma for a residual) and a quarter of the 64-byte pack (+ clamp) + store.
template <int RES, int S8OUT>
FGQ_INLINE void epi_fast(const Epi& e, int64_t mp, int n, const __m512* mu, const __m512* bi,
                         const __m512i* clamp, __m512i a0, __m512i a1, __m512i a2, __m512i a3) {
  const uint8_t* rp = RES ? e.res + mp * e.rpb + n : nullptr;
  const __m512i acc[4] = {a0, a1, a2, a3};
  __m512i v[4];
#pragma GCC unroll 4
  for (int j = 0; j < 4; ++j) {
    __m512 y = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[j]), mu[j], bi[j]);
    if (RES) {
      const __m128i rb = _mm_loadu_si128(reinterpret_cast<const __m128i*>(rp + 16 * j));
      const __m512i r = RES == 1 ? _mm512_cvtepu8_epi32(rb) : _mm512_cvtepi8_epi32(rb);
      y = _mm512_fmadd_ps(_mm512_cvtepi32_ps(r), e.rscale, y);
    }
    v[j] = _mm512_cvtps_epi32(y);
  }
  const __m512i a = _mm512_packs_epi32(v[0], v[1]), b = _mm512_packs_epi32(v[2], v[3]);
  __m512i c = S8OUT ? _mm512_packs_epi16(a, b) : _mm512_packus_epi16(a, b);
  if (clamp)  // a clamp narrower than the type's range, on the bytes (Layer::fast_clamp)
    c = S8OUT ? _mm512_min_epi8(_mm512_max_epi8(c, clamp[0]), clamp[1])
              : _mm512_min_epu8(_mm512_max_epu8(c, clamp[0]), clamp[1]);
  const __m512i idx = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  _mm512_storeu_si512(e.y + mp * e.opb + n, _mm512_permutexvar_epi32(idx, c));
}

// epi_fast for the MR pixels m.. of a tile (accumulators acc[p][0..3]).
template <int MR, int RES, int S8OUT>
FGQ_INLINE void epi_fast_tile(const Epi& e, int64_t m, int n, const __m512* mu, const __m512* bi,
                              const __m512i* clamp, const __m512i (&acc)[MR][4]) {
#pragma GCC unroll 8
  for (int p = 0; p < MR; ++p)
    epi_fast<RES, S8OUT>(e, m + p, n, mu, bi, clamp, acc[p][0], acc[p][1], acc[p][2], acc[p][3]);
}

// Resident ternary weights (Layer::resident): vpshufb of the 16 level bytes broadcast to each
// 128-bit lane puts oc o's level in the 4 bytes of lane o (kLevelIdx), zeroed where the
// nonzero mask is clear, then negated where the negative mask is set.
alignas(64) constexpr int8_t kLevelIdx[64] = {
    0,  0,  0,  0,  1,  1,  1,  1,  2,  2,  2,  2,  3,  3,  3,  3,
    4,  4,  4,  4,  5,  5,  5,  5,  6,  6,  6,  6,  7,  7,  7,  7,
    8,  8,  8,  8,  9,  9,  9,  9,  10, 10, 10, 10, 11, 11, 11, 11,
    12, 12, 12, 12, 13, 13, 13, 13, 14, 14, 14, 14, 15, 15, 15, 15};

FGQ_INLINE __m512i expand_ternary(const int8_t* masks, const int8_t* levels, int nb, int j,
                                  __m512i idx) {
  uint64_t nz, neg;
  __builtin_memcpy(&nz, masks + 8 * j, 8);
  __builtin_memcpy(&neg, masks + 8 * nb + 8 * j, 8);
  const __m512i lv =
      _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(levels + 16 * j)));
  const __m512i v = _mm512_maskz_shuffle_epi8(_cvtu64_mask64(nz), lv, idx);
  return _mm512_mask_sub_epi8(v, _cvtu64_mask64(neg), _mm512_setzero_si512(), v);
}

// The input rows of pixels m..m+MR-1 at tap t (see Task::rows).
template <int MR>
FGQ_INLINE void tap_rows(const Task& T, int64_t m, int t, int taps, const uint8_t* (&a)[MR]) {
  if (T.rows && T.tap_stride) {
    const uint8_t* const* r = T.rows + (m - T.m0);
#pragma GCC unroll 8
    for (int p = 0; p < MR; ++p) a[p] = r[p] + t * T.tap_stride;
  } else if (T.rows) {
    const uint8_t* const* r = T.rows + (m - T.m0) * taps + t;
#pragma GCC unroll 8
    for (int p = 0; p < MR; ++p) a[p] = r[p * taps];
  } else {
#pragma GCC unroll 8
    for (int p = 0; p < MR; ++p) a[p] = T.x + (m + p - T.x_m0) * T.x_row_bytes;
  }
}

// One reduction step: the NB weight vectors w against the 4 input bytes at a[p] + 4 g of each
// of the MR pixels (a broadcast and NB vpdpbusd per pixel).
template <int MR, int NB>
FGQ_INLINE void dot_step(__m512i (&acc)[MR][NB], const uint8_t* const (&a)[MR], int g,
                         const __m512i (&w)[NB]) {
#pragma GCC unroll 8
  for (int p = 0; p < MR; ++p) {
    const __m512i b = _mm512_set1_epi32(load32(a[p] + 4 * g));
#pragma GCC unroll 4
    for (int j = 0; j < NB; ++j) acc[p][j] = _mm512_dpbusd_epi32(acc[p][j], b, w[j]);
  }
}

// Up to `per_step` of the `left` cache lines at pf into L2 (the next block's weights, spread over
// a tile's reduction steps), or into L1 (HINT _MM_HINT_T0: a template argument, since without
// optimization _mm_prefetch is a macro that needs a constant).
template <int HINT = _MM_HINT_T1>
FGQ_INLINE void prefetch_step(const int8_t*& pf, int64_t& left, int per_step) {
  if (left <= 0) return;
  for (int q = 0; q < per_step; ++q)
    _mm_prefetch(reinterpret_cast<const char*>(pf + 64 * q), static_cast<_mm_hint>(HINT));
  pf += 64 * per_step, left -= per_step;
}

// A GEMM's next tile's input rows (Task::rows null: contiguous), pixels m..m+MR-1 (those <
// Task::m1), to prefetch into L1 over the reduction steps of the current tile. In the network
// a 1x1 layer's input comes from beyond its core's L1 and L2 (half of it written by the other
// core), and a tile's 6 rows of up to 2 KB are more streams than the hardware prefetchers
// follow in time (fgq-layer-bench, cold activations: res4b_branch2a 84 -> 71 us on 2 threads,
// 139 -> 130 us on one; warm unchanged). Not through row pointers (3x3, strided 1x1): that
// measured slower in the network.
struct RowPrefetch {
  const int8_t* p = nullptr;
  int64_t lines = 0;
  int per_step = 0;
};

FGQ_INLINE RowPrefetch next_rows(const Task& T, int64_t m, int MR, int64_t steps) {
  RowPrefetch r;
  if (T.rows || m >= T.m1) return r;
  const int64_t np = T.m1 - m < MR ? T.m1 - m : MR;
  r.p = reinterpret_cast<const int8_t*>(T.x + (m - T.x_m0) * T.x_row_bytes);
  r.lines = (np * T.x_row_bytes + 63) / 64;
  r.per_step = int((r.lines + steps - 1) / steps);
  return r;
}

// One register tile: pixels m..m+MR-1, channels n..n+16*NB-1, weights of the block at wb:
// resident ternary masks + levels (RES 1, 32 bytes per vector; RES 2 also stores the expanded
// int8 vectors at Task::wbuf in the int8 block layout) or int8. pf, pf_lines: cache
// lines to prefetch into L2 while the tile computes (the next block's weights, a slice per
// tile; see the entry point), spread over the reduction steps.
template <int MR, int NB, int RES>
void tile(const Layer& L, const Task& T, int64_t m, int n, const int8_t* wb, const int8_t* pf,
          int64_t pf_lines) {
  // The accumulators start at the compensation (0 when in_zero is 0: no loads then).
  __m512i acc[MR][NB];
  if (L.has_comp) {
#pragma GCC unroll 8
    for (int p = 0; p < MR; ++p)
#pragma GCC unroll 4
      for (int j = 0; j < NB; ++j) acc[p][j] = _mm512_loadu_si512(L.comp + n + 16 * j);
  } else {
#pragma GCC unroll 8
    for (int p = 0; p < MR; ++p)
#pragma GCC unroll 4
      for (int j = 0; j < NB; ++j) acc[p][j] = _mm512_setzero_si512();
  }

  // The next tile's residual lines, requested now so that its epilogue finds them in cache
  // (1x1 layers whose residual comes from memory: 3-5 % faster). Not the output lines: a
  // whole-line store needs no read, and prefetchw made a 64 -> 256 layer 34 % slower.
  if (L.has_res) {
    const uint8_t* rb = static_cast<const uint8_t*>(T.res) + n;
    const int64_t end = T.m1 - m - MR < MR ? T.m1 - m - MR : MR;
    for (int64_t p = 0; p < end; ++p)
      _mm_prefetch(reinterpret_cast<const char*>(rb + (m + MR + p) * L.res_pixel_bytes), _MM_HINT_T0);
  }
  const int taps = L.taps, groups = L.groups;
  const int8_t* wp = wb;
  int8_t* wout = static_cast<int8_t*>(T.wbuf);  // RES 2: where the expanded vectors go
  const int64_t steps = int64_t(taps) * groups;
  const __m512i lidx = _mm512_load_si512(kLevelIdx);
  const int pf_per_step = int((pf_lines + steps - 1) / steps);
  RowPrefetch px = next_rows(T, m + MR, MR, steps);
  for (int t = 0; t < taps; ++t) {
    const uint8_t* a[MR];
    tap_rows<MR>(T, m, t, taps, a);
    for (int g = 0; g < groups; ++g) {
      __m512i w[NB];
      if constexpr (RES != 0) {
#pragma GCC unroll 4
        for (int j = 0; j < NB; ++j) w[j] = expand_ternary(wp, wp + 16 * NB, NB, j, lidx);
        wp += 32 * NB;
        if constexpr (RES == 2) {
#pragma GCC unroll 4
          for (int j = 0; j < NB; ++j) _mm512_store_si512(wout + 64 * j, w[j]);
          wout += 64 * NB;
        }
      } else {
#pragma GCC unroll 4
        for (int j = 0; j < NB; ++j) w[j] = _mm512_loadu_si512(wp + 64 * j);
        wp += 64 * NB;
      }
      prefetch_step(pf, pf_lines, pf_per_step);
      prefetch_step<_MM_HINT_T0>(px.p, px.lines, px.per_step);
      dot_step<MR, NB>(acc, a, g, w);
    }
  }

  // An empty asm per accumulator: without it GCC 12 may keep each accumulator in two registers
  // and spill half of them inside the loop above (seen whenever the epilogue changed shape).
#pragma GCC unroll 8
  for (int p = 0; p < MR; ++p)
#pragma GCC unroll 4
    for (int j = 0; j < NB; ++j) asm("" : "+v"(acc[p][j]));

  const Epi e = make_epi(L, T);
  if constexpr (NB == 4) {
    const int fast = L.fast_epi;
    if (fast != kFastEpiNone && n + 64 <= e.K) {
      __m512 mu[4], bi[4];
#pragma GCC unroll 4
      for (int j = 0; j < 4; ++j)
        mu[j] = _mm512_loadu_ps(e.mult + n + 16 * j), bi[j] = _mm512_loadu_ps(e.bias + n + 16 * j);
      const int variant = 2 * fast + (e.out_type == kS8);
      const __m512i clampv[2] = {_mm512_set1_epi8(char(int(L.lo))), _mm512_set1_epi8(char(int(L.hi)))};
      const __m512i* clamp = L.fast_clamp ? clampv : nullptr;
      // One dispatch per tile, not per pixel: a switch inside the pixel loop left GCC a 30 KB
      // epilogue of per-pixel tests and spills (28 % of a 64 -> 256 layer's samples).
#define FGQ_EPI(R, S) epi_fast_tile<MR, R, S>(e, m, n, mu, bi, clamp, acc)
      switch (variant) {
        case 2 * kFastEpiNoRes: FGQ_EPI(0, 0); break;
        case 2 * kFastEpiNoRes + 1: FGQ_EPI(0, 1); break;
        case 2 * kFastEpiResU8: FGQ_EPI(1, 0); break;
        case 2 * kFastEpiResU8 + 1: FGQ_EPI(1, 1); break;
        case 2 * kFastEpiResS8: FGQ_EPI(2, 0); break;
        default: FGQ_EPI(2, 1); break;
      }
#undef FGQ_EPI
      return;
    }
  }
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

// A whole block with the fast epilogue, 64 channels n..n+63 < K, in tiles of 4 pixels whose
// epilogue is software-pipelined: a tile's accumulators go to a stack buffer and the next tile's
// first reduction steps finish them a pixel per step, so that the epilogue's instructions mix
// with the dot products instead of stalling them at every tile's end (one thread, ResNet-50
// shapes alone: 64 -> 256 with a residual 71 -> 85 % of the peak, the 7x7 first convolution
// 76 -> 80 %, the stride-2 256 -> 512 projection 89 -> 94 %; no gain from K = 512 on, where
// 4-pixel tiles read the weights more often than 6-pixel ones). 16 accumulators + 4 weights +
// 1 broadcast leave registers for one pixel's epilogue. The last tile's epilogue and a
// remainder of < 4 pixels (tile<>) run at the end. Same arithmetic as tile<> with epi_fast.
template <int RES, int S8OUT>
void block_pipelined(const Layer& L, const Task& T, int n, const int8_t* wb, const int8_t* pf,
                     int64_t pf_slice, int64_t pf_left) {
  constexpr int MR = 4;
  const Epi e = make_epi(L, T);
  __m512 mu[4], bi[4];
#pragma GCC unroll 4
  for (int j = 0; j < 4; ++j)
    mu[j] = _mm512_loadu_ps(e.mult + n + 16 * j), bi[j] = _mm512_loadu_ps(e.bias + n + 16 * j);
  const __m512i clampv[2] = {_mm512_set1_epi8(char(int(L.lo))), _mm512_set1_epi8(char(int(L.hi)))};
  const __m512i* clamp = L.fast_clamp ? clampv : nullptr;
  alignas(64) int32_t prev[MR][4][16];  // the previous tile's accumulators
  const auto finish = [&](int64_t mp, int p) {
    epi_fast<RES, S8OUT>(e, mp, n, mu, bi, clamp, _mm512_load_si512(prev[p][0]),
                         _mm512_load_si512(prev[p][1]), _mm512_load_si512(prev[p][2]),
                         _mm512_load_si512(prev[p][3]));
  };
  const int taps = L.taps, groups = L.groups, steps = taps * groups;
  const int64_t end = T.m0 + (T.m1 - T.m0) / MR * MR;
  int64_t prev_m = -1;
  for (int64_t m = T.m0; m < end; m += MR) {
    __m512i acc[MR][4];
#pragma GCC unroll 4
    for (int p = 0; p < MR; ++p)
#pragma GCC unroll 4
      for (int j = 0; j < 4; ++j)
        acc[p][j] = L.has_comp ? _mm512_loadu_si512(L.comp + n + 16 * j) : _mm512_setzero_si512();
    if (RES) {  // the next tile's residual lines (see tile<>)
      const uint8_t* rb = e.res + n;
      for (int64_t p = m + MR; p < m + 2 * MR && p < T.m1; ++p)
        _mm_prefetch(reinterpret_cast<const char*>(rb + p * e.rpb), _MM_HINT_T0);
    }
    const int64_t lines = pf_slice < pf_left ? pf_slice : pf_left;
    const int pf_per_step = int((lines + steps - 1) / steps);
    int64_t pf_todo = lines;
    RowPrefetch px = next_rows(T, m + MR, MR, steps);
    const int8_t* wp = wb;
    int step = 0;
    for (int t = 0; t < taps; ++t) {
      const uint8_t* a[MR];
      tap_rows<MR>(T, m, t, taps, a);
      for (int g = 0; g < groups; ++g, ++step) {
        __m512i w[4];
#pragma GCC unroll 4
        for (int j = 0; j < 4; ++j) w[j] = _mm512_loadu_si512(wp + 64 * j);
        wp += 256;
        prefetch_step(pf, pf_todo, pf_per_step);
        prefetch_step<_MM_HINT_T0>(px.p, px.lines, px.per_step);
        dot_step<MR, 4>(acc, a, g, w);
        if (step < MR && prev_m >= 0) finish(prev_m + step, step);
      }
    }
    pf_left -= lines;
    if (prev_m >= 0)
      for (int p = step; p < MR; ++p) finish(prev_m + p, p);  // fewer steps than pixels
#pragma GCC unroll 4
    for (int p = 0; p < MR; ++p)
#pragma GCC unroll 4
      for (int j = 0; j < 4; ++j) _mm512_store_si512(prev[p][j], acc[p][j]);
    prev_m = m;
  }
  if (prev_m >= 0)
    for (int p = 0; p < MR; ++p) finish(prev_m + p, p);
  if (end < T.m1) {
    const int64_t lines = pf_slice < pf_left ? pf_slice : pf_left;
    switch (T.m1 - end) {
      case 1: tile<1, 4, 0>(L, T, end, n, wb, pf, lines); break;
      case 2: tile<2, 4, 0>(L, T, end, n, wb, pf, lines); break;
      default: tile<3, 4, 0>(L, T, end, n, wb, pf, lines); break;
    }
  }
}

using BlockFn = void (*)(const Layer&, const Task&, int, const int8_t*, const int8_t*, int64_t,
                         int64_t);
// By 2 * Layer::fast_epi + (s8 output), as in tile<>'s fast epilogue.
constexpr BlockFn kPipelined[8] = {nullptr,
                                   nullptr,
                                   block_pipelined<0, 0>,
                                   block_pipelined<0, 1>,
                                   block_pipelined<1, 0>,
                                   block_pipelined<1, 1>,
                                   block_pipelined<2, 0>,
                                   block_pipelined<2, 1>};

// Per c = 1, 2, 3: the vpshufb control keeping the first c bytes of each 4-byte pixel, packed at
// the bottom of each 16-byte lane (4 c bytes = c dwords), and the vpermd gathering the lanes'
// c dwords (dword 3, zero for c <= 3, elsewhere).
alignas(64) constexpr int8_t kDenseShuf[3][64] = {
    {0, 4, 8, 12, -128, -128, -128, -128, -128, -128, -128, -128, -128, -128, -128, -128,
     0, 4, 8, 12, -128, -128, -128, -128, -128, -128, -128, -128, -128, -128, -128, -128,
     0, 4, 8, 12, -128, -128, -128, -128, -128, -128, -128, -128, -128, -128, -128, -128,
     0, 4, 8, 12, -128, -128, -128, -128, -128, -128, -128, -128, -128, -128, -128, -128},
    {0, 1, 4, 5, 8, 9, 12, 13, -128, -128, -128, -128, -128, -128, -128, -128,
     0, 1, 4, 5, 8, 9, 12, 13, -128, -128, -128, -128, -128, -128, -128, -128,
     0, 1, 4, 5, 8, 9, 12, 13, -128, -128, -128, -128, -128, -128, -128, -128,
     0, 1, 4, 5, 8, 9, 12, 13, -128, -128, -128, -128, -128, -128, -128, -128},
    {0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -128, -128, -128, -128,
     0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -128, -128, -128, -128,
     0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -128, -128, -128, -128,
     0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -128, -128, -128, -128},
};
alignas(64) constexpr int32_t kDensePerm[3][16] = {
    {0, 4, 8, 12, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3},
    {0, 1, 4, 5, 8, 9, 12, 13, 3, 3, 3, 3, 3, 3, 3, 3},
    {0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, 3, 3, 3, 3},
};

using TileFn = void (*)(const Layer&, const Task&, int64_t, int, const int8_t*, const int8_t*,
                       int64_t);

#define FGQ_ROW(mr, res) {tile<mr, 1, res>, tile<mr, 2, res>, tile<mr, 3, res>, tile<mr, 4, res>}
#define FGQ_TABLE(res) \
  {FGQ_ROW(1, res), FGQ_ROW(2, res), FGQ_ROW(3, res),   \
   FGQ_ROW(4, res), FGQ_ROW(5, res), FGQ_ROW(6, res)}
constexpr TileFn kTiles[2][kTileRows][4] = {FGQ_TABLE(0), FGQ_TABLE(1)};
#undef FGQ_TABLE
#undef FGQ_ROW
// A block's first tile expanding resident weights into Task::wbuf as it computes (RES 2).
constexpr TileFn kExpandingTiles[4] = {tile<kTileRows, 1, 2>, tile<kTileRows, 2, 2>,
                                       tile<kTileRows, 3, 2>, tile<kTileRows, 4, 2>};

}  // namespace

extern "C" void fgq_qconv_ukernel_avx512vnni(const Layer* layer, const Task* task) {
  const Layer& L = *layer;
  const Task& T = *task;
  const int8_t* w = static_cast<const int8_t*>(L.w);
  // Resident ternary weights: a block at a time expanded into T.wbuf (by the block's first
  // tile), the other tiles then reading int8; with at most 2 tiles per block (a fully-connected
  // layer) the tiles expand them as they read them instead (the expansion then costs less than
  // the round trip).
  const int64_t tiles = (T.m1 - T.m0 + kTileRows - 1) / kTileRows;
  const bool expand = L.resident && tiles > 2;
  const int res = L.resident && !expand ? 1 : 0;
  const int64_t block_bytes = int64_t(L.taps) * L.groups * (L.resident ? 128 : 256);
  for (int n = T.n0; n < T.n1; n += kBlockVnni) {
    const int width = T.n1 - n < kBlockVnni ? T.n1 - n : kBlockVnni;
    const int nb = (width + 15) / 16;
    const int8_t* wb = w + (n / kBlockVnni) * block_bytes;
    const int8_t* wt = wb;  // what the tiles read
    const uint64_t tag = L.uid << 24 | uint64_t(n / kBlockVnni);
    // Resident weights the thread has not expanded yet: the block's first tile expands them as
    // it reads them and leaves them in T.wbuf for the other tiles, so that the expansion runs
    // beside that tile's dot products instead of in a pass of its own (ResNet-50 at batch 1:
    // whole network 4-5 % faster, 13 of 14 interleaved rounds; the 7x7 stage alone 4-6 %).
    const bool fresh = expand && *T.wbuf_tag != tag;
    if (fresh) *T.wbuf_tag = tag;
    // A block with the fast epilogue and a short reduction (at most 256 bytes per output: its
    // 16 KB of weights stay in L1, reused by 4 pixels instead of 6): the pipelined epilogue.
    // Not for a fresh block: there 6-pixel tiles after the expanding one were faster in the
    // network (12 of 16 rounds, again 14 of 16) than the pipelined ones.
    const bool pipelined = !fresh && res == 0 && L.taps * L.groups <= 64 &&
                           L.fast_epi != kFastEpiNone && width == kBlockVnni && n + kBlockVnni <= L.K;
    if (expand) wt = static_cast<const int8_t*>(T.wbuf);
    // While the tiles run over this block, the next block's weights are prefetched into L2,
    // a slice per tile: weights bigger than the caches stream from memory in the background
    // instead of stalling the next block's first tile. The next block in memory, past the
    // task's channels too when the thread's next task starts there (Task::prefetch_past: the
    // driver hands a thread consecutive tasks). Not with 1 or 2 tiles (a fully connected layer): they
    // stream the weights themselves, the hardware prefetcher follows.
    const int rest = L.kpad - n - kBlockVnni;  // channels of the layer after this block
    const bool last = n + kBlockVnni >= T.n1;
    int64_t next_bytes = !L.prefetch || tiles <= 2 || rest <= 0 || (last && !T.prefetch_past) ? 0
                               : rest >= kBlockVnni     ? block_bytes
                                                        : block_bytes / 4 * ((rest + 15) / 16);
    const int8_t* pf = wb + block_bytes;
    if (next_bytes == 0 && last && L.prefetch && T.next_w && tiles > 2) {
      pf = static_cast<const int8_t*>(T.next_w);
      next_bytes = T.next_w_bytes;
    }
    const int64_t slice = (next_bytes / 64 + tiles - 1) / tiles;  // lines per tile
    int64_t left = next_bytes / 64;
    if (pipelined) {
      const int64_t tiles4 = (T.m1 - T.m0 + 3) / 4;
      kPipelined[2 * L.fast_epi + (L.out_type == kS8)](L, T, n, wt, pf, (left + tiles4 - 1) / tiles4,
                                                       left);
      continue;
    }
    int64_t m = T.m0;
    if (fresh) {  // a whole tile: tiles > 2
      const int64_t lines = slice < left ? slice : left;
      kExpandingTiles[nb - 1](L, T, m, n, wb, pf, lines);
      pf += 64 * lines, left -= lines;
      m += kTileRows;
    }
    // The other pixels in tiles of as even a height as their number allows (49 = 4 x 6 + 5 x 5,
    // not 8 x 6 + 1): a tile of one pixel waits on its 4 accumulators' latency.
    const int64_t rest_tiles = (T.m1 - m + kTileRows - 1) / kTileRows;
    const int64_t base = rest_tiles ? (T.m1 - m) / rest_tiles : 0;
    const int64_t taller = rest_tiles ? (T.m1 - m) % rest_tiles : 0;
    for (int64_t i = 0; i < rest_tiles; ++i) {
      const int mr = int(base + (i < taller));
      const int64_t lines = slice < left ? slice : left;
      kTiles[res][mr - 1][nb - 1](L, T, m, n, wt, pf, lines);
      pf += 64 * lines, left -= lines;
      m += mr;
    }
  }
}

extern "C" void fgq_qconv_dense_row_avx512vnni(const uint8_t* src, int64_t pixels, int32_t c,
                                               uint8_t* dst) {
  // 16 pixels (64 bytes) at a time: vpshufb and vpermd (kDenseShuf, kDensePerm) leave their
  // 16 c real bytes at the bottom, zeros above.
  const __m512i vshuf = _mm512_load_si512(kDenseShuf[c - 1]);
  const __m512i vperm = _mm512_load_si512(kDensePerm[c - 1]);
  const __mmask64 full = (__mmask64(1) << (16 * c)) - 1;
  // Full 64-byte stores while they stay inside the row (masked stores are slow on AMD), then
  // masked ones.
  int64_t p = 0;
  for (; c * p + 64 <= c * pixels; p += 16) {
    const __m512i v = _mm512_loadu_si512(src + 4 * p);
    _mm512_storeu_si512(dst + c * p,
                        _mm512_permutexvar_epi32(vperm, _mm512_shuffle_epi8(v, vshuf)));
  }
  for (; p + 16 <= pixels; p += 16) {
    const __m512i v = _mm512_loadu_si512(src + 4 * p);
    _mm512_mask_storeu_epi8(dst + c * p, full,
                            _mm512_permutexvar_epi32(vperm, _mm512_shuffle_epi8(v, vshuf)));
  }
  if (p < pixels) {
    const int n = int(pixels - p);
    const __m512i v = _mm512_maskz_loadu_epi8((__mmask64(1) << (4 * n)) - 1, src + 4 * p);
    _mm512_mask_storeu_epi8(dst + c * p, (__mmask64(1) << (c * n)) - 1,
                            _mm512_permutexvar_epi32(vperm, _mm512_shuffle_epi8(v, vshuf)));
  }
}

}  // namespace fgq::ops::qk
