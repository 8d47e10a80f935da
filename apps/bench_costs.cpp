#include "bench_costs.h"

namespace fgq::bench {

const char* kind_name(Kind k) { return k == Kind::Int8 ? "int8" : k == Kind::Fp32 ? "fp32" : "none"; }

namespace {

const Shape& value_shape(const Graph& g, int v) {
  const Value& val = g.values.at(size_t(v));
  return val.is_const() ? val.constant->shape : val.shape;
}

}  // namespace

std::vector<NodeCost> node_costs(const Graph& g) {
  std::vector<NodeCost> out;
  for (const Node& n : g.nodes) {
    NodeCost c;
    c.name = n.name.empty() ? g.values[n.outputs.at(0)].name : n.name;
    c.op = c.label = n.op;
    const Shape& y = value_shape(g, n.outputs.at(0));
    c.shape1 = y;
    const int64_t batch = !y.empty() && y[0] > 0 ? y[0] : 1;
    if (!c.shape1.empty()) c.shape1[0] = 1;
    const int64_t out1 = numel(y) / batch;
    auto weight_per_output = [&](int wv) {
      const Shape& w = value_shape(g, wv);
      int64_t e = 1;
      for (size_t d = 1; d < w.size(); ++d) e *= w[d];
      return e;
    };
    if ((n.op == "Conv" || n.op == "QConv") && n.inputs.size() > 1 && n.inputs[1] >= 0) {
      c.macs1 = out1 * weight_per_output(n.inputs[1]);
      if (n.op == "QConv") {
        c.kind = n.attrs.i("emulate", 0) ? Kind::Fp32 : Kind::Int8;
        if (y.size() == 2) c.label += "(fc)";
        if (n.inputs.size() > 5 && n.inputs[5] >= 0) c.label += "+Add";
      } else {
        c.kind = Kind::Fp32;
        if (n.inputs.size() > 3 && n.inputs[3] >= 0) c.label += "+Add";
        const std::string act = n.attrs.s("activation", "");
        if (!act.empty()) c.label += "+" + act;
      }
    } else if ((n.op == "Gemm" || n.op == "MatMul") && n.inputs.size() > 1) {
      const Shape& a = value_shape(g, n.inputs[0]);
      int64_t k = a.empty() ? 0 : a.back();
      if (n.op == "Gemm" && n.attrs.i("transA", 0) && !a.empty()) k = a[0];
      c.macs1 = out1 * k;
      c.kind = Kind::Fp32;
    }
    out.push_back(std::move(c));
  }
  return out;
}

MacTotals mac_totals(const std::vector<NodeCost>& costs) {
  MacTotals t;
  for (const NodeCost& c : costs) (c.kind == Kind::Int8 ? t.int8 : t.fp32) += c.macs1;
  return t;
}

std::map<std::string, size_t> const_bytes(const Graph& g) {
  const std::vector<bool> read = g.read_by_nodes();
  std::map<std::string, size_t> by;
  for (size_t v = 0; v < g.values.size(); ++v)
    if (g.values[v].is_const()) {
      const Tensor& t = *g.values[v].constant;
      by[read[v] ? dtype_name(t.dtype) : "unreferenced"] +=
          t.f.size() * sizeof(float) + t.i.size() * sizeof(int64_t) + t.raw.size();
    }
  return by;
}

}  // namespace fgq::bench
