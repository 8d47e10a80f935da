#pragma once
// Per-node shape rules behind infer_shapes(), exposed for passes that interleave shape
// propagation with rewriting (fold_constants evaluates Shape nodes as it goes).
#include "graph/ir.h"

namespace fgq {

// Sets the shapes of n's outputs from the shapes of its inputs (which must already be set).
// Throws fgq::Error naming g.source and the node.
void infer_node_shapes(Graph& g, const Node& n);

// Numpy-style broadcast of two shapes; throws (naming the node) if they are incompatible.
Shape broadcast_shapes(const Shape& a, const Shape& b, const Graph& g, const Node& n);

}  // namespace fgq
