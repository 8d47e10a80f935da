#include "graph/shape_inference.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <optional>

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
    return normalize_axis(a, r, [this](const std::string& m) { error(m); }, false, what);
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
  // A dilated window spans (k - 1) * d + 1 input positions; the output size follows from that
  // span as from an undilated kernel of that size.
  const int64_t eh = (win.kh - 1) * win.dh + 1, ew = (win.kw - 1) * win.dw + 1;
  const bool ceil_mode = c.attrs().i("ceil_mode", 0) != 0;
  const int64_t oh = pool_out_size(x[2], eh, win.sh, win.pt, win.pb, ceil_mode);
  const int64_t ow = pool_out_size(x[3], ew, win.sw, win.pl, win.pr, ceil_mode);
  if (oh <= 0 || ow <= 0) c.error("kernel " + shape_str(k) + " does not fit input " + shape_str(x));
  // A window lying entirely in the padding would average nothing / take max of nothing.
  if (win.pt >= eh || win.pb >= eh || win.pl >= ew || win.pr >= ew)
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
  const int64_t a = normalize_axis(c.attrs().i("axis", 1), r, [&](const std::string& m) { c.error(m); }, true);
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

// PRelu's slope broadcasts one way onto X.
Shape prelu_shape(const Ctx& c) {
  const Shape y = broadcast_rule(c);
  if (y != c.in(0)) c.error("slope " + shape_str(c.in(1)) + " does not broadcast onto X " + shape_str(c.in(0)));
  return y;
}

Shape clip_shape(const Ctx& c) {
  for (size_t k = 1; k < 3; ++k)
    if (c.has(k) && numel(c.in(k)) != 1) c.error(std::string(k == 1 ? "min" : "max") + " must be a scalar");
  return c.in(0);
}

Shape depth_space_shape(const Ctx& c) {
  c.rank(0, 4, "input");
  const Shape& x = c.in(0);
  const int64_t b = c.attrs().i("blocksize", 0);
  if (b < 1 || b > kMaxWindowParam) c.error("blocksize must be >= 1");
  if (c.node().op == "DepthToSpace") {
    if (x[1] % (b * b)) c.error("channels " + std::to_string(x[1]) + " are not a multiple of blocksize^2");
    return {x[0], x[1] / (b * b), x[2] * b, x[3] * b};
  }
  if (x[2] % b || x[3] % b) c.error("height and width are not multiples of blocksize " + std::to_string(b));
  return {x[0], x[1] * b * b, x[2] / b, x[3] / b};
}

Shape lrn_shape(const Ctx& c) {
  if (c.in(0).size() < 3) c.error("input must be N,C,spatial..., got " + shape_str(c.in(0)));
  if (c.attrs().i("size", 0) < 1) c.error("size must be >= 1");
  return c.in(0);
}

Shape conv_transpose_shape(const Ctx& c) {
  const Shape y = conv_transpose_geometry(c.graph(), c.node(), c.in(0), c.in(1)).out;
  if (c.has(2) && c.in(2) != Shape{y[1]})
    c.error("bias has shape " + shape_str(c.in(2)) + ", expected [" + std::to_string(y[1]) + "]");
  return y;
}

Shape resize_shape(const Ctx& c) { return resize_geometry(c.graph(), c.node(), c.in(0)).out; }

Shape reduce_shape(const Ctx& c) {
  const Shape& x = c.in(0);
  const std::vector<bool> red = reduce_axes(c.graph(), c.node(), x.size());
  const bool keep = c.attrs().i("keepdims", 1) != 0;
  Shape y;
  for (size_t k = 0; k < x.size(); ++k)
    if (!red[k]) y.push_back(x[k]);
    else if (keep) y.push_back(1);
  return y;
}

