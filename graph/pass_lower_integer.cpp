// lower_to_integer: see pass_lower_integer.h for the patterns and the integer ops.
#include "graph/pass_lower_integer.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <map>
#include <optional>

#include "graph/error.h"
#include "graph/op_schema.h"
#include "graph/rewrite.h"
#include "graph/shape_inference.h"
#include "graph/ternary_codes.h"
#include "graph/window.h"

namespace fgq {
namespace {

// What a stored integer tensor means: real = scale * (stored - zero), stored in [lo, hi].
struct QValue {
  DType dtype = DType::U8;
  float scale = 1;
  int zero = 0;
  int lo = 0, hi = 255;
};

bool same_meaning(const QValue& a, const QValue& b) {
  return a.dtype == b.dtype && a.scale == b.scale && a.zero == b.zero && a.lo == b.lo && a.hi == b.hi;
}

bool is_layer(const Node& n) { return n.op == "Conv" || n.op == "Gemm" || n.op == "MatMul"; }

// A layer's quantized weights as [K][C][KH][KW] integers with per-channel scales.
struct IntWeights {
  Shape shape;               // [K, C, KH, KW]
  std::vector<int8_t> q;
  std::vector<float> scale;  // s_o per output channel
};

class Lowering {
 public:
  explicit Lowering(Graph& g) : g_(g) {
    prod_.assign(g.values.size(), -1);
    for (size_t i = 0; i < g.nodes.size(); ++i)
      for (int v : g.nodes[i].outputs) prod_[v] = static_cast<int>(i);
    done_.assign(g.nodes.size(), false);
  }

  LoweringReport run() {
    const std::vector<Node> nodes = g_.nodes;  // the original graph, read while rewriting
    for (size_t i = 0; i < nodes.size(); ++i) {
      if (done_[i]) continue;
      Node n = nodes[i];
      for (int& v : n.inputs) v = resolve(v);
      if (n.op == "FakeQuant") {
        lower_fake_quant(n);
      } else if (is_layer(n) && n.attrs.has("fgq_weight")) {
        if (!lower_layer(static_cast<int>(i), n)) keep_float(n);
      } else if (n.op == "GlobalAveragePool" && is_int(in0(n))) {
        if (!lower_global_avgpool(static_cast<int>(i), n)) keep_float(n);
      } else if (keeps_integers(n)) {
        q_[n.outputs[0]] = q_.at(in0(n));
        if (n.op == "MaxPool") ++report_.maxpool;
        out_.push_back(std::move(n));
      } else {
        keep_float(n);
      }
    }
    for (int& v : g_.outputs) {
      v = resolve(v);
      if (is_int(v)) v = dequantized(v);
    }
    g_.nodes = std::move(out_);
    g_.remove_dead_nodes();
    g_.toposort();
    infer_shapes(g_, 1);
    for (const auto& [v, qv] : q_)
      if (g_.values[v].dtype != qv.dtype && !g_.values[v].is_const() && prod_of_new(v))
        fail(g_.source, "lowering: value '" + g_.values[v].name + "' came out " +
                            dtype_name(g_.values[v].dtype) + ", expected " + dtype_name(qv.dtype));
    return report_;
  }

 private:
  // ---- values -------------------------------------------------------------------------------
  int resolve(int v) const {
    for (auto it = alias_.find(v); v >= 0 && it != alias_.end(); it = alias_.find(v)) v = it->second;
    return v;
  }
  static int in0(const Node& n) { return n.inputs.empty() ? -1 : n.inputs[0]; }
  bool is_int(int v) const { return v >= 0 && q_.count(v) != 0; }
  bool prod_of_new(int v) const {
    for (const Node& n : g_.nodes)
      for (int o : n.outputs)
        if (o == v) return true;
    return false;
  }
  [[noreturn]] void error(const Node& n, const std::string& what) const {
    fail(g_.source, "lowering: " + node_desc(n) + ": " + what);
  }

  // The original readers of value v (node indices), and whether the graph returns it.
  std::vector<int> readers(int v) const { return g_.consumers(v); }
  // The one original node reading v (not a graph output), or -1.
  int only_reader(int v) const {
    const auto r = readers(v);
    if (r.size() != 1 || g_.is_graph_output(v)) return -1;
    const Node& n = g_.nodes[r[0]];
    return std::count(n.inputs.begin(), n.inputs.end(), v) == 1 ? r[0] : -1;
  }

