#pragma once
// What the importer accepts per op: input counts, and attribute checks for the subset of each
// op that fgq implements (2-D windows, constant padding, ...).
#include <string>

#include "graph/ir.h"

namespace fgq {

struct OpSpec {
  int min_inputs;
  int max_inputs;
  // Only evaluated at load time (shape arithmetic of exported Flatten/Reshape logic); the
  // runtime has no kernel for it, so it must fold away into a constant.
  bool constant_only;
};

// nullptr for ops fgq does not support.
const OpSpec* find_op_spec(const std::string& op_type);

// "node 'conv1' (Conv)": how errors name a node.
std::string node_desc(const Node& n);

// Checks input count and attributes; throws fgq::Error prefixed with `where`.
void validate_node(const Node& n, const std::string& where);

}  // namespace fgq
