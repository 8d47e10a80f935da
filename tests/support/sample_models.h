#pragma once
// Small ONNX models shared by tests and the fuzz corpus generator.
#include "support/onnx_builder.h"

namespace fgq::test {

// Input x [-1, 3, 8, 8] -> Pad, Conv (stride 2), BatchNormalization, Relu, MaxPool (ceil_mode),
// GlobalAveragePool, the exported-Flatten Shape/Gather/Unsqueeze/Concat/Reshape chain, MatMul,
// Softmax -> output "prob". Touches most importer and preparation paths.
OnnxBuilder mixed_ops_model();

}  // namespace fgq::test