  // How the output of FakeQuant node f is stored.
  QValue storage_of(const Node& f) const {
    QValue qv;
    qv.scale = f.attrs.f("scale", 0);
    const int qmin = int(f.attrs.i("qmin", 0)), qmax = int(f.attrs.i("qmax", 0));
    if (!(qv.scale > 0) || !std::isfinite(qv.scale) || qmin >= qmax || qmin < -128 || qmax > 255)
      error(f, "needs a finite scale > 0 and -128 <= qmin < qmax <= 255");
    if (qmin >= 0) {
      qv.dtype = qmax <= 15 ? DType::U4 : DType::U8;
      qv.lo = qmin, qv.hi = qmax;
      return qv;
    }
    if (qmax > 127) error(f, "a signed range must end at 127 or below");
    // Signed: s8 when only fused convs read it as their residual, else u8 + 128 (conv inputs).
    bool residual_only = true;
    for (int r : readers(f.outputs[0])) {
      const Node& n = g_.nodes[r];
      residual_only = residual_only && n.op == "Conv" && n.inputs.size() > 3 &&
                      n.inputs[3] == f.outputs[0] && n.inputs[0] != f.outputs[0];
    }
    qv.dtype = residual_only ? DType::S8 : DType::U8;
    qv.zero = residual_only ? 0 : 128;
    qv.lo = qmin + qv.zero, qv.hi = qmax + qv.zero;
    return qv;
  }

  int new_value(const std::string& name, const Shape& shape) { return g_.add_value(name, shape); }

  // An integer value as float (one Dequantize per value).
  int dequantized(int v) {
    if (auto it = deq_.find(v); it != deq_.end()) return it->second;
    const QValue& qv = q_.at(v);
    const int y = new_value(g_.values[v].name + "_deq", g_.values[v].shape);
    Node d{"Dequantize", "deq/" + g_.values[v].name, {v}, {y}, {}};
    d.attrs.set_f("scale", qv.scale);
    d.attrs.set_i("zero_point", qv.zero);
    out_.push_back(std::move(d));
    ++report_.dequantize;
    deq_[v] = y;
    return y;
  }

  // ---- node rewrites ------------------------------------------------------------------------
  bool keeps_integers(const Node& n) const {
    const int x = in0(n);
    if (!is_int(x) || n.outputs.size() != 1) return false;
    if (n.op == "MaxPool") return q_.at(x).dtype == DType::U8 || q_.at(x).dtype == DType::U4;
    if (n.op != "Flatten" && n.op != "Reshape" && n.op != "Identity") return false;
    // Integer tensors are NHWC: reshaping keeps the meaning only without spatial extent.
    const Shape &xs = g_.values[x].shape, &ys = g_.values[n.outputs[0]].shape;
    auto flat = [](const Shape& s) { return s.size() == 2 || (s.size() == 4 && s[2] == 1 && s[3] == 1); };
    return xs == ys || (flat(xs) && flat(ys));
  }

  void keep_float(Node n) {
    for (int& v : n.inputs)
      if (is_int(v)) v = dequantized(v);
    out_.push_back(std::move(n));
  }

  void emit_quantize(int x, int y, const QValue& qv, const std::string& name) {
    Node qn{"Quantize", name, {x}, {y}, {}};
    qn.attrs.set_f("scale", qv.scale);
    qn.attrs.set_i("zero_point", qv.zero);
    qn.attrs.set_i("qmin", qv.lo);
    qn.attrs.set_i("qmax", qv.hi);
    qn.attrs.set_s("to", dtype_name(qv.dtype));
    out_.push_back(std::move(qn));
    ++report_.quantize;
  }

  // A FakeQuant no producer absorbed: quantizes a float value, or re-expresses an integer one.
  void lower_fake_quant(const Node& f) {
    const int x = in0(f), y = f.outputs.at(0);
    const QValue qv = storage_of(f);
    q_[y] = qv;
    if (is_int(x)) {
      if (same_meaning(q_.at(x), qv)) {
        alias_[y] = x;  // already these integers (e.g. behind a MaxPool)
        q_.erase(y);
        return;
      }
      emit_quantize(dequantized(x), y, qv, f.name);
      return;
    }
    emit_quantize(x, y, qv, f.name);
  }

