#include "graph/shape_inference.h"

#include <algorithm>
#include <functional>
#include <map>

#include "graph/error.h"
#include "graph/limits.h"
#include "graph/op_schema.h"
#include "graph/shape_rules.h"
#include "graph/window.h"

namespace fgq {
namespace {

// One node's view of the graph while inferring: input shapes, constants, errors naming it.
class Ctx {
 public:
  Ctx(Graph& g, const Node& n) : g_(g), n_(n) {}

  [[noreturn]] void error(const std::string& what) const { fail(g_.source, node_desc(n_) + ": " + what); }
  bool has(size_t k) const { return k < n_.inputs.size() && n_.inputs[k] >= 0; }
  const Shape& in(size_t k) const {
    if (!has(k)) error("input " + std::to_string(k) + " is missing");
    return g_.values[n_.inputs[k]].shape;
  }
  const Tensor* constant(size_t k) const {
    return has(k) && g_.values[n_.inputs[k]].constant ? &*g_.values[n_.inputs[k]].constant : nullptr;
  }
  // An int64 constant input, or the INTS attribute `attr` when the input is absent (the
  // attribute form of older opsets).
  std::vector<int64_t> ints_input_or_attr(size_t k, const char* attr, const char* role) const {
    if (has(k)) {
      const Tensor* t = constant(k);
      if (!t || t->dtype != DType::I64) error(std::string(role) + " must be a constant int64 tensor");
      return t->i;
    }
    return n_.attrs.ints(attr);
  }
  const Attrs& attrs() const { return n_.attrs; }
  const Node& node() const { return n_; }
  const Graph& graph() const { return g_; }
  void rank(size_t k, size_t r, const char* role) const {
    if (in(k).size() != r)
      error(std::string(role) + " must have rank " + std::to_string(r) + ", got " + shape_str(in(k)));
  }
  // Normalizes a possibly negative axis into [0, r).
  int64_t axis(int64_t a, int64_t r, const char* what = "axis") const {
    if (a < -r || a >= r)
      error(std::string(what) + " " + std::to_string(a) + " is out of range for rank " + std::to_string(r));
    return a < 0 ? a + r : a;
  }

