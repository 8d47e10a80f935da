// Peak loops on ymm registers (ops/cpu_peak.h): vpmaddubsw (32 u8*s8 MACs per instruction, the
// int8 rate of a CPU without VNNI), vpmaddwd (16 s16*s16 MACs: what the exact avx2 qconv path
// runs) and vfmadd231ps (8 FP32 FMAs). 12 independent chains (16 ymm registers: 12 accumulators
// + operands), each instruction reading the previous result of its own chain. No loads or
// stores inside the loop; the operands come from `sink` at run time, and the accumulators are
// stored back there at the end.
//
// Compiled with -march=x86-64-v3 (fgq_isa_flags): internal linkage everywhere but the one
// extern "C" entry point; no standard library (tests/ops/check_isa_objects.cmake).
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

namespace {

// The accumulators a0..a11 with their index: distinct start values, so that the compiler
// cannot merge chains that would otherwise compute the same thing.
#define FGQ_PEAK_ACCS(X) \
  X(a0, 0) X(a1, 1) X(a2, 2) X(a3, 3) X(a4, 4) X(a5, 5) X(a6, 6) X(a7, 7) \
  X(a8, 8) X(a9, 9) X(a10, 10) X(a11, 11)
constexpr int64_t kAccs = 12;

// a = maddubs(a, w): the previous int16 results read as u8 bytes (saturation is harmless here).
int64_t vpmaddubsw_ymm(int64_t iterations, void* sink) {
  int32_t seed[2];
  __builtin_memcpy(seed, sink, sizeof seed);
  const __m256i w = _mm256_set1_epi32(seed[1] | 0x01010101);
#define FGQ_INIT(a, k) __m256i a = _mm256_set1_epi32(seed[0] + k);
  FGQ_PEAK_ACCS(FGQ_INIT)
#undef FGQ_INIT
  for (int64_t i = 0; i < iterations; ++i) {
#define FGQ_STEP(a, k) a = _mm256_maddubs_epi16(a, w);
    FGQ_PEAK_ACCS(FGQ_STEP)
#undef FGQ_STEP
  }
  __m256i sum = _mm256_setzero_si256();
#define FGQ_FOLD(a, k) sum = _mm256_add_epi32(sum, a);
  FGQ_PEAK_ACCS(FGQ_FOLD)
#undef FGQ_FOLD
  _mm256_storeu_si256(static_cast<__m256i*>(sink), sum);
  return iterations * kAccs * 32;
}

// a = madd(a, w): the previous int32 results read as int16 pairs.
int64_t vpmaddwd_ymm(int64_t iterations, void* sink) {
  int32_t seed[2];
  __builtin_memcpy(seed, sink, sizeof seed);
  const __m256i w = _mm256_set1_epi32(seed[1] | 0x00010001);
#define FGQ_INIT(a, k) __m256i a = _mm256_set1_epi32(seed[0] + k);
  FGQ_PEAK_ACCS(FGQ_INIT)
#undef FGQ_INIT
  for (int64_t i = 0; i < iterations; ++i) {
#define FGQ_STEP(a, k) a = _mm256_madd_epi16(a, w);
    FGQ_PEAK_ACCS(FGQ_STEP)
#undef FGQ_STEP
  }
  __m256i sum = _mm256_setzero_si256();
#define FGQ_FOLD(a, k) sum = _mm256_add_epi32(sum, a);
  FGQ_PEAK_ACCS(FGQ_FOLD)
#undef FGQ_FOLD
  _mm256_storeu_si256(static_cast<__m256i*>(sink), sum);
  return iterations * kAccs * 16;
}

// a = a * m + c, converging to c / (1 - m): no overflow, no denormals.
int64_t fma_ymm(int64_t iterations, void* sink) {
  float seed[2];
  __builtin_memcpy(seed, sink, sizeof seed);
  const __m256 m = _mm256_set1_ps(0.5f + 0.25f * (seed[0] > 0));
  const __m256 c = _mm256_set1_ps(1.0f + 0.5f * (seed[1] > 0));
#define FGQ_INIT(a, k) __m256 a = _mm256_set1_ps(1.0f + 0.125f * k);
  FGQ_PEAK_ACCS(FGQ_INIT)
#undef FGQ_INIT
  for (int64_t i = 0; i < iterations; ++i) {
#define FGQ_STEP(a, k) a = _mm256_fmadd_ps(a, m, c);
    FGQ_PEAK_ACCS(FGQ_STEP)
#undef FGQ_STEP
  }
  __m256 sum = _mm256_setzero_ps();
#define FGQ_FOLD(a, k) sum = _mm256_add_ps(sum, a);
  FGQ_PEAK_ACCS(FGQ_FOLD)
#undef FGQ_FOLD
  _mm256_storeu_ps(static_cast<float*>(sink), sum);
  return iterations * kAccs * 8;
}

#undef FGQ_PEAK_ACCS

}  // namespace

// loop 0: vpmaddubsw ymm (returns u8*s8 MACs), 1: vfmadd ymm (FP32 FMAs), 2: vpmaddwd ymm
// (s16*s16 MACs); -1 otherwise. sink: 64 writable bytes whose first 8 seed the operands.
extern "C" int64_t fgq_cpu_peak_avx2(int loop, int64_t iterations, void* sink) {
  switch (loop) {
    case 0: return vpmaddubsw_ymm(iterations, sink);
    case 1: return fma_ymm(iterations, sink);
    case 2: return vpmaddwd_ymm(iterations, sink);
    default: return -1;
  }
}
