#pragma once
// Turns one graph node into a closure that runs it over a whole batch. All decisions (op
// dispatch, attribute parsing, shape checks, buffer addresses) happen here, once; the closure
// only loops over the batch.
#include <functional>
#include <string>
#include <vector>

#include "graph/ir.h"

namespace fgq::rt {

using Kernel = std::function<void(int batch)>;

// Where each value lives and its shape for one image (dim 0 == 1). Constants are read from the
// graph; activations from `act` (arena addresses, fixed for the executor's lifetime).
struct Bindings {
  const Graph& g;
  const std::vector<float*>& act;
  const std::vector<Shape>& shape1;
};

bool is_supported_op(const std::string& op);
// The output is the first input reinterpreted (Flatten, Reshape, Identity): it can share storage.
bool is_view_op(const std::string& op);
// The kernel stays correct when its output buffer is its first input's buffer.
bool runs_in_place(const std::string& op);

// Throws fgq::Error "<source>: executor: ..." naming the node on anything it cannot run.
Kernel compile_node(const Bindings& b, const Node& n);

}  // namespace fgq::rt
