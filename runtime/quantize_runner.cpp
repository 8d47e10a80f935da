#include "runtime/quantize_runner.h"

#include "runtime/executor.h"

namespace fgq {

GraphRunner executor_runner() {
  return [](const Graph& graph, const float* input, int batch, const GraphObserver& observer) {
    Executor ex(graph, batch);
    ex.set_observer([&](const Node& node, int, float* out, const Shape& shape) {
      observer(ex.graph(), node, out, shape);
    });
    ex.run(input, batch);
    return ex.arena_bytes();
  };
}

Fp32Reference fp32_reference(const Graph& g, const QuantOptions& opt, const float* calib, int n_calib) {
  return measure_fp32_reference(g, calib, n_calib, true, opt.gptq_samples, executor_runner());
}

QuantReport quantize_graph(Graph& g, const QuantOptions& opt, const float* calib, int n_calib,
                           const Fp32Reference* reference) {
  return quantize_graph_with(g, opt, calib, n_calib, executor_runner(), reference);
}

}  // namespace fgq
