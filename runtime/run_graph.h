#pragma once
// What sessions execute, from a prepared graph (graph/prepare.h, not activation-fused): the
// FP32 network, a quantized one (simulated: quant/quantize.h), or one saved already lowered.
#include "graph/ir.h"
#include "graph/pass_lower_integer.h"

namespace fgq {

bool has_fake_quant(const Graph& g);
bool has_integer_ops(const Graph& g);  // Quantize / QConv / ...: lowered already

// How a quantized network runs.
enum class RunMode {
  Integer,    // the integer pipeline (graph/pass_lower_integer.h) on the integer kernels
  Simulate,   // the same integer graph, its convolutions on the FP32 kernels: integer-exact
              // (float sums of integer products are exact below 2^24), on independent code
  FakeQuant,  // the calibration graph as it is: real-valued FakeQuant on FP32 kernels (rounds
              // differently at requantization ties, so it drifts from the integer pipeline)
};
const char* run_mode_name(RunMode m);  // "integer" | "simulate" | "fake-quant"

struct RunGraph {
  Graph graph;
  bool integer = false;      // lowered to integer ops (Integer and Simulate)
  LoweringReport lowering;   // when lowered here
};

// Fuses conv activations and lowers a quantized graph as `mode` says. A graph saved lowered
// runs lowered (FakeQuant mode cannot undo that: error). An FP32 graph runs as it is.
RunGraph make_run_graph(Graph g, RunMode mode = RunMode::Integer);

}  // namespace fgq
