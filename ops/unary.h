#pragma once
// Element-wise FP32 activations and math ops (ONNX Sigmoid, Tanh, LeakyRelu, Clip, HardSigmoid,
// HardSwish, Elu, Celu, Selu, ThresholdedRelu, Softplus, Softsign, Neg, Abs, Exp, Log, Sqrt,
// Reciprocal, Floor, Ceil, Round, Erf) on contiguous buffers.
#include <cstdint>
#include <optional>
#include <string>

namespace fgq::ops {

enum class UnaryOp {
  Sigmoid, Tanh, LeakyRelu, Clip, HardSigmoid, HardSwish, Elu, Celu, Selu, ThresholdedRelu,
  Softplus, Softsign, Neg, Abs, Exp, Log, Sqrt, Reciprocal, Floor, Ceil, Round, Erf
};

// The op of an ONNX op type; nullopt for other names.
std::optional<UnaryOp> unary_op_from_name(const std::string& op_type);

// The ops' parameters, with ONNX's defaults for what a node does not set.
struct UnaryParams {
  float alpha = 0, beta = 0, gamma = 0;  // LeakyRelu/Elu/Celu/Selu/ThresholdedRelu alpha,
                                         // HardSigmoid alpha and beta, Selu gamma
  float lo = 0, hi = 0;                  // Clip bounds
};
UnaryParams default_unary_params(UnaryOp op);

// y[i] = op(x[i]); x == y allowed.
void unary_f32(UnaryOp op, const UnaryParams& p, const float* x, float* y, int64_t n);

}  // namespace fgq::ops
