#pragma once
// The integer network (graph/pass_lower_integer.h) as a standard ONNX QDQ model, so that another
// engine (ONNX Runtime) runs the very same quantized network: every stored integer tensor becomes
// QuantizeLinear -> DequantizeLinear, every QConv a Conv (or Gemm) on DequantizeLinear'd int8
// per-channel weights (ternary layers: the folded a_g * t) with an int32 bias at scale
// x_scale * w_scale, followed by the fused residual Add and Relu in float, as fgq computes them.
// Forms ORT fuses into its int8 kernels (scripts/ort/README.md): uint8 activations (signed ones
// with zero point 128), Relu before a zero-point-0 QuantizeLinear, int8 weights with zero point
// 0 on axis 0, int32 biases; ranges narrower than uint8 (4-bit, -127..127) are a Clip on the
// uint8 tensor.
#include <string>

#include "graph/ir.h"

namespace fgq {

enum class QdqForm {
  // The very network fgq runs. fgq adds a residual before requantizing; QDQ says that with no
  // QuantizeLinear between Conv and Add, so ORT runs those convs (a residual block's last) in
  // float.
  Exact,
  // For speed comparisons: a QuantizeLinear/DequantizeLinear pair (the calibrated pre-add range,
  // QConv attribute preadd_scale) between those convs and their Add, so that ORT fuses them into
  // QLinearConv + QLinearAdd. One more rounding per residual block than fgq computes.
  Fusable,
};

// g: a lowered graph (has Quantize / QConv ...); throws fgq::Error otherwise or on ops the
// exporter does not know. Opset 17, IR 8; the fgq.* metadata (preprocessing) is kept.
std::string export_qdq_onnx_bytes(const Graph& g, QdqForm form = QdqForm::Exact);
void export_qdq_onnx_file(const Graph& g, const std::string& path, QdqForm form = QdqForm::Exact);

}  // namespace fgq
