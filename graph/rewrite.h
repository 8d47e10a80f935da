#pragma once
// Small graph-editing helpers shared by the passes.
#include <vector>

#include "graph/ir.h"

namespace fgq {

// Makes every reader of value `from` (nodes and graph outputs) read `to` instead.
void replace_uses(Graph& g, int from, int to);

// Removes a node y = f(x) that passes x through unchanged: readers of y read x afterwards.
// When y is a graph output and x is an ordinary intermediate, x's producer writes y instead,
// so graph outputs keep their names.
void bypass_node(Graph& g, int node, int x, int y);

// Erases the nodes whose flag is set, keeping the order of the others.
void erase_nodes(Graph& g, const std::vector<bool>& dead);

// Index of the node that writes value v, or -1.
int producer_of(const Graph& g, int v);

}  // namespace fgq
