// export_qdq_onnx_bytes: see onnx_export_qdq.h.
#include "graph/onnx_export_qdq.h"

#include <cfloat>
#include <cmath>
#include <cstring>
#include <map>

#include "graph/error.h"
#include "graph/file_write.h"
#include "graph/onnx_proto.h"
#include "graph/onnx_write.h"
#include "graph/op_schema.h"
#include "graph/ternary_codes.h"

namespace fgq {
namespace {

constexpr int64_t kQdqOpset = 17;

// What the stored integers of a value mean: real = scale * (stored - zero), stored in [lo, hi],
// and how the uint8 QDQ tensor relates: u8 = stored + shift (s8 is shifted by 128).
struct QMeaning {
  float scale = 1;
  int zero = 0;  // in uint8 terms
  int lo = 0, hi = 255;  // in uint8 terms
};

class QdqWriter {
 public:
  QdqWriter(const Graph& g, QdqForm form) : g_(g), form_(form) {
    m_.set_ir_version(8);
    m_.set_producer_name("fgq");
    auto* ai = m_.add_opset_import();
    ai->set_domain("");
    ai->set_version(kQdqOpset);
    for (const auto& [k, v] : g.metadata) {
      auto* p = m_.add_metadata_props();
      p->set_key(k);
      p->set_value(v);
    }
    gp_ = m_.mutable_graph();
    gp_->set_name("fgq_qdq");
  }

  std::string run() {
    bool lowered = false;
    for (const Node& n : g_.nodes) lowered = lowered || n.op == "Quantize" || n.op == "QConv";
    if (!lowered) fail(g_.source, "QDQ export needs the integer network (quantized and lowered)");
    for (int v : g_.inputs) set_value_info(*gp_->add_input(), g_.values[v]);
    for (const Node& n : g_.nodes) write_node(n);
    for (int v : g_.outputs) {
      if (g_.values[v].dtype != DType::F32) fail(g_.source, "graph output '" + g_.values[v].name + "' is not float");
      set_value_info(*gp_->add_output(), g_.values[v]);
    }
    std::string bytes;
    if (!m_.SerializeToString(&bytes)) fail(g_.source, "cannot serialise the QDQ model");
    return bytes;
  }

 private:
  // ---- emit helpers ---------------------------------------------------------------------------
  onnx::NodeProto& node(const std::string& op, const std::string& name,
                        const std::vector<std::string>& in, const std::vector<std::string>& out) {
    onnx::NodeProto& np = *gp_->add_node();
    np.set_op_type(op);
    np.set_name(name);
    for (const auto& i : in) np.add_input(i);
    for (const auto& o : out) np.add_output(o);
    return np;
  }
  static void attr_i(onnx::NodeProto& np, const std::string& k, int64_t v) {
    Attr a;
    a.kind = Attr::INT, a.i = v;
    set_attr(*np.add_attribute(), k, a);
  }
  static void attr_ints(onnx::NodeProto& np, const std::string& k, const std::vector<int64_t>& v) {
    Attr a;
    a.kind = Attr::INTS, a.ints = v;
    set_attr(*np.add_attribute(), k, a);
  }
  std::string init(const std::string& name, const Tensor& t) {
    set_tensor(*gp_->add_initializer(), name, t);
    return name;
  }
  std::string scalar_f(const std::string& name, float v) { return init(name, Tensor::f32({}, {v})); }
  std::string scalar_u8(const std::string& name, int v) {
    return init(name, Tensor::bytes(DType::U8, {}, {uint8_t(v)}));
  }

  // float `x` -> QuantizeLinear (uint8) [-> Clip to a narrower range] -> DequantizeLinear `y`.
  void qdq(const std::string& x, const std::string& y, const QMeaning& q) {
    const std::string s = scalar_f(y + "_scale", q.scale), z = scalar_u8(y + "_zero_point", q.zero);
    std::string u8 = y + "_u8";
    node("QuantizeLinear", y + "/Q", {x, s, z}, {u8});
    // The Fusable form drops a Clip that only excludes uint8 0 (-128 around zero point 128): ORT
    // would run it as an extra pass, and the value makes no difference to speed comparisons.
    const bool narrow = q.hi < 255 || q.lo > (form_ == QdqForm::Fusable ? 1 : 0);
    if (narrow) {
      const std::string lo = scalar_u8(y + "_lo", q.lo), hi = scalar_u8(y + "_hi", q.hi);
      node("Clip", y + "/Clip", {u8, lo, hi}, {y + "_u8c"});
      u8 = y + "_u8c";
    }
    node("DequantizeLinear", y + "/DQ", {u8, s, z}, {y});
  }

