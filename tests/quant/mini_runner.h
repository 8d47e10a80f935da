#pragma once
// A tiny, slow reference interpreter (Conv, Relu, Add, GlobalAveragePool, Flatten, Gemm,
// MatMul, FakeQuant) so the quantizer can be tested without the runtime library.
#include <map>
#include <vector>

#include "quant/quantize.h"

namespace fgq::test {

struct MiniAct {
  Shape shape;
  std::vector<float> data;
};

// Runs g on `batch` images; calls observer (if set) after each node. Returns all activations
// by value id.
using MiniActs = std::map<int, MiniAct>;
MiniActs mini_run(const Graph& g, const float* input, int batch,
                                const GraphObserver& observer = {});
// The same as a GraphRunner for quantize_graph_with().
GraphRunner mini_runner();

}  // namespace fgq::test
