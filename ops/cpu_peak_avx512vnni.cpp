// Peak loops on zmm registers (ops/cpu_peak.h): vpdpbusd (AVX-512 VNNI, 64 u8*s8 MACs per
// instruction) and vfmadd231ps (16 FP32 FMAs). 24 independent accumulator chains (of 32 zmm):
// enough to cover latency x throughput (4-5 cycles x 2 per cycle on current cores) with room.
// No loads or stores inside the loop; the operands come from `sink` at run time so nothing can
// be folded at compile time, and the accumulators are stored back there at the end.
//
// Compiled with -march=x86-64-v4 -mavx512vnni (fgq_isa_flags): internal linkage everywhere but
// the one extern "C" entry point; no standard library (tests/ops/check_isa_objects.cmake).
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

namespace {

// The accumulators a0..a23 with their index: distinct start values, so that the compiler
// cannot merge chains that would otherwise compute the same thing.
#define FGQ_PEAK_ACCS(X) \
  X(a0, 0) X(a1, 1) X(a2, 2) X(a3, 3) X(a4, 4) X(a5, 5) X(a6, 6) X(a7, 7) \
  X(a8, 8) X(a9, 9) X(a10, 10) X(a11, 11) X(a12, 12) X(a13, 13) X(a14, 14) X(a15, 15) \
  X(a16, 16) X(a17, 17) X(a18, 18) X(a19, 19) X(a20, 20) X(a21, 21) X(a22, 22) X(a23, 23)
constexpr int64_t kAccs = 24;

// Iterations of 24 vpdpbusd; returns the MACs done. sink: >= 64 bytes, read for the operands,
// overwritten with the folded accumulators.
int64_t vpdpbusd_zmm(int64_t iterations, void* sink) {
  int32_t seed[2];
  __builtin_memcpy(seed, sink, sizeof seed);
  const __m512i x = _mm512_set1_epi32(seed[0] | 0x01010101);  // u8 operand
  const __m512i w = _mm512_set1_epi32(seed[1] | 0x01010101);  // s8 operand
#define FGQ_INIT(a, k) __m512i a = _mm512_set1_epi32(seed[0] + k);
  FGQ_PEAK_ACCS(FGQ_INIT)
#undef FGQ_INIT
  for (int64_t i = 0; i < iterations; ++i) {
#define FGQ_STEP(a, k) a = _mm512_dpbusd_epi32(a, x, w);
    FGQ_PEAK_ACCS(FGQ_STEP)
#undef FGQ_STEP
  }
  __m512i sum = _mm512_setzero_si512();
#define FGQ_FOLD(a, k) sum = _mm512_add_epi32(sum, a);
  FGQ_PEAK_ACCS(FGQ_FOLD)
#undef FGQ_FOLD
  _mm512_storeu_si512(sink, sum);
  return iterations * kAccs * 64;
}

// Iterations of 24 vfmadd (a = a * m + c, converging to c / (1 - m): no overflow, no denormals);
// returns the FMAs done.
int64_t fma_zmm(int64_t iterations, void* sink) {
  float seed[2];
  __builtin_memcpy(seed, sink, sizeof seed);
  const __m512 m = _mm512_set1_ps(0.5f + 0.25f * (seed[0] > 0));
  const __m512 c = _mm512_set1_ps(1.0f + 0.5f * (seed[1] > 0));
#define FGQ_INIT(a, k) __m512 a = _mm512_set1_ps(1.0f + 0.125f * k);
  FGQ_PEAK_ACCS(FGQ_INIT)
#undef FGQ_INIT
  for (int64_t i = 0; i < iterations; ++i) {
#define FGQ_STEP(a, k) a = _mm512_fmadd_ps(a, m, c);
    FGQ_PEAK_ACCS(FGQ_STEP)
#undef FGQ_STEP
  }
  __m512 sum = _mm512_setzero_ps();
#define FGQ_FOLD(a, k) sum = _mm512_add_ps(sum, a);
  FGQ_PEAK_ACCS(FGQ_FOLD)
#undef FGQ_FOLD
  _mm512_storeu_ps(sink, sum);
  return iterations * kAccs * 16;
}

#undef FGQ_PEAK_ACCS

}  // namespace

// loop 0: vpdpbusd zmm (returns u8*s8 MACs), 1: vfmadd zmm (returns FP32 FMAs); -1 otherwise.
// sink: 64 writable bytes whose first 8 seed the operands.
extern "C" int64_t fgq_cpu_peak_avx512vnni(int loop, int64_t iterations, void* sink) {
  switch (loop) {
    case 0: return vpdpbusd_zmm(iterations, sink);
    case 1: return fma_zmm(iterations, sink);
    default: return -1;
  }
}
