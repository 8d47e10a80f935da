#pragma once
// Private to ops/: Eigen for the FP32 GEMMs. Include it first (third_party/eigen_core.h says why).
#include "third_party/eigen_core.h"

namespace fgq::ops::detail {

using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstMatMap = Eigen::Map<const RowMat, Eigen::Unaligned, Eigen::OuterStride<>>;
using MatMap = Eigen::Map<RowMat, Eigen::Unaligned, Eigen::OuterStride<>>;

}  // namespace fgq::ops::detail