Shape slice_shape(const Ctx& c) { return slice_params(c.graph(), c.node(), c.in(0)).counts; }

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
      {"Slice", slice_shape},
      {"Pow", broadcast_rule},
      {"PRelu", prelu_shape},
      {"Max", broadcast_rule},
      {"Min", broadcast_rule},
      {"LogSoftmax", softmax_shape},
      {"Clip", clip_shape},
      {"GlobalMaxPool", global_pool_shape},
      {"DepthToSpace", depth_space_shape},
      {"SpaceToDepth", depth_space_shape},
      {"LRN", lrn_shape},
      {"InstanceNormalization", channel_op_shape},
      {"Resize", resize_shape},
      {"ConvTranspose", conv_transpose_shape},
  };
  static const std::map<std::string, Rule> with_unary = [] {
    std::map<std::string, Rule> m = r;
    for (const char* op : {"Sigmoid", "Tanh", "LeakyRelu", "HardSigmoid", "HardSwish", "Elu", "Celu", "Selu",
                           "ThresholdedRelu", "Softplus", "Softsign", "Neg", "Abs", "Exp", "Log", "Sqrt",
                           "Reciprocal", "Floor", "Ceil", "Round", "Erf"})
      m[op] = same_as_input;
    for (const char* op : {"ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
                           "ReduceSumSquare", "ReduceLogSum", "ReduceLogSumExp"})
      m[op] = reduce_shape;
    return m;
  }();
  return with_unary;
  return r;
}

