#pragma once
// fgq-bench: what each node of a graph computes (multiply-accumulates, and against which peak
// they count) and what its constants weigh.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "graph/ir.h"

namespace fgq::bench {

// Which peak a node's MACs are measured against.
enum class Kind { None, Int8, Fp32 };
const char* kind_name(Kind k);

struct NodeCost {
  std::string name, op, label;  // label: op with what is fused into it, e.g. "Conv+Add+Relu"
  Shape shape1;                 // output shape for one image (dim 0 = 1)
  int64_t macs1 = 0;            // multiply-accumulates for one image
  Kind kind = Kind::None;
};

// Per node of a graph whose activation shapes are inferred (dim 0 = the batch): MACs of a
// convolution (float Conv, any group; integer QConv, conv or fully connected) = output elements
// x weight elements per output channel; Gemm = M*N*K; MatMul = output elements x inner dim.
std::vector<NodeCost> node_costs(const Graph& g);

struct MacTotals {
  int64_t int8 = 0, fp32 = 0;  // per image
  int64_t all() const { return int8 + fp32; }
};
MacTotals mac_totals(const std::vector<NodeCost>& costs);

// Constant bytes by element type, counted the way Model::weight_bytes() counts them; constants
// no node reads (left behind by graph passes, yet resident) under "unreferenced".
std::map<std::string, size_t> const_bytes(const Graph& g);

}  // namespace fgq::bench
