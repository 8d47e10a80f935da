#pragma once
// The integer network (graph/pass_lower_integer.h) as a standard ONNX QDQ model, so that another
// engine (ONNX Runtime) runs the very same quantized network: every stored integer tensor becomes
// QuantizeLinear -> DequantizeLinear, every QConv a Conv (or Gemm) on DequantizeLinear'd int8
// per-channel weights (ternary layers: the folded a_g * t) with an int32 bias at scale
// x_scale * w_scale, followed by the fused residual Add and Relu in float, as fgq computes them.
// Forms ORT fuses into its int8 kernels (scripts/ort/README.md): uint8 activations (signed ones
// with zero point 128), Relu before a zero-point-0 QuantizeLinear, int8 weights with zero point
// 0 on axis 0, int32 biases; ranges narrower than uint8 (4-bit, -127..127) are a Clip on the
// uint8 tensor. A residual block's last conv stays a float Conv in ORT: fgq adds the residual
// before requantizing, which QDQ can only say without a QuantizeLinear between Conv and Add.
#include <string>

#include "graph/ir.h"

namespace fgq {

// g: a lowered graph (has Quantize / QConv ...); throws fgq::Error otherwise or on ops the
// exporter does not know. Opset 17, IR 8; the fgq.* metadata (preprocessing) is kept.
std::string export_qdq_onnx_bytes(const Graph& g);
void export_qdq_onnx_file(const Graph& g, const std::string& path);

}  // namespace fgq