// Element type of n's outputs. Integer values are made by the integer ops (their attribute
// "to" / "out_type") and kept by the ops that only move or select values.
DType output_dtype(const Ctx& c) {
  const std::string& op = c.node().op;
  std::string name;
  if (op == "Quantize") name = c.attrs().s("to", "");
  else if (op == "QConv" || op == "QGlobalAveragePool") name = c.attrs().s("out_type", "");
  else if (op == "MaxPool" || op == "Flatten" || op == "Reshape" || op == "Squeeze" || op == "Unsqueeze" ||
           op == "Identity" || op == "Dropout")
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

SliceParams slice_params(const Graph& g, const Node& n, const Shape& x) {
  auto error = [&](const std::string& what) { fail(g.source, node_desc(n) + ": " + what); };
  auto ints = [&](size_t k, const char* role) -> std::optional<std::vector<int64_t>> {
    if (k >= n.inputs.size() || n.inputs[k] < 0) return std::nullopt;
    const Value& v = g.values[n.inputs[k]];
    if (!v.is_const() || v.constant->dtype != DType::I64 || v.constant->shape.size() != 1)
      error(std::string(role) + " must be a constant 1-D int64 tensor");
    return v.constant->i;
  };
  const int64_t r = static_cast<int64_t>(x.size());
  const auto starts = ints(1, "starts"), ends = ints(2, "ends");
  if (!starts || !ends) error("needs starts and ends");
  std::vector<int64_t> axes;
  if (auto a = ints(3, "axes")) {
    axes = *a;
  } else {
    for (int64_t k = 0; k < static_cast<int64_t>(starts->size()); ++k) axes.push_back(k);
  }
  std::vector<int64_t> steps = ints(4, "steps").value_or(std::vector<int64_t>(axes.size(), 1));
  if (starts->size() != axes.size() || ends->size() != axes.size() || steps.size() != axes.size())
    error("starts, ends, axes and steps differ in length");
  SliceParams p;
  p.starts.assign(x.size(), 0);
  p.steps.assign(x.size(), 1);
  p.counts = x;
  std::vector<bool> seen(x.size(), false);
  for (size_t k = 0; k < axes.size(); ++k) {
    const int64_t a = normalize_axis(axes[k], r, error);
    if (seen[a]) error("axes has duplicates");
    seen[a] = true;
    const int64_t dim = x[a], step = steps[k];
    if (step == 0) error("step 0 is invalid");
    if (step < -kMaxElements || step > kMaxElements) error("step " + std::to_string(step) + " is out of range");
    // Clamped the ONNX way: negative values count from the end; then a positive step clamps
    // start and end to [0, dim], a negative one start to [0, dim - 1] and end to [-1, dim - 1].
    auto clamp = [&](int64_t v, int64_t lo, int64_t hi) {
      if (v < 0) v = v < -dim ? lo : v + dim;  // no overflow: v >= INT64_MIN and dim >= 0
      return std::clamp(v, lo, hi);
    };
    int64_t s = 0, e = 0;
    if (dim == 0) {
      // nothing to take
    } else if (step > 0) {
      s = clamp((*starts)[k], 0, dim);
      e = clamp((*ends)[k], 0, dim);
    } else {
      s = clamp((*starts)[k], 0, dim - 1);
      e = clamp((*ends)[k], -1, dim - 1);
    }
    const int64_t span = e - s;  // |span| <= dim + 1
    const int64_t count = (step > 0 ? (span > 0 ? (span + step - 1) / step : 0)
                                     : (span < 0 ? (-span + (-step) - 1) / (-step) : 0));
    p.starts[a] = count ? s : 0;
    p.steps[a] = step;
    p.counts[a] = count;
  }
  return p;
}

std::vector<bool> reduce_axes(const Graph& g, const Node& n, size_t rank) {
  auto error = [&](const std::string& what) { fail(g.source, node_desc(n) + ": " + what); };
  std::vector<int64_t> axes = n.attrs.ints("axes");
  if (n.inputs.size() > 1 && n.inputs[1] >= 0) {
    const Value& v = g.values[n.inputs[1]];
    if (!v.is_const() || v.constant->dtype != DType::I64 || v.constant->shape.size() > 1)
      error("axes must be a constant 1-D int64 tensor");
    axes = v.constant->i;
  }
  const int64_t r = static_cast<int64_t>(rank);
  std::vector<bool> red(rank, axes.empty() && n.attrs.i("noop_with_empty_axes", 0) == 0);
  for (int64_t axis : axes) {
    const int64_t a = normalize_axis(axis, r, error);
    if (red[a]) error("axes has duplicates");
    red[a] = true;
  }
  return red;
}

ResizeGeometry resize_geometry(const Graph& g, const Node& n, const Shape& x) {
  auto error = [&](const std::string& what) { fail(g.source, node_desc(n) + ": " + what); };
  auto input = [&](size_t k) -> const Tensor* {
    if (k >= n.inputs.size() || n.inputs[k] < 0) return nullptr;
    const Value& v = g.values[n.inputs[k]];
    if (!v.is_const()) error("input " + std::to_string(k) + " must be a constant");
    return v.constant->numel() ? v.constant.get() : nullptr;  // an empty tensor means absent
  };
  if (x.size() != 4) error("only 4-D (N,C,H,W) inputs are supported, got " + shape_str(x));
  if (n.attrs.has("axes") || n.attrs.s("keep_aspect_ratio_policy", "stretch") != "stretch" ||
      n.attrs.i("antialias", 0) != 0)
    error("axes, keep_aspect_ratio_policy and antialias are not supported");
  if (n.attrs.s("coordinate_transformation_mode", "half_pixel") == "tf_crop_and_resize")
    error("tf_crop_and_resize is not supported");
  const Tensor* scales = input(2);
  const Tensor* sizes = input(3);
  if ((scales != nullptr) == (sizes != nullptr)) error("needs exactly one of scales and sizes");
  ResizeGeometry r;
  r.out = x;
  r.scale.assign(4, 1.0);
  if (scales) {
    if (scales->dtype != DType::F32 || scales->numel() != 4) error("scales must be 4 floats");
    for (size_t k = 0; k < 4; ++k) {
      const double sc = scales->f[k];
      if (!(sc > 0) || sc > double(kMaxWindowParam)) error("scale " + std::to_string(sc) + " is invalid");
      r.scale[k] = sc;
      r.out[k] = static_cast<int64_t>(std::floor(double(x[k]) * sc));
    }
  } else {
    if (sizes->dtype != DType::I64 || sizes->numel() != 4) error("sizes must be 4 int64 values");
    for (size_t k = 0; k < 4; ++k) {
      const int64_t sz = sizes->i[k];
      if (sz < 1 || sz > kMaxElements) error("size " + std::to_string(sz) + " is invalid");
      r.out[k] = sz;
      r.scale[k] = double(sz) / double(x[k]);
    }
  }
  if (r.out[0] != x[0] || r.out[1] != x[1])
    error("resizing the batch or channel axis is not supported (output " + shape_str(r.out) + " from " +
          shape_str(x) + ")");
  if (r.out[2] < 1 || r.out[3] < 1) error("output " + shape_str(r.out) + " is empty");
  return r;
}

ConvTransposeGeometry conv_transpose_geometry(const Graph& g, const Node& n, const Shape& x, const Shape& w) {
  auto error = [&](const std::string& what) { fail(g.source, node_desc(n) + ": " + what); };
  if (x.size() != 4) error("input must have rank 4, got " + shape_str(x));
  if (w.size() != 4) error("only 2-D transposed convolution is supported: weight has shape " + shape_str(w));
  auto attr = [&](const char* k, size_t count, int64_t def, int64_t lo) {
    std::vector<int64_t> v = n.attrs.ints(k, std::vector<int64_t>(count, def));
    if (v.size() != count) error(std::string("attribute '") + k + "' needs " + std::to_string(count) + " values");
    for (int64_t a : v)
      if (a < lo || a > kMaxWindowParam)
        error(std::string("attribute '") + k + "' value " + std::to_string(a) + " is out of range");
    return v;
  };
  ConvTransposeGeometry r;
  r.group = n.attrs.i("group", 1);
  if (r.group < 1 || r.group > kMaxWindowParam || x[1] != w[0] || x[1] % r.group)
    error("input has " + std::to_string(x[1]) + " channels, weight " + shape_str(w) + ", group " +
          std::to_string(r.group));
  const auto ks = attr("kernel_shape", 2, 1, 1);
  if (n.attrs.has("kernel_shape") && (ks[0] != w[2] || ks[1] != w[3]))
    error("kernel_shape " + shape_str(ks) + " does not match weight " + shape_str(w));
  r.kh = w[2], r.kw = w[3];
  const auto st = attr("strides", 2, 1, 1), dl = attr("dilations", 2, 1, 1), op = attr("output_padding", 2, 0, 0);
  r.sh = st[0], r.sw = st[1], r.dh = dl[0], r.dw = dl[1];
  const auto pads = attr("pads", 4, 0, 0);
  const std::string ap = n.attrs.s("auto_pad", "NOTSET");
  if (ap != "NOTSET" && ap != "VALID" && ap != "SAME_UPPER" && ap != "SAME_LOWER")
    error("unsupported auto_pad '" + ap + "'");
  const int64_t in[2] = {x[2], x[3]}, k[2] = {r.kh, r.kw}, s[2] = {r.sh, r.sw}, d[2] = {r.dh, r.dw};
  int64_t* begin[2] = {&r.pt, &r.pl};
  int64_t* end[2] = {&r.pb, &r.pr};
  int64_t out[2];
  std::vector<int64_t> target;
  if (n.attrs.has("output_shape")) {
    target = n.attrs.ints("output_shape");
    if (target.size() == 4) target.erase(target.begin(), target.begin() + 2);
    if (target.size() != 2) error("output_shape needs 2 values");
    for (int64_t t : target)
      if (t < 1 || t > kMaxElements) error("output_shape value " + std::to_string(t) + " is out of range");
  }
  for (int a = 0; a < 2; ++a) {
    const int64_t full = s[a] * (in[a] - 1) + op[a] + (k[a] - 1) * d[a] + 1;  // before padding
    if (!target.empty() || ap == "SAME_UPPER" || ap == "SAME_LOWER") {
      out[a] = target.empty() ? in[a] * s[a] : target[a];
      // ONNX: the total padding is split evenly, an odd one more at the end for SAME_UPPER and
      // at the start otherwise. A negative total (output_shape larger than the transposed
      // convolution gives) extends the output, with the reference's floor division.
      const int64_t total = full - out[a];
      const int64_t half = total >= 0 ? total / 2 : -((1 - total) / 2);
      *begin[a] = ap == "SAME_UPPER" ? half : total - half;
      *end[a] = total - *begin[a];
    } else {
      if (ap != "VALID") *begin[a] = pads[size_t(a)], *end[a] = pads[size_t(a) + 2];
      out[a] = full - *begin[a] - *end[a];
    }
    if (out[a] < 1) error("output would be empty");
  }
  r.out = {x[0], w[1] * r.group, out[0], out[1]};
  return r;
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
