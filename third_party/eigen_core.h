#pragma once
// Eigen's core, included so that GCC 12 stays quiet: with -march supporting AVX-512 it reports
// false -W(maybe-)uninitialized warnings inside <avx512fintrin.h> once Eigen's GEMM kernels are
// inlined (GCC bug 105593). Include it before any other header that may pull in <immintrin.h>.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#include <Eigen/Core>
#pragma GCC diagnostic pop
