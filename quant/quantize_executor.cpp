// quantize_graph() on runtime/'s Executor. A separate object file so that users of
// quantize_graph_with() (the quant tests) do not need the runtime library.
#include "quant/quantize.h"
#include "runtime/executor.h"

namespace fgq {

QuantReport quantize_graph(Graph& g, const QuantOptions& opt, const float* calib, int n_calib) {
  const GraphRunner run = [](const Graph& graph, const float* input, int batch,
                             const GraphObserver& observer) {
    Executor ex(graph, batch);
    const ConstantWriter write = [&](int v) { return ex.mutable_constant(v); };
    ex.set_observer([&](const Node& node, int, float* out, const Shape& shape) {
      observer(ex.graph(), node, out, shape, write);
    });
    ex.run(input, batch);
    return ex.arena_bytes();
  };
  return quantize_graph_with(g, opt, calib, n_calib, run);
}

}  // namespace fgq
