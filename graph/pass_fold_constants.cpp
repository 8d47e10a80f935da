// fold_constants: evaluates constant subgraphs at load time, propagating shapes as it goes so
// that Shape(activation) can be evaluated too.
#include <algorithm>

#include "graph/const_eval.h"
#include "graph/error.h"
#include "graph/limits.h"
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

// Opset forms the importer marked (graph/onnx_import.cpp), resolved now that the input shapes
// are known. Returns nodes to run right after n (n itself may change op).
std::vector<Node> resolve_legacy_forms(Graph& g, Node& n) {
  auto shape = [&](size_t k) -> const Shape& { return g.values[n.inputs.at(k)].shape; };
  auto node_error = [&](const std::string& what) { fail(g.source, node_desc(n) + ": " + what); };
  if (n.attrs.has("broadcast_axis")) {
    // Opsets 1-6: B lines up with A's dims from `axis` on. Numpy aligns B with A's trailing
    // dims, so B gets trailing 1s for the dims of A after its own.
    const int64_t ra = static_cast<int64_t>(shape(0).size()), rb = static_cast<int64_t>(shape(1).size());
    int64_t axis = n.attrs.i("broadcast_axis", 0);
    if (axis < 0) axis += ra;
    if (axis < 0 || axis + rb > ra)
      fail(g.source, node_desc(n) + ": broadcast axis " + std::to_string(n.attrs.i("broadcast_axis", 0)) +
                         " does not fit B " + shape_str(shape(1)) + " into A " + shape_str(shape(0)));
    const int64_t trailing = ra - axis - rb;
    if (trailing > 0) {
      const Value& b = g.values[n.inputs[1]];
      if (!b.is_const())
        fail(g.source, node_desc(n) + ": opset-6 broadcasting of an activation from axis " +
                           std::to_string(axis) + " is not supported");
      Tensor t = *b.constant;
      t.shape.insert(t.shape.end(), static_cast<size_t>(trailing), 1);
      const std::string name = b.name + "_at_axis" + std::to_string(axis);
      n.inputs[1] = g.add_const(name, std::move(t));  // invalidates b
    }
    n.attrs.erase("broadcast_axis");
  }
  if (n.op == "Slice" && n.attrs.has("split_part")) {
    // One output of a Split (graph/onnx_import.cpp): [index, count], with the sizes, or an even
    // split (the last part smaller when the dim does not divide, as opset 18 says).
    const Shape& x = shape(0);
    const int64_t r = static_cast<int64_t>(x.size());
    const int64_t axis = normalize_axis(n.attrs.i("axis", 0), r, node_error);
    const std::vector<int64_t> part = n.attrs.ints("split_part");
    std::vector<int64_t> sizes = n.attrs.ints("split");
    const int64_t dim = x[axis];
    if (part.size() != 2 || part[1] < 1 || part[0] < 0 || part[0] >= part[1] ||
        (!sizes.empty() && static_cast<int64_t>(sizes.size()) != part[1]))
      fail(g.source, node_desc(n) + ": invalid split part");
    if (sizes.empty()) {
      const int64_t chunk = (dim + part[1] - 1) / part[1];
      for (int64_t k = 0, left = dim; k < part[1]; ++k, left -= chunk)
        sizes.push_back(std::max<int64_t>(0, std::min(chunk, left)));
    }
    int64_t total = 0, start = 0;
    for (size_t k = 0; k < sizes.size(); ++k) {
      if (sizes[k] < 0) fail(g.source, node_desc(n) + ": negative split size");
      if (static_cast<int64_t>(k) < part[0]) start += sizes[k];
      total += sizes[k];
      if (total > kMaxElements) fail(g.source, node_desc(n) + ": split sizes are too large");
    }
    if (total != dim)
      fail(g.source, node_desc(n) + ": split sizes add up to " + std::to_string(total) + ", the axis has " +
                         std::to_string(dim));
    const std::string base = n.name + "_split";
    const int64_t end = start + sizes[static_cast<size_t>(part[0])];
    const int s = g.add_const(base + "_starts", Tensor::i64({1}, {start}));
    const int e = g.add_const(base + "_ends", Tensor::i64({1}, {end}));
    const int a = g.add_const(base + "_axes", Tensor::i64({1}, {axis}));
    n.inputs = {n.inputs[0], s, e, a};
    for (const char* k : {"split_part", "split", "axis"}) n.attrs.erase(k);
  }
  if ((n.op == "Softmax" || n.op == "LogSoftmax") && n.attrs.has("coerce_2d")) {
    // Opsets 1-12 flatten to 2-D at the axis. Where every dim after the axis is 1 that is the
    // softmax over the axis (the opset 13 meaning).
    const Shape& x = shape(0);
    const int64_t r = static_cast<int64_t>(x.size());
    const int64_t axis = normalize_axis(n.attrs.i("axis", 1), r, node_error);
    n.attrs.erase("coerce_2d");
    if (std::all_of(x.begin() + axis + 1, x.end(), [](int64_t d) { return d == 1; })) return {};
    if (axis == 0) fail(g.source, node_desc(n) + ": softmax over the batch axis is not supported");
    // Otherwise the opset 13 ops that mean it: Reshape to [d0 .. d(axis-1), -1] (dims copied
    // with 0), the softmax over that last axis, Reshape back ([0, d1, ...]: the batch kept).
    std::vector<int64_t> flat(static_cast<size_t>(axis), 0), back(x.begin(), x.end());
    flat.push_back(-1);
    back[0] = 0;
    const int y = n.outputs.at(0);
    const std::string base = g.values[y].name;
    const int flat_shape = g.add_const(base + "_2d_shape", Tensor::i64({axis + 1}, flat));
    const int back_shape = g.add_const(base + "_nd_shape", Tensor::i64({r}, back));
    const int f = g.add_value(base + "_2d"), sm = g.add_value(base + "_2d_out");
    Node softmax;
    softmax.op = n.op;
    softmax.name = n.name;
    softmax.inputs = {f};
    softmax.outputs = {sm};
    softmax.attrs.set_i("axis", axis);
    Node reshape_back;
    reshape_back.op = "Reshape";
    reshape_back.name = n.name + "::nd";
    reshape_back.inputs = {sm, back_shape};
    reshape_back.outputs = {y};
    n.op = "Reshape";
    n.name += "::2d";
    n.attrs = Attrs();
    n.inputs = {n.inputs[0], flat_shape};
    n.outputs = {f};
    return {std::move(softmax), std::move(reshape_back)};
  }
  return {};
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
    std::vector<Node> after = resolve_legacy_forms(g, g.nodes[k]);
    if (!after.empty()) {
      g.nodes.insert(g.nodes.begin() + static_cast<std::ptrdiff_t>(k) + 1, std::make_move_iterator(after.begin()),
                     std::make_move_iterator(after.end()));
      dead.insert(dead.begin() + static_cast<std::ptrdiff_t>(k) + 1, after.size(), false);
    }
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
