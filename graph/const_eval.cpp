#include "graph/const_eval.h"

#include <algorithm>
#include <cmath>

#include "graph/error.h"
#include "graph/limits.h"
#include "graph/op_schema.h"
#include "graph/shape_rules.h"

namespace fgq {
namespace {

// Folding must not turn a tiny file into a huge allocation (a broadcast can multiply sizes).
constexpr int64_t kMaxFoldedElements = int64_t(1) << 26;

[[noreturn]] void bad(const Graph& g, const Node& n, const std::string& what) {
  fail(g.source, node_desc(n) + ": " + what);
}

const Tensor& input(const Graph& g, const Node& n, size_t k) { return *g.values[n.inputs[k]].constant; }

// Row-major strides of `s` aligned to the right of an output of rank r; 0 on broadcast dims.
std::vector<int64_t> broadcast_strides(const Shape& s, const Shape& out) {
  std::vector<int64_t> st(out.size(), 0);
  int64_t stride = 1;
  for (size_t k = s.size(); k-- > 0;) {
    const size_t o = k + out.size() - s.size();
    st[o] = s[k] == 1 ? 0 : stride;
    stride *= s[k];
  }
  return st;
}

// Flat index into a broadcast operand for output element `flat`.
int64_t source_index(int64_t flat, const Shape& out, const std::vector<int64_t>& st) {
  int64_t idx = 0;
  for (size_t k = out.size(); k-- > 0;) {
    idx += (flat % out[k]) * st[k];
    flat /= out[k];
  }
  return idx;
}

template <class T>
bool apply(const std::string& op, T a, T b, T& r) {
  if constexpr (std::is_integral_v<T>) {
    if (op == "Add") return !__builtin_add_overflow(a, b, &r);
    if (op == "Sub") return !__builtin_sub_overflow(a, b, &r);
    if (op == "Mul") return !__builtin_mul_overflow(a, b, &r);
    if (b == 0 || (a == INT64_MIN && b == -1)) return false;
    r = a / b;
    return true;
  } else {
    r = op == "Add" ? a + b : op == "Sub" ? a - b : op == "Mul" ? a * b : a / b;
    return true;
  }
}

template <class T>
std::vector<T> binary(const Graph& g, const Node& n, const std::vector<T>& a, const Shape& as,
                      const std::vector<T>& b, const Shape& bs, const Shape& out) {
  const auto sa = broadcast_strides(as, out), sb = broadcast_strides(bs, out);
  std::vector<T> y(static_cast<size_t>(numel(out)));
  for (int64_t k = 0; k < static_cast<int64_t>(y.size()); ++k)
    if (!apply(n.op, a[source_index(k, out, sa)], b[source_index(k, out, sb)], y[k]))
      bad(g, n, "integer overflow or division by zero while folding constants");
  return y;
}

std::optional<Tensor> eval_binary(const Graph& g, const Node& n, const Shape& out) {
  const Tensor& a = input(g, n, 0);
  const Tensor& b = input(g, n, 1);
  if (a.dtype != b.dtype) bad(g, n, "inputs have different data types");
  if (numel(out) > std::max(a.numel(), b.numel())) return std::nullopt;  // an expanding broadcast
  if (contains_batch_dim(a) || contains_batch_dim(b)) return std::nullopt;
  if (a.dtype == DType::F32) return Tensor::f32(out, binary(g, n, a.f, a.shape, b.f, b.shape, out));
  return Tensor::i64(out, binary(g, n, a.i, a.shape, b.i, b.shape, out));
}

// Same elements, new shape: Reshape, Flatten, Squeeze, Unsqueeze, Identity.
Tensor relabel(const Tensor& x, const Shape& out) {
  Tensor t = x;
  t.shape = out;
  return t;
}

template <class T>
std::vector<T> transpose(const std::vector<T>& x, const Shape& xs, const std::vector<int64_t>& perm,
                         const Shape& out) {
  std::vector<int64_t> xstride(xs.size(), 1);
  for (size_t k = xs.size(); k-- > 1;) xstride[k - 1] = xstride[k] * xs[k];
  std::vector<T> y(x.size());
  for (int64_t o = 0; o < static_cast<int64_t>(y.size()); ++o) {
    int64_t rem = o, src = 0;
    for (size_t k = out.size(); k-- > 0;) {
      src += (rem % out[k]) * xstride[perm[k]];
      rem /= out[k];
    }
    y[o] = x[src];
  }
  return y;
}

std::optional<Tensor> eval_transpose(const Graph& g, const Node& n, const Shape& out) {
  const Tensor& x = input(g, n, 0);
  std::vector<int64_t> perm = n.attrs.ints("perm");
  if (!n.attrs.has("perm"))
    for (int64_t d = static_cast<int64_t>(x.shape.size()) - 1; d >= 0; --d) perm.push_back(d);
  if (x.dtype == DType::F32) return Tensor::f32(out, transpose(x.f, x.shape, perm, out));
  return Tensor::i64(out, transpose(x.i, x.shape, perm, out));
}

// Copies blocks of `inner` elements: the layout shared by Concat and Gather.
template <class T>
void append_block(std::vector<T>& y, const std::vector<T>& x, int64_t start, int64_t len) {
  y.insert(y.end(), x.begin() + start, x.begin() + start + len);
}

std::optional<Tensor> eval_concat(const Graph& g, const Node& n, const Shape& out) {
  const int64_t r = static_cast<int64_t>(out.size());
  int64_t axis = n.attrs.i("axis", 0);
  if (axis < 0) axis += r;
  const DType dt = input(g, n, 0).dtype;
  const int64_t outer = numel(Shape(out.begin(), out.begin() + axis));
  Tensor y;
  y.dtype = dt;
  y.shape = out;
  for (int64_t o = 0; o < outer; ++o)
    for (size_t k = 0; k < n.inputs.size(); ++k) {
      const Tensor& x = input(g, n, k);
      if (x.dtype != dt) bad(g, n, "inputs have different data types");
      const int64_t block = numel(Shape(x.shape.begin() + axis, x.shape.end()));
      if (dt == DType::F32) append_block(y.f, x.f, o * block, block);
      else append_block(y.i, x.i, o * block, block);
    }
  return y;
}

std::optional<Tensor> eval_gather(const Graph& g, const Node& n, const Shape& out) {
  const Tensor& x = input(g, n, 0);
  const Tensor& idx = input(g, n, 1);
  if (idx.dtype != DType::I64) bad(g, n, "indices must be int64");
  if (numel(out) > kMaxFoldedElements) return std::nullopt;
  const int64_t r = static_cast<int64_t>(x.shape.size());
  int64_t axis = n.attrs.i("axis", 0);
  if (axis < 0) axis += r;
  const int64_t outer = numel(Shape(x.shape.begin(), x.shape.begin() + axis));
  const int64_t dim = x.shape[axis];
  const int64_t inner = numel(Shape(x.shape.begin() + axis + 1, x.shape.end()));
  Tensor y;
  y.dtype = x.dtype;
  y.shape = out;
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i : idx.i) {
      if (i < -dim || i >= dim) bad(g, n, "index " + std::to_string(i) + " is out of range");
      if (i < 0) i += dim;
      const int64_t start = (o * dim + i) * inner;
      if (x.dtype == DType::F32) append_block(y.f, x.f, start, inner);
      else append_block(y.i, x.i, start, inner);
    }
  return y;
}

template <class T>
std::vector<T> slice(const std::vector<T>& x, const Shape& xs, const SliceParams& p) {
  std::vector<int64_t> xstride(xs.size(), 1);
  for (size_t k = xs.size(); k-- > 1;) xstride[k - 1] = xstride[k] * xs[k];
  const int64_t n = numel(p.counts);
  std::vector<T> y(static_cast<size_t>(n));
  for (int64_t o = 0; o < n; ++o) {
    int64_t rem = o, src = 0;
    for (size_t k = xs.size(); k-- > 0;) {
      src += (p.starts[k] + (rem % p.counts[k]) * p.steps[k]) * xstride[k];
      rem /= p.counts[k];
    }
    y[o] = x[src];
  }
  return y;
}

std::optional<Tensor> eval_slice(const Graph& g, const Node& n, const Shape& out) {
  const Tensor& x = input(g, n, 0);
  const SliceParams p = slice_params(g, n, x.shape);
  if (x.dtype == DType::F32) return Tensor::f32(out, slice(x.f, x.shape, p));
  return Tensor::i64(out, slice(x.i, x.shape, p));
}

std::optional<Tensor> eval_cast(const Graph& g, const Node& n, const Shape& out) {
  const Tensor& x = input(g, n, 0);
  const bool to_float = n.attrs.i("to", 0) == 1;
  if (contains_batch_dim(x)) return to_float ? std::nullopt : std::optional<Tensor>(relabel(x, out));
  if (to_float == (x.dtype == DType::F32)) return relabel(x, out);
  if (to_float) return Tensor::f32(out, std::vector<float>(x.i.begin(), x.i.end()));
  std::vector<int64_t> v;
  for (float f : x.f) {
    // Cast truncates toward zero; a NaN or out-of-range float has no int64 value.
    if (!(std::fabs(f) < 9.2e18f)) bad(g, n, "cannot cast " + std::to_string(f) + " to int64");
    v.push_back(static_cast<int64_t>(f));
  }
  return Tensor::i64(out, std::move(v));
}

std::optional<Tensor> eval_shape(const Graph& g, const Node& n) {
  const Value& x = g.values[n.inputs[0]];
  std::vector<int64_t> dims(x.shape.begin(), x.shape.end());
  if (!x.is_const() && !dims.empty()) dims[0] = kBatchDim;
  // Opset 15 start/end slice the shape, clamped like Python slices.
  const int64_t r = static_cast<int64_t>(dims.size());
  auto clamp = [r](int64_t v) { return std::clamp<int64_t>(v < 0 ? v + r : v, 0, r); };
  const int64_t start = clamp(n.attrs.i("start", 0));
  const int64_t end = std::max(start, clamp(n.attrs.i("end", r)));
  std::vector<int64_t> v(dims.begin() + start, dims.begin() + end);
  const int64_t len = static_cast<int64_t>(v.size());
  return Tensor::i64({len}, std::move(v));
}

}  // namespace