  // The int8 weights of layer n as [K, C, KH, KW] (Gemm/MatMul: [K, C, 1, 1]): exact multiples
  // of fgq_wscale, or an error.
  IntWeights int_weights(const Node& n) const {
    const Tensor& wt = g_.const_of(n.inputs.at(1));
    if (wt.dtype != DType::F32) error(n, "weights must be float");
    IntWeights iw;
    Shape s = wt.shape;
    bool transposed = false;  // graph layout [C, K]
    if (n.op == "Conv") {
      if (s.size() != 4) error(n, "weights must be [K,C,KH,KW]");
      if (n.attrs.i("group", 1) != 1) error(n, "grouped convolutions are not lowered");
    } else {
      if (s.size() != 2) error(n, "weights must be a matrix");
      transposed = n.op == "MatMul" || n.attrs.i("transB", 0) == 0;
      s = transposed ? Shape{s[1], s[0], 1, 1} : Shape{s[0], s[1], 1, 1};
    }
    iw.shape = s;
    const int64_t K = s[0], per_k = s[1] * s[2] * s[3];
    iw.scale = n.attrs.floats("fgq_wscale");
    if (int64_t(iw.scale.size()) != K) error(n, "fgq_wscale needs " + std::to_string(K) + " values");
    iw.q.resize(size_t(K * per_k));
    for (int64_t k = 0; k < K; ++k) {
      const float so = iw.scale[size_t(k)];
      if (!(so > 0) || !std::isfinite(so)) error(n, "fgq_wscale must be finite and > 0");
      for (int64_t j = 0; j < per_k; ++j) {
        const float w = transposed ? wt.f[size_t(j * K + k)] : wt.f[size_t(k * per_k + j)];
        const float qf = std::nearbyint(w / so);
        // The simulation's weight is exactly the float product s_o * q: anything else is not
        // what the integer pipeline would run.
        if (!(std::fabs(qf) <= 127) || so * qf != w)
          error(n, "weight " + std::to_string(w) + " is not an int8 multiple of its channel scale " +
                       std::to_string(so));
        iw.q[size_t(k * per_k + j)] = int8_t(qf);
      }
    }
    return iw;
  }

  // Ternary codes and per-group levels of iw (every non-zero |q| in a group is the group's level).
  std::pair<Tensor, Tensor> ternary_tensors(const Node& n, const IntWeights& iw, int64_t group) const {
    const int64_t K = iw.shape[0], C = iw.shape[1], taps = iw.shape[2] * iw.shape[3];
    if (group < 1) error(n, "fgq_group must be >= 1");
    const int64_t G = (C + group - 1) / group;
    std::vector<uint8_t> levels(size_t(K * G * taps), 0);
    std::vector<int8_t> t(iw.q.size());
    for (int64_t k = 0; k < K; ++k)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t p = 0; p < taps; ++p) {
          const int64_t i = (k * C + c) * taps + p;
          const int v = iw.q[size_t(i)];
          t[size_t(i)] = int8_t(v > 0 ? 1 : v < 0 ? -1 : 0);
          if (!v) continue;
          uint8_t& level = levels[size_t((k * G + c / group) * taps + p)];
          if (level && level != std::abs(v))
            error(n, "ternary group has two levels (" + std::to_string(level) + ", " +
                         std::to_string(std::abs(v)) + ")");
          level = uint8_t(std::abs(v));
        }
    return {Tensor::bytes(DType::T2, iw.shape, pack_ternary_codes(t.data(), int64_t(t.size()))),
            Tensor::bytes(DType::U8, {K, G, iw.shape[2], iw.shape[3]}, std::move(levels))};
  }

