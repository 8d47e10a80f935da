#include "quant/layer_weights.h"

#include <cmath>

#include "graph/error.h"

namespace fgq {

namespace {

std::string where(const Graph& g, const Node& n) {
  return (g.source.empty() ? std::string("graph") : g.source) + ": node '" + n.name + "'";
}

std::vector<float> transpose2d(const std::vector<float>& x, int64_t rows, int64_t cols) {
  std::vector<float> y(x.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) y[c * rows + r] = x[r * cols + c];
  return y;
}

// Replaces the constant feeding input `slot` of node `ni` (a fresh constant when it is shared
// with another node, or absent).
void set_node_const(Graph& g, int ni, size_t slot, Tensor t, const std::string& suffix) {
  Node& n = g.nodes[ni];
  if (n.inputs.size() <= slot) n.inputs.resize(slot + 1, -1);
  const int v = n.inputs[slot];
  if (v >= 0 && g.values[v].is_const() && g.consumers(v).size() == 1) {
    g.set_const(v, std::move(t));
    return;
  }
  const std::string base = n.name.empty() ? g.values[n.outputs[0]].name : n.name;
  const int nv = g.add_const(base + suffix, std::move(t));
  g.nodes[ni].inputs[slot] = nv;
}

}  // namespace

bool is_weighted_layer(const Graph& g, const Node& n) {
  if (n.op != "Conv" && n.op != "Gemm" && n.op != "MatMul") return false;
  return n.inputs.size() >= 2 && n.inputs[1] >= 0 && g.values[n.inputs[1]].is_const();
}

int64_t LayerWeights::out_channels() const { return ternary ? tern.K() : int8.shape[0]; }

std::vector<float> LayerWeights::dequantize() const {
  return runs_int8() ? int8.dequantize() : tern.dequantize();
}

LayerWeights quantize_layer_weights(const Graph& g, int ni, bool ternary, int group,
                                    Threshold method, int fold_levels) {
  const Node& n = g.nodes[ni];
  if (!is_weighted_layer(g, n)) fail(where(g, n), "not a Conv, Gemm or MatMul with constant weights");
  if (n.inputs.size() < 2 || n.inputs[1] < 0 || !g.values[n.inputs[1]].is_const())
    fail(where(g, n), "weights are not a constant; cannot quantize");
  const Tensor& wt = g.const_of(n.inputs[1]);
  if (wt.dtype != DType::F32) fail(where(g, n), "weights are not float32");

  LayerWeights lw;
  lw.node = ni;
  lw.ternary = ternary;
  lw.conv = n.op == "Conv";
  std::vector<float> w = wt.f;
  Shape shape = wt.shape;  // [out, in, ...]
  if (n.op == "Gemm" || n.op == "MatMul") {
    if (shape.size() != 2) fail(where(g, n), n.op + " weights must be 2-D, got " + shape_str(shape));
    if (n.op == "MatMul" || n.attrs.i("transB", 0) == 0) {
      lw.transposed = true;
      w = transpose2d(w, shape[0], shape[1]);
      shape = {shape[1], shape[0]};
    }
  } else if (shape.size() != 4) {
    fail(where(g, n), "Conv weights must be 4-D, got " + shape_str(shape));
  }
  const int64_t K = shape[0];

  lw.bias.assign(K, 0.f);
  if (n.op == "Conv" && n.inputs.size() > 2 && n.inputs[2] >= 0) {
    const Tensor& b = g.const_of(n.inputs[2]);
    if (b.dtype != DType::F32 || b.numel() != K) fail(where(g, n), "bias does not match the weights");
    lw.bias = b.f;
  }

  lw.stats.name = n.name.empty() ? g.values[n.outputs[0]].name : n.name;
  if (ternary) {
    lw.fp32 = std::move(w);
    lw.fp32_shape = shape;
    set_ternary(lw, ternarize(lw.fp32.data(), shape, group, method), fold_levels);
  } else {
    lw.int8 = quantize_int8_per_channel(w.data(), shape);
    const std::vector<float> w_hat = lw.int8.dequantize();
    double norm2 = 0, err2 = 0;
    int64_t zeros = 0;
    for (size_t i = 0; i < w.size(); ++i) {
      norm2 += double(w[i]) * w[i];
      err2 += (double(w[i]) - w_hat[i]) * (double(w[i]) - w_hat[i]);
      zeros += lw.int8.q[i] == 0;
    }
    lw.stats.kind = "int8";
    lw.stats.groups = K;
    lw.stats.sparsity = w.empty() ? 0 : double(zeros) / w.size();
    lw.stats.rel_error = norm2 > 0 ? std::sqrt(err2 / norm2) : 0;
  }
  return lw;
}

void fold_output_affine(LayerWeights& lw, const ChannelAffine& corr) {
  if (!lw.conv) fail(lw.stats.name, "output correction is only folded into Conv layers");
  if (lw.runs_int8()) lw.int8.scale_output_channels(corr.a);
  else lw.tern.scale_output_channels(corr.a);
  for (size_t k = 0; k < lw.bias.size(); ++k) lw.bias[k] = corr.a[k] * lw.bias[k] + corr.b[k];
}

void set_ternary(LayerWeights& lw, TernaryWeights tw, int fold_levels) {
  lw.tern = std::move(tw);
  lw.stats.kind = "ternary";
  const TernaryStats s = ternary_stats(lw.fp32.data(), lw.tern);
  lw.stats.groups = s.groups;
  lw.stats.sparsity = s.sparsity;
  lw.stats.rel_error = s.rel_error;
  lw.folded = fold_levels > 0;
  if (lw.folded) {
    lw.int8 = fold_group_scales(lw.tern, fold_levels, &lw.fold);
    lw.stats.zero_levels = lw.fold.zero_levels;
    lw.stats.fold_rel_error = lw.fold.rel_error;
  }
}

namespace {

// The dequantized weights in the node's own layout.
std::vector<float> graph_layout_weights(const LayerWeights& lw) {
  std::vector<float> w_hat = lw.dequantize();
  if (lw.transposed) {
    const int64_t out = lw.out_channels(), in = int64_t(w_hat.size()) / std::max<int64_t>(1, out);
    w_hat = transpose2d(w_hat, out, in);
  }
  return w_hat;
}

}  // namespace

void write_layer_weights(Graph& g, const LayerWeights& lw) {
  const Node& n = g.nodes[lw.node];
  Tensor w = g.const_of(n.inputs[1]);  // keeps the graph's shape and dtype
  w.f = graph_layout_weights(lw);
  set_node_const(g, lw.node, 1, std::move(w), "_fgq_w");
  if (lw.conv)
    set_node_const(g, lw.node, 2, Tensor::f32({lw.out_channels()}, lw.bias), "_fgq_b");

  Attrs& a = g.nodes[lw.node].attrs;
  a.set_s("fgq_weight", lw.ternary ? "ternary" : "int8");
  if (lw.ternary) a.set_i("fgq_group", lw.tern.group);
  if (lw.runs_int8()) a.set_floats("fgq_wscale", lw.int8.scale);
  else a.erase("fgq_wscale");
}

}  // namespace fgq
