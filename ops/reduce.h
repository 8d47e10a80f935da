#pragma once
// Reductions over any set of axes of a contiguous FP32 tensor (ONNX ReduceSum, ReduceMean,
// ReduceMax, ReduceMin, ReduceProd, ReduceL1, ReduceL2, ReduceSumSquare, ReduceLogSum,
// ReduceLogSumExp; GlobalMaxPool is ReduceMax over the spatial axes).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace fgq::ops {

enum class ReduceOp { Sum, Mean, Max, Min, Prod, L1, L2, SumSquare, LogSum, LogSumExp };

// The op of an ONNX op type ("ReduceMean" -> Mean); nullopt for other names.
std::optional<ReduceOp> reduce_op_from_name(const std::string& op_type);

// y[kept index] = reduction of x over the axes with reduce[k] set. y holds the kept dims in
// order (keepdims only changes the shape, not the layout). Sums accumulate in double.
void reduce_f32(ReduceOp op, const float* x, const std::vector<int64_t>& shape, const std::vector<bool>& reduce,
                float* y);

}  // namespace fgq::ops
