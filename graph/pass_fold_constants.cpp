// fold_constants: evaluates constant subgraphs at load time, propagating shapes as it goes so
// that Shape(activation) can be evaluated too.
#include <algorithm>

#include "graph/const_eval.h"
#include "graph/error.h"
#include "graph/op_schema.h"
#include "graph/passes.h"
#include "graph/rewrite.h"
#include "graph/shape_rules.h"

namespace fgq {
namespace {

// Shape(x)[0] is the batch. A reshape target that carries it at position 0 means "keep the
// batch", which ONNX spells 0 (copy the input's dim): the form every exported Flatten reaches.
void resolve_batch_in_reshape(Graph& g, Node& n) {
  if (n.op != "Reshape" || n.inputs.size() < 2 || n.inputs[1] < 0) return;
  const Value& sv = g.values[n.inputs[1]];
  if (!sv.is_const() || !contains_batch_dim(*sv.constant)) return;
  std::vector<int64_t> dims = sv.constant->i;
  if (dims.empty() || dims[0] != kBatchDim || n.attrs.i("allowzero", 0) != 0) return;
  dims[0] = 0;
  if (std::count(dims.begin(), dims.end(), kBatchDim) != 0) return;  // batch elsewhere: no form
  const Shape shape = sv.constant->shape;
  n.inputs[1] = g.add_const(sv.name + "_keep_batch", Tensor::i64(shape, std::move(dims)));
}

}  // namespace

void fold_constants(Graph& g) {
  // Shapes at batch 1; the batch itself only appears as kBatchDim in folded values.
  for (int v : g.inputs) {
    Shape& s = g.values[v].shape;
    if (s.empty()) fail(g.source, "graph input '" + g.values[v].name + "' has no batch dimension");
    s[0] = 1;
  }
  std::vector<bool> dead(g.nodes.size(), false);
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    Node& n = g.nodes[k];
    if (auto t = evaluate_constant(g, n)) {
      g.set_const(n.outputs[0], std::move(*t));
      dead[k] = true;
      continue;
    }
    resolve_batch_in_reshape(g, n);
    infer_node_shapes(g, n);
  }
  erase_nodes(g, dead);
  // Whatever still reads a batch-dependent constant cannot run with a fixed graph.
  for (const Node& n : g.nodes)
    for (int in : n.inputs)
      if (in >= 0 && g.values[in].is_const() && contains_batch_dim(*g.values[in].constant))
        fail(g.source, node_desc(n) + ": input '" + g.values[in].name +
                           "' depends on the batch size in a way fgq cannot fold");
  for (int o : g.outputs)
    if (g.values[o].is_const() && contains_batch_dim(*g.values[o].constant))
      fail(g.source, "graph output '" + g.values[o].name + "' depends on the batch size");
}

}  // namespace fgq
