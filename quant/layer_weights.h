#pragma once
// Weight quantization of one Conv, Gemm or MatMul node of a graph: ternary (FGQ groups) or 8-bit
// per-output-channel, always held in [out, in, KH, KW] order (a Gemm with transB=0 stores its
// weights [in, out]; they are transposed here and back on write-out).
#include <vector>

#include "graph/ir.h"
#include "quant/fold_scales.h"
#include "quant/quantize.h"
#include "quant/stats_correction.h"
#include "quant/ternarize.h"
#include "quant/weight_int8.h"

namespace fgq {

struct LayerWeights {
  int node = -1;
  bool ternary = false;
  bool folded = false;      // ternary with its group scales folded into int8 (fold_scales.h)
  bool conv = false;        // Conv (has a per-channel bias slot) vs Gemm
  bool transposed = false;  // graph layout is [in, out] (Gemm with transB=0, MatMul)
  TernaryWeights tern;      // when ternary
  Int8Weights int8;         // 8-bit layers, and folded ternary ones: what runs
  FoldStats fold;           // when folded
  std::vector<float> bias;  // per output channel (zeros when the node has none)
  std::vector<float> fp32;  // the original weights, [out, in, ...], for data-aware re-quantization
  Shape fp32_shape;
  LayerQuantStats stats;
  int64_t out_channels() const;
  bool runs_int8() const { return !ternary || folded; }
  std::vector<float> dequantize() const;  // [out, in, ...]
};

// Conv, Gemm, or MatMul whose second input (the weights) is a constant.
bool is_weighted_layer(const Graph& g, const Node& n);
// Quantizes the constant weights of g.nodes[node] (see is_weighted_layer). Throws fgq::Error when
// the weights are not an F32 constant of a supported shape.
LayerWeights quantize_layer_weights(const Graph& g, int node, bool ternary, int group,
                                    Threshold method, int fold_levels);
// Folds y = a z + b (per output channel, a >= 0) into the quantized weights and the bias (Conv only).
void fold_output_affine(LayerWeights& lw, const ChannelAffine& corr);
// Writes the dequantized weights (and the bias, for Conv) into the node's constants and records
// what the integer lowering (graph/pass_lower_integer.h) needs as node attributes:
//   fgq_weight = "ternary" | "int8"; ternary: fgq_group (N); fgq_wscale (per output channel) when
//   the weights are int8 multiples of it (8-bit layers, folded ternary ones: q = weight / scale,
//   exactly, and within a ternary group every non-zero |q| is the group's level).
void write_layer_weights(Graph& g, const LayerWeights& lw);
// Replaces lw.tern and the ternary statistics (the FP32 weights stay the reference); with
// fold_levels > 0 folds the group scales into int8 at once (levels A = fold_levels).
void set_ternary(LayerWeights& lw, TernaryWeights tw, int fold_levels);

}  // namespace fgq
