// drop_identities: Identity, inference-mode Dropout and 1x1 pools with stride 1 and no padding
// (torchvision's AlexNet exports its adaptive 6x6 average pool that way) pass their input through.
#include "graph/error.h"
#include "graph/op_schema.h"
#include "graph/passes.h"
#include "graph/rewrite.h"

namespace fgq {
namespace {

bool is_identity_pool(const Node& n) {
  if (n.op != "MaxPool" && n.op != "AveragePool") return false;
  const Attrs& a = n.attrs;
  auto all_are = [&](const char* k, int64_t v) {
    for (int64_t x : a.ints(k)) if (x != v) return false;
    return true;
  };
  return a.ints("kernel_shape") == std::vector<int64_t>{1, 1} && all_are("strides", 1) &&
         all_are("pads", 0) && all_are("dilations", 1) &&
         a.i("storage_order", 0) == 0 && n.outputs.size() == 1;
}

}  // namespace

void drop_identities(Graph& g) {
  std::vector<bool> dead(g.nodes.size(), false);
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    Node& n = g.nodes[k];
    if (n.op != "Identity" && n.op != "Dropout" && !is_identity_pool(n)) continue;
    if (n.inputs.empty() || n.inputs[0] < 0 || n.outputs.empty())
      fail(g.source, node_desc(n) + ": needs an input and an output");
    if (n.outputs.size() > 1 && (!g.consumers(n.outputs[1]).empty() || g.is_graph_output(n.outputs[1])))
      fail(g.source, node_desc(n) + ": the dropout mask output is not supported");
    bypass_node(g, static_cast<int>(k), n.inputs[0], n.outputs[0]);
    dead[k] = true;
  }
  erase_nodes(g, dead);
}

}  // namespace fgq
