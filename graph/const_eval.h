#pragma once
// Load-time evaluation of the small ops exporters use for shape arithmetic (torchvision's
// Flatten is Shape -> Gather -> Unsqueeze -> Concat -> Reshape) and of reshapes/transposes of
// weights. Not a runtime: no kernels for activations.
#include <cstdint>
#include <optional>

#include "graph/ir.h"

namespace fgq {

// Stands for the batch size inside int64 constants derived from Shape(activation): dim 0 of
// every activation is the batch, which is not known until an Executor picks one.
constexpr int64_t kBatchDim = INT64_MIN + 0x6667;

// Evaluates `n` when all its inputs are constants (a Shape node only needs its input's shape,
// with dim 0 reported as kBatchDim). nullopt when the op/type combination is not evaluated
// here, or the result would depend on the batch in a way a constant cannot express.
// Sets the output's shape as infer_node_shapes does; throws on invalid data (index out of
// range, division by zero, overflow).
std::optional<Tensor> evaluate_constant(Graph& g, const Node& n);

bool contains_batch_dim(const Tensor& t);

}  // namespace fgq
