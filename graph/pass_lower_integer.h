#pragma once
// Lowering a quantized graph (simulated: FakeQuant nodes, Conv/Gemm with folded int8 weights,
// see quant/quantize.h) to the integer pipeline. Every FakeQuant output becomes a stored integer
// tensor, and the float ops between them become integer ops computing the same thing:
//
//   FakeQuant -> Conv(ternary or 8-bit) [+ residual] [-> Relu] -> FakeQuant   => QConv
//   FakeQuant -> Gemm / MatMul [-> Relu] -> FakeQuant, or -> float logits     => QConv (1x1)
//   Flatten of an integer [N,C,H,W] -> Gemm                                    => QConv (HxW kernel)
//   integer -> MaxPool / Flatten / Reshape / Identity                          => same op on integers
//   integer -> GlobalAveragePool [-> Flatten] -> FakeQuant                     => QGlobalAveragePool
//   float -> FakeQuant (the preprocessed image)                                => Quantize
//   integer read by any other (float) op                                       => Dequantize first
//
// Integer ops (fgq domain, ONNX-exportable):
//   Quantize(x f32)  attrs scale, zero_point, qmin, qmax, to = u8|s8|u4:
//       stored = min(max(nearbyint(x / scale) + zero_point, qmin), qmax)
//   Dequantize(x)    attrs scale, zero_point: y = scale * (stored - zero_point), float NCHW
//   QConv(x, w, levels, mult, bias[, residual]) attrs strides, pads, dilations, in_zero_point,
//       res_scale, clamp_lo, clamp_hi, out_type = u8|s8|u4|f32, ternary_group (with t2 weights),
//       y_scale, y_zero_point: the arithmetic of ops/qconv/qconv.h. w is int8 [K,C,KH,KW], or t2
//       codes with u8 levels [K, ceil(C/N), KH, KW] (graph/ternary_codes.h: weight = level * t).
//   QGlobalAveragePool(x) attrs mult, qmin, qmax, out_type, y_scale, y_zero_point: ops/qpool.h.
// y_scale / y_zero_point record what the stored integers mean (for QDQ export and reports);
// preadd_scale (with a residual) the calibrated range of the conv output before the residual
// is added, which fgq does not quantize (graph/onnx_export_qdq.h uses it for ONNX Runtime).
//
// Storage: unsigned tensors (after ReLU) are u8 (u4 at 4 bits) with zero point 0; signed ones
// are s8 when only read as a residual, else u8 with zero point 128 (so a conv can read them).
#include <string>
#include <vector>

#include "graph/ir.h"

namespace fgq {

struct LoweringReport {
  int qconv = 0;            // of which ternary (t2 weights):
  int qconv_ternary = 0;
  int quantize = 0, dequantize = 0, maxpool = 0, global_avgpool = 0;
  // Quantized layers left on float kernels, with the reason (e.g. scales not folded).
  std::vector<std::string> float_layers;
};

// g: quantized and activation-fused (fuse_conv_activation); shapes inferred. Rewrites g in
// place; throws fgq::Error naming the node when quantization data is inconsistent (weights that
// are not int8 multiples of their scale, ternary groups with two levels, bad FakeQuant ranges).
LoweringReport lower_to_integer(Graph& g);

}  // namespace fgq
