#pragma once
#include "graph/ir.h"

namespace fgq {

// Fill Value::shape for every activation, given the batch size, from the graph input shapes
// (their dim 0 is replaced by `batch`). Throws fgq::Error on inconsistent shapes.
void infer_shapes(Graph& g, int64_t batch);

}  // namespace fgq