  // Conv / Gemm / MatMul with quantized weights reading integers -> QConv. False: stays float.
  bool lower_layer(int index, const Node& n) {
    const std::string why_prefix = node_desc(n) + ": ";
    auto decline = [&](const std::string& why) {
      report_.float_layers.push_back(why_prefix + why);
      return false;
    };
    int x = in0(n);
    bool flat_input = false;  // Gemm over Flatten(integer [N,C,H,W]): an HxW convolution
    if (!is_int(x) && n.op != "Conv" && x >= 0 && prod_[x] >= 0) {
      const Node& fl = g_.nodes[prod_[x]];
      const int u = resolve(in0(fl));
      if ((fl.op == "Flatten" && fl.attrs.i("axis", 1) == 1) && is_int(u) && g_.values[u].shape.size() == 4) {
        x = u;
        flat_input = true;
      }
    }
    if (!is_int(x)) return decline("its input is not quantized");
    const QValue qx = q_.at(x);
    if (qx.dtype != DType::U8 && qx.dtype != DType::U4) return decline("its input is stored signed");
    if (!n.attrs.has("fgq_wscale"))
      return decline("its ternary scales are not folded into int8 levels (fold levels 0)");
    if (n.op == "Gemm" && n.attrs.i("transA", 0) != 0) return decline("transA=1");

    IntWeights iw = int_weights(n);
    const int64_t K = iw.shape[0];
    if (flat_input) {
      const Shape& xs = g_.values[x].shape;
      if (iw.shape[1] != xs[1] * xs[2] * xs[3]) error(n, "weights do not match the flattened input");
      iw.shape = {K, xs[1], xs[2], xs[3]};  // NCHW flatten order = [C][H][W] per output
    } else if (iw.shape[1] != g_.values[x].shape[1]) {
      error(n, "weights do not match the input channels");
    }
    double alpha = 1, beta = 1;
    std::vector<float> bias(size_t(K), 0.f);
    if (n.op == "Gemm") alpha = n.attrs.f("alpha", 1.f), beta = n.attrs.f("beta", 1.f);
    if (n.op != "MatMul" && n.inputs.size() > 2 && n.inputs[2] >= 0) {
      const Tensor& bt = g_.const_of(n.inputs[2]);
      if (bt.dtype != DType::F32 || (bt.numel() != K && bt.numel() != 1)) error(n, "bias must be [K] floats");
      for (int64_t k = 0; k < K; ++k) bias[size_t(k)] = bt.f[bt.numel() == 1 ? 0 : size_t(k)];
    }

    // Residual (fused Add) read as stored integers with zero point 0.
    int res = -1;
    if (n.op == "Conv" && n.inputs.size() > 3 && n.inputs[3] >= 0) {
      res = n.inputs[3];
      if (!is_int(res)) return decline("its residual input is not quantized");
      if (q_.at(res).zero != 0) return decline("its residual input has a zero point");
    }
    // ReLU: fused into the Conv, or a Relu node that is the layer's only reader.
    bool relu = n.attrs.s("activation", "") == "Relu";
    int y = n.outputs.at(0);
    std::vector<int> absorbed;
    if (const int r = only_reader(y); !relu && r >= 0 && g_.nodes[r].op == "Relu" && !done_[r]) {
      relu = true;
      absorbed.push_back(r);
      y = g_.nodes[r].outputs.at(0);
    }
    // Integer output when a FakeQuant is the only reader, else float logits.
    std::optional<QValue> qy;
    if (const int f = only_reader(y); f >= 0 && g_.nodes[f].op == "FakeQuant" && !done_[f]) {
      qy = storage_of(g_.nodes[f]);
      absorbed.push_back(f);
      y = g_.nodes[f].outputs.at(0);
    }

    const double s_out = qy ? qy->scale : 1.0;
    const int z_out = qy ? qy->zero : 0;
    std::vector<float> mult(static_cast<size_t>(K)), add(static_cast<size_t>(K));
    for (int64_t k = 0; k < K; ++k) {
      mult[size_t(k)] = float(alpha * double(qx.scale) * iw.scale[size_t(k)] / s_out);
      add[size_t(k)] = float(beta * double(bias[size_t(k)]) / s_out + z_out);
    }
    const std::string base = n.name.empty() ? g_.values[n.outputs[0]].name : n.name;
    Node qc{"QConv", n.name, {x}, {}, {}};
    // Ternary groups run along the weights' input index; over a Flatten of [C, H, W] (H*W > 1)
    // that is not the kernel's channel order (NHWC: groups of channels per tap), so such a layer
    // keeps its folded weights as int8: the same numbers, without the 2-bit storage.
    const bool ternary = n.attrs.s("fgq_weight", "") == "ternary" &&
                         (!flat_input || iw.shape[2] * iw.shape[3] == 1);
    if (ternary) {
      const int64_t group = n.attrs.i("fgq_group", 0);
      auto [codes, levels] = ternary_tensors(n, iw, group);
      qc.inputs.push_back(g_.add_const(base + "_codes", std::move(codes)));
      qc.inputs.push_back(g_.add_const(base + "_levels", std::move(levels)));
      qc.attrs.set_i("ternary_group", group);
      ++report_.qconv_ternary;
    } else {
      std::vector<uint8_t> bytes(iw.q.size());
      for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = uint8_t(iw.q[i]);
      qc.inputs.push_back(g_.add_const(base + "_w8", Tensor::bytes(DType::S8, iw.shape, std::move(bytes))));
      qc.inputs.push_back(-1);
    }
    qc.inputs.push_back(g_.add_const(base + "_mult", Tensor::f32({K}, std::move(mult))));
    qc.inputs.push_back(g_.add_const(base + "_bias", Tensor::f32({K}, std::move(add))));
    if (res >= 0) {
      qc.inputs.push_back(res);
      qc.attrs.set_f("res_scale", float(double(q_.at(res).scale) / s_out));
    }
    if (n.op == "Conv")
      for (const char* k : {"strides", "pads", "dilations"})
        if (n.attrs.has(k)) qc.attrs.set_ints(k, n.attrs.ints(k));
    if (res >= 0 && n.attrs.has("fgq_preadd_scale")) qc.attrs.set_f("preadd_scale", n.attrs.f("fgq_preadd_scale", 0));
    qc.attrs.set_i("in_zero_point", qx.zero);
    if (qy) {
      qc.attrs.set_f("clamp_lo", float(relu ? std::max(qy->lo, z_out) : qy->lo));
      qc.attrs.set_f("clamp_hi", float(qy->hi));
      qc.attrs.set_s("out_type", dtype_name(qy->dtype));
      qc.attrs.set_f("y_scale", qy->scale);
      qc.attrs.set_i("y_zero_point", qy->zero);
    } else {
      qc.attrs.set_f("clamp_lo", relu ? 0.f : -FLT_MAX);
      qc.attrs.set_f("clamp_hi", FLT_MAX);
      qc.attrs.set_s("out_type", "f32");
    }
    // A 1x1 output of an HxW convolution is [N,K,1,1]; the Gemm's readers want [N,K].
    if (flat_input) {
      const int y4 = new_value(g_.values[y].name + "_4d", {});
      qc.outputs = {y4};
      out_.push_back(std::move(qc));
      out_.push_back(Node{"Flatten", base + "/flatten", {y4}, {y}, {}});
    } else {
      qc.outputs = {y};
      out_.push_back(std::move(qc));
    }
    if (qy) q_[y] = *qy;
    if (flat_input && qy) q_[out_[out_.size() - 2].outputs[0]] = *qy;
    for (int a : absorbed) done_[a] = true;
    done_[index] = true;
    ++report_.qconv;
    return true;
  }