  const std::string& name(int v) const { return g_.values[v].name; }
  const QMeaning& meaning(int v, const Node& reader) const {
    auto it = q_.find(v);
    if (it == q_.end()) fail(g_.source, node_desc(reader) + ": input '" + name(v) + "' has no quantization");
    return it->second;
  }
  [[noreturn]] void unsupported(const Node& n, const std::string& why) const {
    fail(g_.source, "QDQ export: " + node_desc(n) + ": " + why);
  }

  // The stored range of an integer output as uint8 QDQ terms.
  QMeaning output_meaning(const Node& n, float scale, int zero, int lo, int hi) const {
    const DType t = g_.values[n.outputs[0]].dtype;
    QMeaning q;
    q.scale = scale;
    const int shift = t == DType::S8 ? 128 : 0;
    q.zero = zero + shift, q.lo = lo + shift, q.hi = hi + shift;
    if (!(scale > 0) || q.zero < 0 || q.zero > 255 || q.lo < 0 || q.hi > 255 || q.lo > q.hi)
      unsupported(n, "output range does not fit uint8");
    return q;
  }

  // ---- nodes ----------------------------------------------------------------------------------
  void write_node(const Node& n) {
    const int y = n.outputs.at(0);
    if (n.op == "Quantize") {
      const int64_t zero = n.attrs.i("zero_point", 0);
      q_[y] = output_meaning(n, n.attrs.f("scale", 0), int(zero), int(n.attrs.i("qmin", 0)), int(n.attrs.i("qmax", 0)));
      qdq(name(n.inputs[0]), name(y), q_[y]);
    } else if (n.op == "Dequantize") {
      node("Identity", n.name, {name(n.inputs[0])}, {name(y)});
    } else if (n.op == "QConv") {
      write_qconv(n);
    } else if (n.op == "QGlobalAveragePool") {
      const std::string pooled = name(y) + "_avg";
      node("GlobalAveragePool", n.name, {name(n.inputs[0])}, {pooled});
      q_[y] = output_meaning(n, n.attrs.f("y_scale", 0), 0, int(n.attrs.i("qmin", 0)), int(n.attrs.i("qmax", 255)));
      qdq(pooled, name(y), q_[y]);
    } else if (g_.values[n.inputs.at(0)].dtype != DType::F32) {
      // MaxPool / Flatten / Reshape / Identity on stored integers: the same op on the
      // dequantized values, requantized with the same meaning (ORT keeps it in uint8).
      if (n.op != "MaxPool" && n.op != "Flatten" && n.op != "Reshape" && n.op != "Identity")
        unsupported(n, "no QDQ form for this op on integers");
      const QMeaning q = meaning(n.inputs[0], n);
      copy_node(n, name(y) + "_f");
      q_[y] = q;
      qdq(name(y) + "_f", name(y), q);
    } else {
      copy_node(n, name(y));  // a float op: the same node
    }
  }

  void copy_node(const Node& n, const std::string& out) {
    std::vector<std::string> in;
    for (int v : n.inputs) {
      if (v >= 0 && g_.values[v].is_const() && !written_.count(v)) {
        init(name(v), *g_.values[v].constant);
        written_[v] = true;
      }
      in.push_back(v < 0 ? "" : name(v));
    }
    onnx::NodeProto& np = node(n.op, n.name, in, {out});
    for (const auto& [k, a] : n.attrs.all()) set_attr(*np.add_attribute(), k, a);
  }

