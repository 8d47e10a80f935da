// fold_batchnorm: inference BatchNormalization is a per-channel affine map
//   y = (x - mean) * s + beta,  s = gamma / sqrt(var + eps)
// which a preceding conv absorbs: W'[k] = W[k] * s[k], b'[k] = (b[k] - mean[k]) * s[k] + beta[k].
#include <cmath>

#include "graph/error.h"
#include "graph/op_schema.h"
#include "graph/passes.h"
#include "graph/rewrite.h"

namespace fgq {
namespace {

struct BnParams {
  std::vector<float> gamma, beta, mean, var;
  float eps;
  std::vector<float> scale() const {
    std::vector<float> s(gamma.size());
    for (size_t c = 0; c < s.size(); ++c) s[c] = gamma[c] / std::sqrt(var[c] + eps);
    return s;
  }
};

BnParams read_bn(const Graph& g, const Node& bn) {
  const char* const roles[] = {"scale", "B", "mean", "var"};
  std::vector<float>* dst[4];
  BnParams p;
  dst[0] = &p.gamma, dst[1] = &p.beta, dst[2] = &p.mean, dst[3] = &p.var;
  for (int k = 0; k < 4; ++k) {
    const int v = bn.inputs[k + 1];
    if (!g.values[v].is_const() || g.values[v].constant->dtype != DType::F32)
      fail(g.source, node_desc(bn) + ": " + roles[k] + " must be a constant float tensor");
    *dst[k] = g.values[v].constant->f;
  }
  const size_t C = p.gamma.size();
  if (p.beta.size() != C || p.mean.size() != C || p.var.size() != C)
    fail(g.source, node_desc(bn) + ": scale, B, mean and var differ in size");
  p.eps = bn.attrs.f("epsilon", 1e-5f);
  for (size_t c = 0; c < C; ++c)
    if (!(p.var[c] + p.eps > 0))
      fail(g.source, node_desc(bn) + ": var + epsilon must be positive (channel " + std::to_string(c) + ")");
  return p;
}

// A conv output read only by this BN, with constant float weights of matching channel count.
bool foldable_into_conv(const Graph& g, int conv, const Node& bn, size_t channels) {
  if (conv < 0) return false;
  const Node& c = g.nodes[conv];
  if (c.op != "Conv" || c.outputs.size() != 1 || c.inputs.size() > 3) return false;
  if (c.attrs.has("activation") || c.attrs.has("bn_gamma")) return false;
  const int y = c.outputs[0];
  if (g.is_graph_output(y) || g.consumers(y).size() != 1) return false;
  if (bn.inputs[0] != y) return false;
  const Value& w = g.values[c.inputs[1]];
  if (!w.is_const() || w.constant->dtype != DType::F32 || w.constant->shape.empty()) return false;
  if (w.constant->shape[0] != static_cast<int64_t>(channels)) return false;
  if (c.inputs.size() > 2 && c.inputs[2] >= 0) {
    const Value& b = g.values[c.inputs[2]];
    if (!b.is_const() || b.constant->dtype != DType::F32 || b.constant->numel() != static_cast<int64_t>(channels))
      return false;
  }
  return true;
}

// A constant the pass may overwrite: copied first if anything else reads it.
int private_const(Graph& g, int node, size_t input, const std::string& suffix) {
  const int v = g.nodes[node].inputs[input];
  if (g.consumers(v).size() == 1 && !g.is_graph_output(v)) return v;
  const int copy = g.add_const(g.values[v].name + suffix, *g.values[v].constant);
  g.nodes[node].inputs[input] = copy;
  return copy;
}

void fold_into_conv(Graph& g, int conv, const Node& bn, const BnParams& p) {
  const std::vector<float> s = p.scale();
  const size_t K = s.size();
  Node& c = g.nodes[conv];
  const int wv = private_const(g, conv, 1, "_bn_folded");
  Tensor wt = *g.values[wv].constant;
  std::vector<float>& w = wt.f;
  const size_t per_k = w.size() / K;
  for (size_t k = 0; k < K; ++k)
    for (size_t j = 0; j < per_k; ++j) w[k * per_k + j] *= s[k];
  g.set_const(wv, std::move(wt));

  std::vector<float> bias(K, 0.f);
  if (c.inputs.size() > 2 && c.inputs[2] >= 0) bias = g.values[c.inputs[2]].constant->f;
  for (size_t k = 0; k < K; ++k) bias[k] = (bias[k] - p.mean[k]) * s[k] + p.beta[k];
  const int bv = g.add_const(c.name + "_bn_bias", Tensor::f32({static_cast<int64_t>(K)}, std::move(bias)));
  c.inputs.resize(3, -1);
  c.inputs[2] = bv;

  c.attrs.set_floats("bn_gamma", p.gamma);
  c.attrs.set_floats("bn_beta", p.beta);
  c.attrs.set_floats("bn_mean", p.mean);
  c.attrs.set_floats("bn_var", p.var);
  c.attrs.set_f("bn_eps", p.eps);
  c.outputs[0] = bn.outputs[0];  // the conv now writes what the BN wrote
}

void to_channel_affine(Graph& g, Node& bn, const BnParams& p) {
  std::vector<float> s = p.scale(), shift(s.size());
  for (size_t c = 0; c < s.size(); ++c) shift[c] = p.beta[c] - p.mean[c] * s[c];
  const int64_t C = static_cast<int64_t>(s.size());
  const int sv = g.add_const(bn.name + "_scale", Tensor::f32({C}, std::move(s)));
  const int hv = g.add_const(bn.name + "_shift", Tensor::f32({C}, std::move(shift)));
  bn.op = "ChannelAffine";
  bn.inputs = {bn.inputs[0], sv, hv};
  bn.attrs = Attrs();
}

}  // namespace

void fold_batchnorm(Graph& g) {
  std::vector<bool> dead(g.nodes.size(), false);
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    Node& bn = g.nodes[k];
    if (bn.op != "BatchNormalization") continue;
    if (bn.inputs.size() != 5 || bn.outputs.size() != 1)
      fail(g.source, node_desc(bn) + ": needs 5 inputs and 1 output");
    const BnParams p = read_bn(g, bn);
    const int conv = producer_of(g, bn.inputs[0]);
    if (foldable_into_conv(g, conv, bn, p.gamma.size())) {
      fold_into_conv(g, conv, bn, p);
      dead[k] = true;
    } else {
      to_channel_affine(g, bn, p);
    }
  }
  erase_nodes(g, dead);
}

}  // namespace fgq
