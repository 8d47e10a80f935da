// Padding rewrites: auto_pad to explicit pads, and Pad nodes merged into the conv/pool after.
#include <algorithm>
#include <array>
#include <optional>

#include "graph/error.h"
#include "graph/op_schema.h"
#include "graph/passes.h"
#include "graph/rewrite.h"
#include "graph/shape_inference.h"
#include "graph/window.h"

namespace fgq {
namespace {

bool is_window_op(const std::string& op) { return op == "Conv" || op == "MaxPool" || op == "AveragePool"; }

// [top, left, bottom, right] of a Pad that only pads H and W of an NCHW tensor with zeros;
// nullopt for any other Pad.
std::optional<std::array<int64_t, 4>> zero_hw_pads(const Graph& g, const Node& pad) {
  if (pad.attrs.s("mode", "constant") != "constant" || pad.outputs.size() != 1) return std::nullopt;
  std::vector<int64_t> p;
  float value = pad.attrs.f("value", 0.f);
  if (pad.inputs.size() > 1 && pad.inputs[1] >= 0) {
    const Value& pv = g.values[pad.inputs[1]];
    if (!pv.is_const() || pv.constant->dtype != DType::I64) return std::nullopt;
    p = pv.constant->i;
    if (pad.inputs.size() > 2 && pad.inputs[2] >= 0) {
      const Value& vv = g.values[pad.inputs[2]];
      if (!vv.is_const() || vv.constant->dtype != DType::F32 || vv.constant->numel() != 1) return std::nullopt;
      value = vv.constant->f[0];
    }
    if (pad.inputs.size() > 3 && pad.inputs[3] >= 0) return std::nullopt;  // axes
  } else {
    p = pad.attrs.ints("pads");
  }
  if (p.size() != 8 || value != 0.f || p[0] || p[1] || p[4] || p[5]) return std::nullopt;
  for (int64_t v : p)
    if (v < 0) return std::nullopt;
  return std::array<int64_t, 4>{p[2], p[3], p[6], p[7]};
}

// Max pooling treats padding as -inf; zero padding gives the same result only when no input is
// negative, i.e. the pad reads a ReLU output.
bool non_negative(const Graph& g, int v) {
  const int p = producer_of(g, v);
  if (p < 0) return false;
  const Node& n = g.nodes[p];
  return n.op == "Relu" || (n.op == "Conv" && n.attrs.s("activation", "") == "Relu");
}

bool can_absorb(const Graph& g, const Node& pad, const Node& reader) {
  if (reader.inputs.empty()) return false;
  if (reader.attrs.s("auto_pad", "NOTSET") != "NOTSET") return false;  // run make_pads_explicit
  if (reader.op == "Conv") return true;
  // With ceil_mode the last window's rule depends on where the padding sits, so keep the Pad.
  return reader.op == "MaxPool" && reader.attrs.i("ceil_mode", 0) == 0 && non_negative(g, pad.inputs[0]);
}

}  // namespace

void make_pads_explicit(Graph& g) {
  for (Node& n : g.nodes) {
    if (!is_window_op(n.op)) continue;
    const std::string ap = n.attrs.s("auto_pad", "NOTSET");
    if (ap == "NOTSET") continue;
    const Shape& x = g.values[n.inputs.at(0)].shape;
    Shape k = n.attrs.ints("kernel_shape");
    if (n.op == "Conv" && n.inputs.size() > 1) {
      const Shape& w = g.values[n.inputs[1]].shape;
      if (w.size() == 4) k = {w[2], w[3]};
    }
    if (x.size() != 4 || k.size() != 2)
      fail(g.source, node_desc(n) + ": run shape inference before make_pads_explicit");
    const Window2d win = window_of(n, k[0], k[1], x[2], x[3], g.source);
    n.attrs.set_ints("pads", {win.pt, win.pl, win.pb, win.pr});
    n.attrs.erase("auto_pad");
  }
}

void fuse_pad_into_conv_pool(Graph& g) {
  std::vector<bool> dead(g.nodes.size(), false);
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    const Node& pad = g.nodes[k];
    if (pad.op != "Pad") continue;
    const auto hw = zero_hw_pads(g, pad);
    if (!hw) continue;
    const int y = pad.outputs[0];
    const auto readers = g.consumers(y);
    if (readers.size() != 1 || g.is_graph_output(y)) continue;
    Node& r = g.nodes[readers[0]];
    if (r.inputs[0] != y || !can_absorb(g, pad, r)) continue;
    if (std::count(r.inputs.begin(), r.inputs.end(), y) != 1) continue;  // also a residual
    auto p = r.attrs.ints("pads", {0, 0, 0, 0});
    if (p.size() != 4) continue;
    for (int d = 0; d < 4; ++d) p[d] += (*hw)[d];
    r.attrs.set_ints("pads", p);
    r.inputs[0] = pad.inputs[0];
    dead[k] = true;
  }
  erase_nodes(g, dead);
}

}  // namespace fgq