  // GlobalAveragePool of integers whose result (possibly flattened) is quantized again.
  bool lower_global_avgpool(int index, const Node& n) {
    const int x = in0(n);
    const QValue qx = q_.at(x);
    const Shape& xs = g_.values[x].shape;
    if (xs.size() != 4 || qx.zero != 0 || (qx.dtype != DType::U8 && qx.dtype != DType::U4)) return false;
    int view = -1, f = only_reader(n.outputs[0]);
    if (f >= 0 && (g_.nodes[f].op == "Flatten" || g_.nodes[f].op == "Reshape")) {
      view = f;
      f = only_reader(g_.nodes[f].outputs[0]);
    }
    if (f < 0 || g_.nodes[f].op != "FakeQuant" || done_[f]) return false;
    const QValue qy = storage_of(g_.nodes[f]);
    if (qy.zero != 0 || qy.dtype == DType::S8) return false;
    const int y = g_.nodes[f].outputs[0];
    const int pooled = view >= 0 ? new_value(g_.values[y].name + "_4d", {}) : y;
    Node p{"QGlobalAveragePool", n.name, {x}, {pooled}, {}};
    p.attrs.set_f("mult", float(double(qx.scale) / (double(xs[2]) * xs[3] * qy.scale)));
    p.attrs.set_i("qmin", qy.lo);
    p.attrs.set_i("qmax", qy.hi);
    p.attrs.set_s("out_type", dtype_name(qy.dtype));
    p.attrs.set_f("y_scale", qy.scale);
    p.attrs.set_i("y_zero_point", 0);
    out_.push_back(std::move(p));
    q_[pooled] = qy;
    if (view >= 0) {
      Node v = g_.nodes[view];
      v.inputs[0] = pooled;
      v.outputs = {y};
      out_.push_back(std::move(v));
      done_[view] = true;
    }
    q_[y] = qy;
    done_[f] = done_[index] = true;
    ++report_.global_avgpool;
    return true;
  }

  Graph& g_;
  std::vector<int> prod_;
  std::vector<bool> done_;
  std::vector<Node> out_;
  std::map<int, QValue> q_;
  std::map<int, int> alias_, deq_;
  LoweringReport report_;
};

}  // namespace

LoweringReport lower_to_integer(Graph& g) { return Lowering(g).run(); }

}  // namespace fgq
