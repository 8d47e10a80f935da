#include "runtime/run_graph.h"

#include "graph/error.h"
#include "graph/passes.h"

namespace fgq {

bool has_fake_quant(const Graph& g) {
  for (const Node& n : g.nodes)
    if (n.op == "FakeQuant") return true;
  return false;
}

bool has_integer_ops(const Graph& g) {
  for (const Node& n : g.nodes)
    if (n.op == "Quantize" || n.op == "QConv" || n.op == "QGlobalAveragePool") return true;
  return false;
}

const char* run_mode_name(RunMode m) {
  switch (m) {
    case RunMode::Integer: return "integer";
    case RunMode::Simulate: return "simulate";
    case RunMode::FakeQuant: return "fake-quant";
  }
  return "?";
}

RunGraph make_run_graph(Graph g, RunMode mode) {
  RunGraph r;
  fuse_conv_activation(g);
  if (has_integer_ops(g)) {
    if (mode == RunMode::FakeQuant)
      fail(g.source, "is an integer model (saved lowered); the fake-quant graph needs the model "
                     "saved with --fake-quant, or the FP32 model quantized again");
    r.integer = true;
  } else if (mode != RunMode::FakeQuant && has_fake_quant(g)) {
    r.lowering = lower_to_integer(g);
    r.integer = true;
  }
  for (Node& n : g.nodes)
    if (n.op == "QConv") {
      if (mode == RunMode::Simulate) n.attrs.set_i("emulate", 1);
      else n.attrs.erase("emulate");
    }
  g.drop_unread_constants();  // e.g. the float weights the integer ops replaced
  r.graph = std::move(g);
  return r;
}

}  // namespace fgq
