#pragma once
// FGQ quantization (quant/quantize.h) run on this layer's Executor.
#include "quant/quantize.h"

namespace fgq {

// Runs a graph on the Executor with an observer after every node (see GraphRunner).
GraphRunner executor_runner();

// measure_fp32_reference() with everything a configuration may need: the conv moments and the
// GPTQ factors from opt.gptq_samples patches per layer (for a sweep to share).
Fp32Reference fp32_reference(const Graph& g, const QuantOptions& opt, const float* calib, int n_calib);

// quantize_graph_with() on the Executor; `reference` as there.
QuantReport quantize_graph(Graph& g, const QuantOptions& opt, const float* calib, int n_calib,
                           const Fp32Reference* reference = nullptr);

}  // namespace fgq
