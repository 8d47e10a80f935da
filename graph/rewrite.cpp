#include "graph/rewrite.h"

#include <algorithm>

namespace fgq {

void replace_uses(Graph& g, int from, int to) {
  for (Node& n : g.nodes) std::replace(n.inputs.begin(), n.inputs.end(), from, to);
  std::replace(g.outputs.begin(), g.outputs.end(), from, to);
}

int producer_of(const Graph& g, int v) {
  for (size_t k = 0; k < g.nodes.size(); ++k)
    if (std::find(g.nodes[k].outputs.begin(), g.nodes[k].outputs.end(), v) != g.nodes[k].outputs.end())
      return static_cast<int>(k);
  return -1;
}

void bypass_node(Graph& g, int node, int x, int y) {
  g.nodes[node].inputs.clear();
  g.nodes[node].outputs.clear();
  const int p = producer_of(g, x);
  if (g.is_graph_output(y) && p >= 0 && !g.is_graph_output(x)) {
    std::replace(g.nodes[p].outputs.begin(), g.nodes[p].outputs.end(), x, y);
    replace_uses(g, x, y);
    return;
  }
  replace_uses(g, y, x);
}

void erase_nodes(Graph& g, const std::vector<bool>& dead) {
  std::vector<Node> kept;
  for (size_t k = 0; k < g.nodes.size(); ++k)
    if (!dead[k]) kept.push_back(std::move(g.nodes[k]));
  g.nodes = std::move(kept);
}

}  // namespace fgq
