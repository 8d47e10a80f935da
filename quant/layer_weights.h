#pragma once
// Weight quantization of one Conv, Gemm or MatMul node of a graph: ternary (FGQ groups) or 8-bit
// per-output-channel, always held in [out, in, KH, KW] order (a Gemm with transB=0 stores its
// weights [in, out]; they are transposed here and back on write-out).
#include <vector>

#include "graph/ir.h"
#include "quant/quantize.h"
#include "quant/stats_correction.h"
#include "quant/ternarize.h"
#include "quant/weight_int8.h"

namespace fgq {

struct LayerWeights {
  int node = -1;
  bool ternary = false;
  bool conv = false;        // Conv (has a per-channel bias slot) vs Gemm
  bool transposed = false;  // graph layout is [in, out] (Gemm with transB=0, MatMul)
  TernaryWeights tern;      // when ternary
  Int8Weights int8;         // otherwise
  std::vector<float> bias;  // per output channel (zeros when the node has none)
  std::vector<float> fp32;  // the original weights, [out, in, ...], for data-aware re-quantization
  Shape fp32_shape;
  LayerQuantStats stats;
  int64_t out_channels() const;
};

// Conv, Gemm, or MatMul whose second input (the weights) is a constant.
bool is_weighted_layer(const Graph& g, const Node& n);
// Quantizes the constant weights of g.nodes[node] (see is_weighted_layer). Throws fgq::Error when
// the weights are not an F32 constant of a supported shape.
LayerWeights quantize_layer_weights(const Graph& g, int node, bool ternary, int group,
                                    Threshold method);
// Folds y = a z + b (per output channel, a >= 0) into the quantized weights and the bias (Conv only).
void fold_output_affine(LayerWeights& lw, const ChannelAffine& corr);
// Writes the dequantized weights (and the bias, for Conv) into the node's constants and records
// what an integer kernel needs as node attributes:
//   fgq_weight = "ternary" | "int8"; ternary: fgq_group (N) and fgq_alpha (TernaryWeights::alpha
//   order, t = sign of the weight); int8: fgq_wscale (per output channel, q = weight / scale).
void write_layer_weights(Graph& g, const LayerWeights& lw);
// Replaces lw.tern and the ternary statistics (the FP32 weights stay the reference).
void set_ternary(LayerWeights& lw, TernaryWeights tw);

}  // namespace fgq
