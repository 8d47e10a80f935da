#pragma once
// Small ONNX models shared by tests and the fuzz corpus generator.
#include <cstdint>

#include "support/onnx_builder.h"

namespace fgq::test {

// Input x [-1, 3, 8, 8] -> Pad, Conv (stride 2), BatchNormalization, Relu, MaxPool (ceil_mode),
// GlobalAveragePool, the exported-Flatten Shape/Gather/Unsqueeze/Concat/Reshape chain, MatMul,
// Softmax -> output "prob". Touches most importer and preparation paths.
OnnxBuilder mixed_ops_model();

// A ResNet in miniature, odd channel counts: x [-1, 3, 13, 13] -> conv 3x3/2 (13 ch, BN) ->
// Relu -> MaxPool 3x3/2 pad 1 -> bottleneck with a projection shortcut (conv 3x3 -> Relu ->
// conv 1x1 17 ch; shortcut conv 1x1 17 ch; Add; Relu) -> identity block (conv 1x1 -> Relu ->
// conv 3x3 pad 1; Add; Relu) -> GlobalAveragePool -> Flatten -> Gemm (10 classes) -> "logits".
// Every pattern the integer lowering handles; weights seeded by `seed`.
OnnxBuilder mini_resnet_model(uint32_t seed = 1);

// A colour classifier with fgq.* preprocessing metadata (RGB, pixels / 255, input side x side):
// image [-1, 3, side, side] -> Conv 1x1 (4 ch) -> Relu -> GlobalAveragePool -> Flatten -> Gemm
// -> "logits" of `classes` (>= 4). Class = the dominant colour (0 red, 1 green, 2 blue), the
// rest nothing; with red_green a 4th channel (red + green) / 4 feeds class 3, so that a
// quantized model has a channel mixing inputs.
OnnxBuilder colour_classifier_model(int side, int classes, bool red_green);

}  // namespace fgq::test
