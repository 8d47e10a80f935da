// fuse_conv_activation: Conv -> Add(residual) [-> Relu] and Conv -> Relu become one Conv node,
// so the executor writes each conv output once with the residual and ReLU applied.
#include <algorithm>

#include "graph/passes.h"
#include "graph/rewrite.h"
#include "graph/shape_inference.h"

namespace fgq {
namespace {

// Value v is an intermediate that only node `reader` reads.
bool single_use(const Graph& g, int v, int reader) {
  const auto c = g.consumers(v);
  return c.size() == 1 && c[0] == reader && !g.is_graph_output(v) &&
         std::count(g.nodes[reader].inputs.begin(), g.nodes[reader].inputs.end(), v) == 1;
}

// A conv with nothing fused yet.
bool plain_conv(const Node& n) {
  return n.op == "Conv" && n.outputs.size() == 1 && n.inputs.size() <= 3 && !n.attrs.has("activation");
}

// Absorbs the Relu reading conv `c`'s output, if it is the only reader.
bool absorb_relu(Graph& g, int c, std::vector<bool>& dead) {
  const int y = g.nodes[c].outputs[0];
  const auto readers = g.consumers(y);
  if (readers.size() != 1 || g.nodes[readers[0]].op != "Relu" || !single_use(g, y, readers[0])) return false;
  Node& relu = g.nodes[readers[0]];
  g.nodes[c].attrs.set_s("activation", "Relu");
  g.nodes[c].outputs[0] = relu.outputs[0];
  relu.inputs.clear();
  relu.outputs.clear();
  dead[readers[0]] = true;
  return true;
}

// Add(a, b) where one operand is a plain conv output read only by the Add and the other an
// activation of the same shape. Prefers the conv computed last, so the residual is ready.
void fuse_add(Graph& g, int add, std::vector<bool>& dead) {
  const int best_side = fused_add_operand(g, add);
  if (best_side < 0) return;
  const int best = producer_of(g, g.nodes[add].inputs[best_side]);
  Node& conv = g.nodes[best];
  conv.inputs.resize(4, -1);
  conv.inputs[3] = g.nodes[add].inputs[1 - best_side];
  conv.outputs[0] = g.nodes[add].outputs[0];
  g.nodes[add].inputs.clear();
  g.nodes[add].outputs.clear();
  dead[add] = true;
  absorb_relu(g, best, dead);
}

}  // namespace

int fused_add_operand(const Graph& g, int add) {
  const Node& a = g.nodes[add];
  if (a.op != "Add" || a.inputs.size() != 2 || a.outputs.size() != 1 || a.inputs[0] == a.inputs[1]) return -1;
  int best = -1, best_side = -1;
  for (int side = 0; side < 2; ++side) {
    const int v = a.inputs[side], other = a.inputs[1 - side];
    if (v < 0 || other < 0 || g.values[other].is_const() || g.values[v].shape != g.values[other].shape) continue;
    const int p = producer_of(g, v);
    if (p < 0 || !plain_conv(g.nodes[p]) || !single_use(g, v, add)) continue;
    if (p > best) best = p, best_side = side;
  }
  return best_side;
}

void fuse_conv_activation(Graph& g) {
  infer_shapes(g, 1);  // the residual must match the conv output exactly
  std::vector<bool> dead(g.nodes.size(), false);
  for (size_t k = 0; k < g.nodes.size(); ++k)
    if (!dead[k] && g.nodes[k].op == "Add") fuse_add(g, static_cast<int>(k), dead);
  for (size_t k = 0; k < g.nodes.size(); ++k)
    if (!dead[k] && plain_conv(g.nodes[k])) absorb_relu(g, static_cast<int>(k), dead);
  erase_nodes(g, dead);
  g.toposort();  // a residual may come from a node placed after the conv
}

}  // namespace fgq
