// drop_identities: Identity and inference-mode Dropout pass their input through.
#include "graph/error.h"
#include "graph/op_schema.h"
#include "graph/passes.h"
#include "graph/rewrite.h"

namespace fgq {

void drop_identities(Graph& g) {
  std::vector<bool> dead(g.nodes.size(), false);
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    Node& n = g.nodes[k];
    if (n.op != "Identity" && n.op != "Dropout") continue;
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
