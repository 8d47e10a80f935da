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

#include <cstddef>

namespace fgq {

// Eigen sizes its GEMM blocks from the CPU's cache sizes, and the block depth decides in which
// order a dot product's terms are summed: the same FP32 network then rounds differently from one
// CPU to the next, the calibration statistics and GPTQ's Hessians follow, and so did the
// quantized model and its accuracy (ResNet-50 FGQ N=4 on the first 200 val images: Top-1/Top-5
// 158/185 with Eigen's blocking for a 48 KB L1, 159/187 for 32 KB). With fixed sizes every
// machine sums in the same order. 48 KB / 1 MB / 32 MB: the machine (AMD Zen 5) on which the
// published accuracy figures were measured. Called by every fgq entry point that runs an Eigen
// product, before its parallel work; it writes only when the sizes differ (set by Eigen's CPUID
// query or by the embedding program), so concurrent calls merely read them.
inline void use_fixed_eigen_blocking() {
  constexpr std::ptrdiff_t l1 = 48 * 1024, l2 = 1024 * 1024, l3 = 32 * 1024 * 1024;
  if (Eigen::l1CacheSize() != l1 || Eigen::l2CacheSize() != l2 || Eigen::l3CacheSize() != l3)
    Eigen::setCpuCacheSizes(l1, l2, l3);
}

}  // namespace fgq