 private:
  Graph& g_;
  const Node& n_;
};

using Rule = std::function<Shape(const Ctx&)>;

Shape same_as_input(const Ctx& c) { return c.in(0); }

Shape conv_shape(const Ctx& c) {
  const Shape& x = c.in(0);
  const Shape& w = c.in(1);
  c.rank(0, 4, "input");
  if (w.size() != 4) c.error("only 2-D convolution is supported: weight has shape " + shape_str(w));
  const int64_t group = c.attrs().i("group", 1);
  if (group < 1) c.error("group must be >= 1");
  if (x[1] != w[1] * group)
    c.error("input has " + std::to_string(x[1]) + " channels, weight expects " +
            std::to_string(w[1] * group));
  if (w[0] % group != 0)
    c.error(std::to_string(w[0]) + " output channels do not split into " + std::to_string(group) + " groups");
  const auto ks = c.attrs().ints("kernel_shape", {w[2], w[3]});
  if (ks != std::vector<int64_t>{w[2], w[3]})
    c.error("kernel_shape " + shape_str(ks) + " does not match weight " + shape_str(w));
  if (c.has(2) && c.in(2) != Shape{w[0]})
    c.error("bias has shape " + shape_str(c.in(2)) + ", expected [" + std::to_string(w[0]) + "]");
  const Window2d win = window_of(c.node(), w[2], w[3], x[2], x[3], c.graph().source);
  const int64_t oh = conv_out_size(x[2], win.kh, win.sh, win.dh, win.pt, win.pb);
  const int64_t ow = conv_out_size(x[3], win.kw, win.sw, win.dw, win.pl, win.pr);
  if (oh <= 0 || ow <= 0)
    c.error("kernel " + shape_str({w[2], w[3]}) + " does not fit input " + shape_str(x));
  Shape y{x[0], w[0], oh, ow};
  if (c.has(3) && c.in(3) != y)  // fused residual
    c.error("residual has shape " + shape_str(c.in(3)) + ", output is " + shape_str(y));
  return y;
}

Shape pool_shape(const Ctx& c) {
  const Shape& x = c.in(0);
  c.rank(0, 4, "input");
  const auto k = c.attrs().ints("kernel_shape");
  if (k.size() != 2) c.error("kernel_shape must have 2 values");
  const Window2d win = window_of(c.node(), k[0], k[1], x[2], x[3], c.graph().source);
  if (win.dh != 1 || win.dw != 1) c.error("dilated pooling is not supported");
  const bool ceil_mode = c.attrs().i("ceil_mode", 0) != 0;
  const int64_t oh = pool_out_size(x[2], win.kh, win.sh, win.pt, win.pb, ceil_mode);
  const int64_t ow = pool_out_size(x[3], win.kw, win.sw, win.pl, win.pr, ceil_mode);
  if (oh <= 0 || ow <= 0) c.error("kernel " + shape_str(k) + " does not fit input " + shape_str(x));
  // A window lying entirely in the padding would average nothing / take max of nothing.
  if (win.pt >= win.kh || win.pb >= win.kh || win.pl >= win.kw || win.pr >= win.kw)
    c.error("pads must be smaller than the kernel");
  return {x[0], x[1], oh, ow};
}

// Integer convolution (graph/pass_lower_integer.h): Conv's geometry with inputs
// (x, w, levels, mult, bias, residual); a [N, C] input is a 1x1 image (fully connected layer).
Shape qconv_shape(const Ctx& c) {
  const Shape& x = c.in(0);
  const Shape& w = c.in(1);
  if (x.size() != 2 && x.size() != 4) c.error("input must be [N,C,H,W] or [N,C], got " + shape_str(x));
  if (w.size() != 4) c.error("weight must be [K,C,KH,KW], got " + shape_str(w));
  if (c.attrs().i("group", 1) != 1) c.error("grouped integer convolution is not supported");
  if (x[1] != w[1])
    c.error("input has " + std::to_string(x[1]) + " channels, weight expects " + std::to_string(w[1]));
  for (size_t k : {size_t(3), size_t(4)})
    if (c.in(k) != Shape{w[0]})
      c.error("input " + std::to_string(k) + " has shape " + shape_str(c.in(k)) + ", expected [" +
              std::to_string(w[0]) + "]");
  Shape y;
  if (x.size() == 2) {
    if (w[2] != 1 || w[3] != 1) c.error("a [N,C] input needs a 1x1 kernel, weight is " + shape_str(w));
    y = {x[0], w[0]};
  } else {
    const Window2d win = window_of(c.node(), w[2], w[3], x[2], x[3], c.graph().source);
    const int64_t oh = conv_out_size(x[2], win.kh, win.sh, win.dh, win.pt, win.pb);
    const int64_t ow = conv_out_size(x[3], win.kw, win.sw, win.dw, win.pl, win.pr);
    if (oh <= 0 || ow <= 0) c.error("kernel " + shape_str({w[2], w[3]}) + " does not fit input " + shape_str(x));
    y = {x[0], w[0], oh, ow};
  }
  if (c.has(5) && c.in(5) != y)
    c.error("residual has shape " + shape_str(c.in(5)) + ", output is " + shape_str(y));
  return y;
}

Shape global_pool_shape(const Ctx& c) {
  Shape x = c.in(0);
  if (x.size() < 3) c.error("input must be N,C,spatial..., got " + shape_str(x));
  std::fill(x.begin() + 2, x.end(), 1);
  return x;
}

// Per-channel parameters (BatchNormalization scale/B/mean/var, ChannelAffine scale/shift).
Shape channel_op_shape(const Ctx& c) {
  const Shape& x = c.in(0);
  if (x.size() < 2) c.error("input must be N,C,..., got " + shape_str(x));
  for (size_t k = 1; k < c.node().inputs.size(); ++k)
    if (numel(c.in(k)) != x[1] || c.in(k).size() != 1)
      c.error("parameter " + std::to_string(k) + " has shape " + shape_str(c.in(k)) +
              ", expected [" + std::to_string(x[1]) + "]");
  return x;
}

Shape broadcast_rule(const Ctx& c) { return broadcast_shapes(c.in(0), c.in(1), c.graph(), c.node()); }

Shape flatten_shape(const Ctx& c) {
  const Shape& x = c.in(0);
  const int64_t r = static_cast<int64_t>(x.size());
  int64_t a = c.attrs().i("axis", 1);
  if (a < -r || a > r) c.error("axis " + std::to_string(a) + " is out of range for rank " + std::to_string(r));
  if (a < 0) a += r;
  return {numel(Shape(x.begin(), x.begin() + a)), numel(Shape(x.begin() + a, x.end()))};
}

Shape reshape_shape(const Ctx& c) {
  const Shape& x = c.in(0);
  const Tensor* t = c.constant(1);
  if (!t || t->dtype != DType::I64)
    c.error("shape input must be a constant int64 tensor (it could not be folded)");
  if (t->shape.size() != 1) c.error("shape input must be 1-D, got " + shape_str(t->shape));
  if (t->i.size() > kMaxRank) c.error("target rank " + std::to_string(t->i.size()) + " is too large");
  const bool allow_zero = c.attrs().i("allowzero", 0) != 0;
  Shape y;
  int infer_at = -1;
  for (size_t k = 0; k < t->i.size(); ++k) {
    int64_t d = t->i[k];
    if (d == 0 && !allow_zero) {
      if (k >= x.size()) c.error("shape entry 0 at position " + std::to_string(k) + " has no input dim to copy");
      d = x[k];
    } else if (d == -1) {
      if (infer_at >= 0) c.error("shape has more than one -1");
      infer_at = static_cast<int>(k);
      d = 1;
    } else if (d < 0 || d > kMaxElements) {
      c.error("invalid shape entry " + std::to_string(d));
    }
    y.push_back(d);
  }
  const auto known = capped_numel(y);
  if (!known) c.error("target shape " + shape_str(t->i) + " is too large");
  const int64_t n = numel(x);
  if (infer_at >= 0) {
    if (*known == 0 || n % *known != 0)
      c.error("cannot reshape " + shape_str(x) + " to " + shape_str(t->i));
    y[infer_at] = n / *known;
  } else if (*known != n) {
    c.error("cannot reshape " + shape_str(x) + " (" + std::to_string(n) + " elements) to " + shape_str(y));
  }
  return y;
}

Shape gemm_shape(const Ctx& c) {
  c.rank(0, 2, "A");
  c.rank(1, 2, "B");
  const Shape& a = c.in(0);
  const Shape& b = c.in(1);
  const bool ta = c.attrs().i("transA", 0) != 0, tb = c.attrs().i("transB", 0) != 0;
  const int64_t M = ta ? a[1] : a[0], K = ta ? a[0] : a[1];
  const int64_t Kb = tb ? b[1] : b[0], N = tb ? b[0] : b[1];
  if (K != Kb) c.error("A " + shape_str(a) + " and B " + shape_str(b) + " do not match");
  Shape y{M, N};
  if (c.has(2)) {
    // C broadcasts one way onto [M, N].
    const Shape& cs = c.in(2);
    if (cs.size() > 2) c.error("C has shape " + shape_str(cs) + ", which does not broadcast to " + shape_str(y));
    for (size_t k = 0; k < cs.size(); ++k) {
      const int64_t target = y[2 - cs.size() + k];
      if (cs[k] != 1 && cs[k] != target)
        c.error("C has shape " + shape_str(cs) + ", which does not broadcast to " + shape_str(y));
    }
  }
  return y;
}

Shape matmul_shape(const Ctx& c) {
  const Shape& a = c.in(0);
  const Shape& b = c.in(1);
  if (a.size() != 2 || b.size() != 2)
    c.error("only 2-D MatMul is supported, got " + shape_str(a) + " x " + shape_str(b));
  if (a[1] != b[0]) c.error("A " + shape_str(a) + " and B " + shape_str(b) + " do not match");
  return {a[0], b[1]};
}

Shape softmax_shape(const Ctx& c) {
  const Shape& x = c.in(0);
  c.axis(c.attrs().i("axis", -1), static_cast<int64_t>(x.size()));
  return x;
}

Shape pad_shape(const Ctx& c) {
  Shape x = c.in(0);
  const auto p = c.ints_input_or_attr(1, "pads", "pads");
  if (p.size() != 2 * x.size())
    c.error("pads has " + std::to_string(p.size()) + " values, input rank " + std::to_string(x.size()) +
            " needs " + std::to_string(2 * x.size()));
  if (c.has(2)) {
    const Tensor* v = c.constant(2);
    if (!v || v->numel() != 1) c.error("constant_value must be a constant scalar");
  }
  if (c.has(3)) c.error("the axes input is not supported");
  for (int64_t v : p)
    if (v < 0 || v > kMaxWindowParam) c.error("pad value " + std::to_string(v) + " is not supported");
  for (size_t k = 0; k < x.size(); ++k) x[k] += p[k] + p[k + x.size()];
  return x;
}

Shape concat_shape(const Ctx& c) {
  Shape y = c.in(0);
  const int64_t a = c.axis(c.attrs().i("axis", 0), static_cast<int64_t>(y.size()));
  for (size_t k = 1; k < c.node().inputs.size(); ++k) {
    const Shape& s = c.in(k);
    bool ok = s.size() == y.size();
    for (size_t d = 0; ok && d < s.size(); ++d) ok = static_cast<int64_t>(d) == a || s[d] == y[d];
    if (!ok) c.error("cannot concatenate " + shape_str(c.in(0)) + " and " + shape_str(s) + " on axis " + std::to_string(a));
    y[a] += s[a];
    if (y[a] > kMaxElements) c.error("output is too large");
  }
  return y;
}

Shape shape_of_shape(const Ctx& c) { return {static_cast<int64_t>(c.in(0).size())}; }

Shape gather_shape(const Ctx& c) {
  const Shape& x = c.in(0);
  const int64_t a = c.axis(c.attrs().i("axis", 0), static_cast<int64_t>(x.size()));
  const Shape& idx = c.in(1);
  Shape y(x.begin(), x.begin() + a);
  y.insert(y.end(), idx.begin(), idx.end());
  y.insert(y.end(), x.begin() + a + 1, x.end());
  if (y.size() > kMaxRank) c.error("output rank is too large");
  return y;
}

std::vector<int64_t> sorted_axes(const Ctx& c, std::vector<int64_t> axes, int64_t r) {
  for (auto& a : axes) a = c.axis(a, r, "axes entry");
  std::sort(axes.begin(), axes.end());
  if (std::adjacent_find(axes.begin(), axes.end()) != axes.end()) c.error("axes has duplicates");
  return axes;
}

Shape unsqueeze_shape(const Ctx& c) {
  const Shape& x = c.in(0);
  const auto raw = c.ints_input_or_attr(1, "axes", "axes");
  const int64_t r = static_cast<int64_t>(x.size() + raw.size());
  if (raw.empty() || static_cast<size_t>(r) > kMaxRank) c.error("invalid axes");
  const auto axes = sorted_axes(c, raw, r);
  Shape y;
  size_t src = 0;
  for (int64_t d = 0; d < r; ++d)
    y.push_back(std::binary_search(axes.begin(), axes.end(), d) ? 1 : x[src++]);
  return y;
}

Shape squeeze_shape(const Ctx& c) {
  const Shape& x = c.in(0);
  const int64_t r = static_cast<int64_t>(x.size());
  std::vector<int64_t> axes;
  if (c.has(1) || c.attrs().has("axes")) {
    axes = sorted_axes(c, c.ints_input_or_attr(1, "axes", "axes"), r);
    for (int64_t a : axes)
      if (x[a] != 1) c.error("cannot squeeze axis " + std::to_string(a) + " of " + shape_str(x));
  } else {
    for (int64_t d = 0; d < r; ++d)
      if (x[d] == 1) axes.push_back(d);
  }
  Shape y;
  for (int64_t d = 0; d < r; ++d)
    if (!std::binary_search(axes.begin(), axes.end(), d)) y.push_back(x[d]);
  return y;
}

Shape transpose_shape(const Ctx& c) {
  const Shape& x = c.in(0);
  const int64_t r = static_cast<int64_t>(x.size());
  std::vector<int64_t> perm = c.attrs().ints("perm");
  if (!c.attrs().has("perm"))
    for (int64_t d = r - 1; d >= 0; --d) perm.push_back(d);
  if (static_cast<int64_t>(perm.size()) != r) c.error("perm does not match the input rank");
  Shape y;
  std::vector<bool> used(r, false);
  for (int64_t p : perm) {
    if (p < 0 || p >= r || used[p]) c.error("perm " + shape_str(perm) + " is not a permutation");
    used[p] = true;
    y.push_back(x[p]);
  }
  return y;
}

const std::map<std::string, Rule>& rules() {
  static const std::map<std::string, Rule> r = {
      {"Conv", conv_shape},
      {"MaxPool", pool_shape},
      {"AveragePool", pool_shape},
      {"GlobalAveragePool", global_pool_shape},
      {"BatchNormalization", channel_op_shape},
      {"ChannelAffine", channel_op_shape},
      {"Relu", same_as_input},
      {"Identity", same_as_input},
      {"Dropout", same_as_input},
      {"FakeQuant", same_as_input},
      {"Quantize", same_as_input},
      {"Dequantize", same_as_input},
      {"QConv", qconv_shape},
      {"QGlobalAveragePool", global_pool_shape},
      {"Cast", same_as_input},
      {"Add", broadcast_rule},
      {"Sub", broadcast_rule},
      {"Mul", broadcast_rule},
      {"Div", broadcast_rule},
      {"Flatten", flatten_shape},
      {"Reshape", reshape_shape},
      {"Gemm", gemm_shape},
      {"MatMul", matmul_shape},
      {"Softmax", softmax_shape},
      {"Pad", pad_shape},
      {"Concat", concat_shape},
      {"Shape", shape_of_shape},
      {"Gather", gather_shape},
      {"Unsqueeze", unsqueeze_shape},
      {"Squeeze", squeeze_shape},
      {"Transpose", transpose_shape},
  };
  return r;
}

// Element type of n's outputs. Integer values are made by the integer ops (their attribute
// "to" / "out_type") and kept by the ops that only move or select values.
DType output_dtype(const Ctx& c) {
  const std::string& op = c.node().op;
  std::string name;
  if (op == "Quantize") name = c.attrs().s("to", "");
  else if (op == "QConv" || op == "QGlobalAveragePool") name = c.attrs().s("out_type", "");
  else if (op == "MaxPool" || op == "Flatten" || op == "Reshape" || op == "Identity" || op == "Dropout")
    return c.graph().values[c.node().inputs.at(0)].dtype;
  else
    return DType::F32;
  const std::optional<DType> t = dtype_from_name(name);
  const bool ok = t && (*t == DType::U8 || *t == DType::S8 || *t == DType::U4 ||
                        (*t == DType::F32 && op == "QConv"));
  if (!ok) c.error("unsupported output type '" + name + "'");
  return *t;
}

}  // namespace

Shape broadcast_shapes(const Shape& a, const Shape& b, const Graph& g, const Node& n) {
  const size_t r = std::max(a.size(), b.size());
  Shape y(r);
  for (size_t k = 0; k < r; ++k) {
    const int64_t da = k + a.size() >= r ? a[k + a.size() - r] : 1;
    const int64_t db = k + b.size() >= r ? b[k + b.size() - r] : 1;
    if (da != db && da != 1 && db != 1)
      fail(g.source, node_desc(n) + ": shapes " + shape_str(a) + " and " + shape_str(b) + " cannot broadcast");
    y[k] = da == 1 ? db : da;
  }
  return y;
}

void infer_node_shapes(Graph& g, const Node& n) {
  const Ctx c(g, n);
  auto it = rules().find(n.op);
  if (it == rules().end()) c.error("no shape inference for this op");
  for (size_t k = 0; k < n.inputs.size(); ++k)
    if (n.inputs[k] < -1 || n.inputs[k] >= static_cast<int>(g.values.size())) c.error("has an invalid input");
  Shape y = it->second(c);
  if (!capped_numel(y)) c.error("output shape " + shape_str(y) + " is too large");
  const DType t = output_dtype(c);
  for (int o : n.outputs) {
    if (o < 0 || o >= static_cast<int>(g.values.size())) c.error("has an invalid output");
    if (!g.values[o].is_const()) g.values[o].shape = y, g.values[o].dtype = t;  // Dropout's mask too
  }
}

void infer_shapes(Graph& g, int64_t batch) {
  if (batch < 1 || batch > kMaxElements) fail(g.source, "batch size " + std::to_string(batch) + " is invalid");
  for (int v : g.inputs) {
    Shape& s = g.values[v].shape;
    if (s.empty()) fail(g.source, "graph input '" + g.values[v].name + "' has no batch dimension");
    s[0] = batch;
    if (!capped_numel(s))
      fail(g.source, "graph input '" + g.values[v].name + "' is too large at batch " + std::to_string(batch));
  }
  for (const Node& n : g.nodes) {
    infer_node_shapes(g, n);
    // Kernels divide by channel and spatial sizes, so an empty activation is a broken model,
    // not a no-op (a Conv with 0 filters used to crash the executor). Folded constants may be
    // empty; only activations reach here.
    for (int o : n.outputs)
      if (!g.values[o].is_const() && numel(g.values[o].shape) == 0)
        fail(g.source, node_desc(n) + ": output " + shape_str(g.values[o].shape) + " is empty");
  }
}

}  // namespace fgq