  void write_qconv(const Node& n) {
    const int x = n.inputs.at(0), y = n.outputs.at(0);
    const Tensor& wt = g_.const_of(n.inputs.at(1));
    std::vector<int8_t> w;
    if (wt.dtype == DType::T2)
      w = expand_ternary(wt, g_.const_of(n.inputs.at(2)), n.attrs.i("ternary_group", 0), g_.source);
    else if (wt.dtype == DType::S8)
      w.assign(wt.s8(), wt.s8() + wt.numel());
    else
      unsupported(n, "weights must be s8 or t2");
    const Tensor& mult = g_.const_of(n.inputs.at(3));
    const Tensor& bias = g_.const_of(n.inputs.at(4));
    const int64_t K = wt.shape[0];
    const QMeaning qx = meaning(x, n);
    const bool f32 = g_.values[y].dtype == DType::F32;
    const double s_out = f32 ? 1.0 : n.attrs.f("y_scale", 0);
    const double z_out = f32 ? 0.0 : n.attrs.i("y_zero_point", 0);
    if (!(s_out > 0)) unsupported(n, "missing y_scale");
    // mult = x_s * w_s / y_s and bias' = b / y_s + z_y (pass_lower_integer.cpp): undo both.
    const size_t nk = static_cast<size_t>(K);
    std::vector<float> w_scale(nk), b_scale(nk);
    std::vector<int32_t> b_q(nk);
    for (int64_t k = 0; k < K; ++k) {
      const double m = mult.f[size_t(k)];
      w_scale[size_t(k)] = float(m * s_out / qx.scale);
      if (!(w_scale[size_t(k)] > 0)) w_scale[size_t(k)] = 1.f;  // an all-zero channel (mult 0)
      b_scale[size_t(k)] = qx.scale * w_scale[size_t(k)];  // float32, as ORT checks it
      const double b = (double(bias.f[size_t(k)]) - z_out) * s_out;
      b_q[size_t(k)] = int32_t(std::nearbyint(b / b_scale[size_t(k)]));
    }
    const std::string base = n.name.empty() ? name(y) : n.name;
    const bool fc = g_.values[x].shape.size() == 2;
    Shape wshape = wt.shape;
    if (fc) wshape = {wt.shape[0], wt.shape[1]};
    std::vector<uint8_t> wbytes(w.size());
    for (size_t i = 0; i < w.size(); ++i) wbytes[i] = uint8_t(w[i]);
    const std::string wq = init(base + "_wq", Tensor::bytes(DType::S8, wshape, std::move(wbytes)));
    const std::string ws = init(base + "_wscale", Tensor::f32({K}, w_scale));
    const std::string wz = init(base + "_wzero", Tensor::bytes(DType::S8, {K}, std::vector<uint8_t>(size_t(K), 0)));
    onnx::NodeProto& dqw = node("DequantizeLinear", base + "/DQ_w", {wq, ws, wz}, {base + "_w"});
    attr_i(dqw, "axis", 0);
    std::vector<uint8_t> braw(size_t(K) * 4);
    std::memcpy(braw.data(), b_q.data(), braw.size());
    const std::string bq = init(base + "_bq", Tensor::bytes(DType::I32, {K}, std::move(braw)));
    const std::string bs = init(base + "_bscale", Tensor::f32({K}, b_scale));
    std::vector<uint8_t> bz(size_t(K) * 4, 0);
    const std::string bzn = init(base + "_bzero", Tensor::bytes(DType::I32, {K}, std::move(bz)));
    onnx::NodeProto& dqb = node("DequantizeLinear", base + "/DQ_b", {bq, bs, bzn}, {base + "_b"});
    attr_i(dqb, "axis", 0);

    std::string cur = base + "_acc";
    if (fc) {
      onnx::NodeProto& gemm = node("Gemm", base, {name(x), base + "_w", base + "_b"}, {cur});
      attr_i(gemm, "transB", 1);
    } else {
      onnx::NodeProto& conv = node("Conv", base, {name(x), base + "_w", base + "_b"}, {cur});
      for (const char* k : {"strides", "pads", "dilations"})
        if (n.attrs.has(k)) attr_ints(conv, k, n.attrs.ints(k));
    }
    if (n.inputs.size() > 5 && n.inputs[5] >= 0) {
      meaning(n.inputs[5], n);  // the residual must be a stored integer
      if (form_ == QdqForm::Fusable && n.attrs.has("preadd_scale")) {
        QMeaning pre;  // signed: uint8 with zero point 128, -127..127
        pre.scale = n.attrs.f("preadd_scale", 0), pre.zero = 128, pre.lo = 1, pre.hi = 255;
        qdq(cur, base + "_preadd", pre);
        cur = base + "_preadd";
      }
      node("Add", base + "/add", {cur, name(n.inputs[5])}, {base + "_sum"});
      cur = base + "_sum";
    }
    const float lo = n.attrs.f("clamp_lo", 0);
    const bool relu = f32 ? lo >= 0 : lo >= z_out;
    if (relu) {
      node("Relu", base + "/relu", {cur}, {f32 ? name(y) : base + "_relu"});
      cur = base + "_relu";
    }
    if (f32) {
      if (!relu) node("Identity", base + "/out", {cur}, {name(y)});
      return;
    }
    q_[y] = output_meaning(n, float(s_out), int(z_out), int(lo), int(n.attrs.f("clamp_hi", 255)));
    qdq(cur, name(y), q_[y]);
  }

  const Graph& g_;
  QdqForm form_;
  onnx::ModelProto m_;
  onnx::GraphProto* gp_ = nullptr;
  std::map<int, QMeaning> q_;
  std::map<int, bool> written_;
};

}  // namespace

std::string export_qdq_onnx_bytes(const Graph& g, QdqForm form) { return QdqWriter(g, form).run(); }

void export_qdq_onnx_file(const Graph& g, const std::string& path, QdqForm form) {
  write_file_atomic(path, export_qdq_onnx_bytes(g, form));
}

}  // namespace fgq
