#pragma once
// Helpers for the graph tests: import a builder's model, look up nodes and values by name.
#include <algorithm>
#include <string>

#include "graph/ir.h"
#include "graph/onnx_import.h"
#include "support/onnx_builder.h"

namespace fgq::test {

inline Graph import_model(const OnnxBuilder& b, const std::string& name = "test.onnx") {
  const std::string bytes = b.bytes();
  return import_onnx_bytes(bytes.data(), bytes.size(), name);
}

inline int count_op(const Graph& g, const std::string& op) {
  return static_cast<int>(std::count_if(g.nodes.begin(), g.nodes.end(),
                                        [&](const Node& n) { return n.op == op; }));
}

inline const Node& node_named(const Graph& g, const std::string& name) {
  for (const Node& n : g.nodes)
    if (n.name == name) return n;
  throw std::runtime_error("no node " + name);
}

inline const Value& value_named(const Graph& g, const std::string& name) {
  const int v = g.find_value(name);
  if (v < 0) throw std::runtime_error("no value " + name);
  return g.values[v];
}

inline const Node& only_node(const Graph& g, const std::string& op) {
  const Node* found = nullptr;
  for (const Node& n : g.nodes)
    if (n.op == op) {
      if (found) throw std::runtime_error("two " + op + " nodes");
      found = &n;
    }
  if (!found) throw std::runtime_error("no " + op + " node");
  return *found;
}

}  // namespace fgq::test