bool contains_batch_dim(const Tensor& t) {
  return t.dtype == DType::I64 && std::find(t.i.begin(), t.i.end(), kBatchDim) != t.i.end();
}

std::optional<Tensor> evaluate_constant(Graph& g, const Node& n) {
  if (n.outputs.size() != 1) return std::nullopt;
  const std::string& op = n.op;
  if (op == "Shape") {
    if (n.inputs.empty() || n.inputs[0] < 0) return std::nullopt;
    auto t = eval_shape(g, n);
    g.values[n.outputs[0]].shape = t->shape;
    return t;
  }
  for (int in : n.inputs)
    if (in >= 0 && !g.values[in].is_const()) return std::nullopt;
  static const char* const kOps[] = {"Identity", "Dropout", "Reshape", "Flatten", "Squeeze",
                                     "Unsqueeze", "Transpose", "Concat", "Gather", "Slice",
                                     "Cast", "Add", "Sub", "Mul", "Div"};
  if (std::find(std::begin(kOps), std::end(kOps), op) == std::end(kOps)) return std::nullopt;
  // Ops that compute on the elements read float or int64 ones; the integer pipeline's constants
  // (u8, s8, i32, ternary codes) only move through relabelling ops (Reshape, Identity, ...).
  const bool relabels = op == "Identity" || op == "Dropout" || op == "Reshape" || op == "Flatten" ||
                        op == "Squeeze" || op == "Unsqueeze";
  if (!relabels)
    for (int in : n.inputs)
      if (in >= 0 && g.values[in].constant->dtype != DType::F32 && g.values[in].constant->dtype != DType::I64)
        return std::nullopt;
  // A batch-dependent reshape target has no constant meaning when the data is constant.
  if (op == "Reshape" && contains_batch_dim(input(g, n, 1))) return std::nullopt;
  infer_node_shapes(g, n);  // validates attributes and input shapes, gives the output shape
  const Shape out = g.values[n.outputs[0]].shape;
  // An outer-product broadcast or a long gather of a few stored values must not make the loader
  // allocate gigabytes: what exporters fold (shape arithmetic, reshaped or rescaled weights) is
  // never much larger than its inputs.
  int64_t in_elements = 0;
  for (int in : n.inputs)
    if (in >= 0) in_elements += numel(g.values[in].shape);
  constexpr int64_t kAlwaysFoldable = int64_t(1) << 20;
  if (numel(out) > std::max(kAlwaysFoldable, 4 * in_elements))
    fail(g.source, node_desc(n) + ": folding it would make " + std::to_string(numel(out)) +
                       " elements out of " + std::to_string(in_elements));
  if (op == "Add" || op == "Sub" || op == "Mul" || op == "Div") return eval_binary(g, n, out);
  if (op == "Transpose") return eval_transpose(g, n, out);
  if (op == "Concat") return eval_concat(g, n, out);
  if (op == "Gather") return eval_gather(g, n, out);
  if (op == "Cast") return eval_cast(g, n, out);
  if (op == "Slice") return eval_slice(g, n, out);
  return relabel(input(g, n, 0), out);
}

}  // namespace fgq
