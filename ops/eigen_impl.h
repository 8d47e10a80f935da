#pragma once
// Private to ops/: Eigen for the FP32 GEMMs. Include it before any other header that may pull in
// <immintrin.h>: with -march supporting AVX-512, GCC 12 reports false -W(maybe-)uninitialized
// warnings inside <avx512fintrin.h> once Eigen's GEMM kernels are inlined (GCC bug 105593).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#include <Eigen/Core>
#pragma GCC diagnostic pop

namespace fgq::ops::detail {

using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstMatMap = Eigen::Map<const RowMat, Eigen::Unaligned, Eigen::OuterStride<>>;
using MatMap = Eigen::Map<RowMat, Eigen::Unaligned, Eigen::OuterStride<>>;

}  // namespace fgq::ops::detail
