#include "runtime/node_kernels.h"

#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <set>

#include "graph/error.h"
#include "ops/conv2d.h"
#include "ops/elementwise.h"
#include "ops/gemm.h"
#include "ops/pool.h"

namespace fgq::rt {
namespace {

// Per-image ops split the batch over images; the op kernels parallelize inside as well.
template <class F>
void for_each_image(int batch, const F& f) {
  if (batch == 1) {
    f(0);
    return;
  }
  tbb::parallel_for(0, batch, [&](int i) { f(i); });
}

// Element-wise ops are memory bound: split big ones into chunks over the TBB threads.
template <class F>
void for_chunks(int64_t n, const F& f) {
  constexpr int64_t kChunk = int64_t(1) << 16;
  if (n <= kChunk) {
    f(int64_t(0), n);
    return;
  }
  tbb::parallel_for(int64_t(0), (n + kChunk - 1) / kChunk,
                    [&](int64_t c) { f(c * kChunk, std::min(n, (c + 1) * kChunk)); });
}

// Parsing context for one node: input lookup and errors that name the node.
class NodeView {
 public:
  NodeView(const Bindings& b, const Node& n) : b_(b), n_(n) {}

  [[noreturn]] void error(const std::string& what) const {
    fail(b_.g.source, "executor: " + n_.op + " node '" + n_.name + "': " + what);
  }
  const Attrs& attrs() const { return n_.attrs; }
  int in(size_t k) const { return k < n_.inputs.size() ? n_.inputs[k] : -1; }
  int out() const { return n_.outputs.at(0); }

  bool is_const(int v) const { return b_.g.values[v].is_const(); }
  const Tensor& constant(int v, const char* role) const {
    if (v < 0 || !is_const(v)) error(std::string(role) + " must be a constant");
    return b_.g.values[v].constant.value();
  }
  const float* const_f32(int v, const char* role) const {
    const Tensor& t = constant(v, role);
    if (t.dtype != DType::F32) error(std::string(role) + " must be float");
    return t.f.data();
  }
  // An activation input (arena address); `role` names it in errors.
  const float* act_in(int v, const char* role) const {
    if (v < 0) error(std::string("missing ") + role);
    if (is_const(v)) error(std::string(role) + " must not be a constant");
    if (!b_.act[v]) error(std::string(role) + " '" + b_.g.values[v].name + "' is never computed");
    return b_.act[v];
  }
  float* act_out() const { return b_.act[out()]; }
  const Shape& shape1(int v) const { return b_.shape1[v]; }
  int64_t per_image(int v) const { return numel(b_.shape1[v]); }

  std::vector<int64_t> ints(const std::string& k, size_t n, int64_t def) const {
    std::vector<int64_t> v = n_.attrs.ints(k, std::vector<int64_t>(n, def));
    if (v.size() != n) error("attribute '" + k + "' needs " + std::to_string(n) + " values");
    return v;
  }
  void require_rank(int v, size_t rank, const char* role) const {
    if (b_.shape1[v].size() != rank)
      error(std::string(role) + " must have rank " + std::to_string(rank) + ", has shape " +
            shape_str(b_.shape1[v]));
  }

 private:
  const Bindings& b_;
  const Node& n_;
};

// Spatial window parameters shared by Conv and the pools, pads in ONNX order [t, l, b, r].
struct Window {
  int KH, KW, SH, SW, DH, DW, PT, PL, PB, PR;
};

Window parse_window(const NodeView& nv, int64_t kh, int64_t kw, int64_t H, int64_t W) {
  const auto s = nv.ints("strides", 2, 1);
  const auto d = nv.ints("dilations", 2, 1);
  auto p = nv.ints("pads", 4, 0);
  const std::string auto_pad = nv.attrs().s("auto_pad", "NOTSET");
  if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
    // Output = ceil(in / stride); the odd pixel of padding goes at the end (UPPER) or begin.
    const int64_t in[2] = {H, W}, k[2] = {kh, kw};
    for (int a = 0; a < 2; ++a) {
      const int64_t o = (in[a] + s[a] - 1) / s[a];
      const int64_t total = std::max<int64_t>(0, (o - 1) * s[a] + (k[a] - 1) * d[a] + 1 - in[a]);
      const int64_t small = total / 2, big = total - small;
      p[a] = auto_pad == "SAME_UPPER" ? small : big;
      p[a + 2] = auto_pad == "SAME_UPPER" ? big : small;
    }
  } else if (auto_pad == "VALID") {
    p = {0, 0, 0, 0};
  } else if (auto_pad != "NOTSET") {
    nv.error("unsupported auto_pad '" + auto_pad + "'");
  }
  for (int64_t v : s)
    if (v < 1) nv.error("strides must be >= 1");
  for (int64_t v : d)
    if (v < 1) nv.error("dilations must be >= 1");
  for (int64_t v : p)
    if (v < 0) nv.error("negative pads are not supported");
  return Window{int(kh),   int(kw),   int(s[0]), int(s[1]), int(d[0]),
                int(d[1]), int(p[0]), int(p[1]), int(p[2]), int(p[3])};
}

void check_spatial_out(const NodeView& nv, int64_t C, int64_t OH, int64_t OW) {
  const Shape& ys = nv.shape1(nv.out());
  if (ys.size() != 4 || ys[1] != C || ys[2] != OH || ys[3] != OW)
    nv.error("kernel computes output [1," + std::to_string(C) + "," + std::to_string(OH) + "," +
             std::to_string(OW) + "] but shape inference gave " + shape_str(ys));
}

Kernel compile_conv(const NodeView& nv) {
  const int xv = nv.in(0);
  const float* x = nv.act_in(xv, "input");
  nv.require_rank(xv, 4, "input");
  const Tensor& wt = nv.constant(nv.in(1), "weight");
  if (wt.dtype != DType::F32 || wt.shape.size() != 4) nv.error("weight must be float [K,C,KH,KW]");
  const float* w = wt.f.data();
  const float* bias = nv.in(2) >= 0 ? nv.const_f32(nv.in(2), "bias") : nullptr;
  if (bias && nv.constant(nv.in(2), "bias").numel() != wt.shape[0]) nv.error("bias size != K");
  const float* residual = nv.in(3) >= 0 ? nv.act_in(nv.in(3), "residual") : nullptr;
  const std::string act = nv.attrs().s("activation", "");
  if (!act.empty() && act != "Relu") nv.error("unsupported fused activation '" + act + "'");
  const bool relu = act == "Relu";

  const Shape& xs = nv.shape1(xv);
  const int64_t group = nv.attrs().i("group", 1);
  const int64_t K = wt.shape[0], Cg = wt.shape[1];
  if (group < 1 || xs[1] != Cg * group || K % group != 0)
    nv.error("channels do not match: input " + shape_str(xs) + ", weight " + shape_str(wt.shape) +
             ", group " + std::to_string(group));
  const Window win = parse_window(nv, wt.shape[2], wt.shape[3], xs[2], xs[3]);
  ops::Conv2dShape s;
  s.C = int(Cg), s.H = int(xs[2]), s.W = int(xs[3]);
  s.K = int(K / group), s.KH = win.KH, s.KW = win.KW;
  s.SH = win.SH, s.SW = win.SW, s.DH = win.DH, s.DW = win.DW;
  s.PT = win.PT, s.PL = win.PL, s.PB = win.PB, s.PR = win.PR;
  check_spatial_out(nv, K, s.OH(), s.OW());
  if (residual && nv.shape1(nv.in(3)) != nv.shape1(nv.out()))
    nv.error("residual shape " + shape_str(nv.shape1(nv.in(3))) + " != output shape " +
             shape_str(nv.shape1(nv.out())));

  float* y = nv.act_out();
  const int64_t x_img = nv.per_image(xv), y_img = nv.per_image(nv.out());
  // Groups are contiguous channel ranges in NCHW, so each group is a plain conv on slices.
  const int64_t x_grp = int64_t(s.C) * s.H * s.W, y_grp = int64_t(s.K) * s.OH() * s.OW();
  const int64_t w_grp = int64_t(s.K) * s.C * s.KH * s.KW;
  const int groups = int(group);
  // The whole batch per call: the kernel reads each weight once per batch.
  return [=](int batch) {
    auto conv_group = [&](int g) {
      ops::conv2d_f32_batch(s, batch, x + g * x_grp, x_img, w + g * w_grp,
                            bias ? bias + g * s.K : nullptr,
                            residual ? residual + g * y_grp : nullptr, relu, y + g * y_grp, y_img);
    };
    if (groups == 1)
      conv_group(0);
    else
      tbb::parallel_for(0, groups, conv_group);
  };
}

Kernel compile_pool(const NodeView& nv, bool is_max) {
  const int xv = nv.in(0);
  const float* x = nv.act_in(xv, "input");
  nv.require_rank(xv, 4, "input");
  const auto k = nv.attrs().ints("kernel_shape");
  if (k.size() != 2) nv.error("kernel_shape must have 2 values");
  const Shape& xs = nv.shape1(xv);
  const Window win = parse_window(nv, k[0], k[1], xs[2], xs[3]);
  if (win.DH != 1 || win.DW != 1) nv.error("dilated pooling is not supported");
  if (nv.attrs().i("storage_order", 0) != 0) nv.error("storage_order=1 is not supported");
  ops::Pool2dShape s;
  s.C = int(xs[1]), s.H = int(xs[2]), s.W = int(xs[3]);
  s.KH = win.KH, s.KW = win.KW, s.SH = win.SH, s.SW = win.SW;
  s.PT = win.PT, s.PL = win.PL, s.PB = win.PB, s.PR = win.PR;
  s.ceil_mode = nv.attrs().i("ceil_mode", 0) != 0;
  s.count_include_pad = nv.attrs().i("count_include_pad", 0) != 0;
  check_spatial_out(nv, xs[1], s.OH(), s.OW());
  float* y = nv.act_out();
  const int64_t x_img = nv.per_image(xv), y_img = nv.per_image(nv.out());
  return [=](int batch) {
    for_each_image(batch, [&](int i) {
      if (is_max)
        ops::maxpool2d_f32(s, x + i * x_img, y + i * y_img);
      else
        ops::avgpool2d_f32(s, x + i * x_img, y + i * y_img);
    });
  };
}

Kernel compile_global_avgpool(const NodeView& nv) {
  const int xv = nv.in(0);
  const float* x = nv.act_in(xv, "input");
  const Shape& xs = nv.shape1(xv);
  if (xs.size() < 3) nv.error("input must be N,C,spatial...");
  const int64_t C = xs[1], spatial = nv.per_image(xv) / C;
  float* y = nv.act_out();
  // NCHW: a batch of N images is just N*C channels.
  return [=](int batch) { ops::global_avgpool_f32(int(batch * C), int(spatial), x, y); };
}

// Flatten / Reshape / Identity: nothing to do when the executor gave the output the input's
// storage; a copy otherwise.
Kernel compile_view(const NodeView& nv) {
  const int xv = nv.in(0);
  const float* x = nv.act_in(xv, "input");
  float* y = nv.act_out();
  const int64_t n = nv.per_image(xv);
  if (n != nv.per_image(nv.out()))
    nv.error("element count changes from " + shape_str(nv.shape1(xv)) + " to " +
             shape_str(nv.shape1(nv.out())));
  if (x == y) return [](int) {};
  return [=](int batch) { std::memcpy(y, x, sizeof(float) * size_t(batch * n)); };
}

Kernel compile_relu(const NodeView& nv) {
  const float* x = nv.act_in(nv.in(0), "input");
  float* y = nv.act_out();
  const int64_t n = nv.per_image(nv.out());
  return [=](int batch) {
    for_chunks(batch * n, [&](int64_t b, int64_t e) { ops::relu_f32(x + b, y + b, e - b); });
  };
}

// A FakeQuant without any parameters was inserted by quantization and is not calibrated yet:
// it passes its input through (into its own buffer unless it runs in place), and the calibration
// pass quantizes that copy from its observer.
Kernel compile_fake_quant(const NodeView& nv) {
  const float* x = nv.act_in(nv.in(0), "input");
  float* y = nv.act_out();
  const int64_t n = nv.per_image(nv.out());
  const int given = nv.attrs().has("scale") + nv.attrs().has("qmin") + nv.attrs().has("qmax");
  if (given == 0) {
    if (x == y) return [](int) {};
    return [=](int batch) {
      for_chunks(batch * n, [&](int64_t b, int64_t e) { std::memcpy(y + b, x + b, sizeof(float) * size_t(e - b)); });
    };
  }
  if (given != 3) nv.error("needs attributes scale, qmin, qmax");
  const float scale = nv.attrs().f("scale", 0);
  const int qmin = int(nv.attrs().i("qmin", 0)), qmax = int(nv.attrs().i("qmax", 0));
  if (!(scale > 0) || qmin > qmax) nv.error("needs scale > 0 and qmin <= qmax");
  return [=](int batch) {
    for_chunks(batch * n, [&](int64_t b, int64_t e) {
      ops::fake_quant_f32(x + b, y + b, e - b, scale, qmin, qmax);
    });
  };
}

// Per-channel constant parameter of a node: exactly C floats.
std::vector<float> channel_param(const NodeView& nv, int v, const char* role, int64_t C) {
  const float* p = nv.const_f32(v, role);
  if (nv.constant(v, role).numel() != C)
    nv.error(std::string(role) + " needs " + std::to_string(C) + " values");
  return std::vector<float>(p, p + C);
}

// y[n, c, ...] = x[n, c, ...] * scale[c] + shift[c]: ChannelAffine, and BatchNormalization
// (inference) with its statistics folded into scale and shift here.
Kernel compile_channel_affine(const NodeView& nv, bool is_batchnorm) {
  const int xv = nv.in(0);
  const float* x = nv.act_in(xv, "input");
  const Shape& xs = nv.shape1(xv);
  if (xs.size() < 2) nv.error("input must be N,C,...");
  const int64_t C = xs[1], inner = nv.per_image(xv) / C;
  std::vector<float> scale, shift;
  if (is_batchnorm) {
    scale = channel_param(nv, nv.in(1), "scale", C);
    shift = channel_param(nv, nv.in(2), "B", C);
    const std::vector<float> mean = channel_param(nv, nv.in(3), "mean", C);
    const std::vector<float> var = channel_param(nv, nv.in(4), "var", C);
    const double eps = nv.attrs().f("epsilon", 1e-5f);
    for (int64_t c = 0; c < C; ++c) {
      const double a = scale[c] / std::sqrt(double(var[c]) + eps);
      scale[c] = float(a);
      shift[c] = float(shift[c] - a * mean[c]);
    }
  } else {
    scale = channel_param(nv, nv.in(1), "scale", C);
    shift = channel_param(nv, nv.in(2), "shift", C);
  }
  float* y = nv.act_out();
  return [=, scale = std::move(scale), shift = std::move(shift)](int batch) {
    tbb::parallel_for(int64_t(0), batch * C, [&](int64_t plane) {
      ops::scale_shift_f32(x + plane * inner, y + plane * inner, inner, scale[plane % C], shift[plane % C]);
    });
  };
}

// Add of two same-shape activations, or of an activation and a broadcast constant: a scalar,
// a per-channel vector ([C,1,1] / [1,C,1,1]) or one image's worth of values.
Kernel compile_add(const NodeView& nv) {
  int av = nv.in(0), bv = nv.in(1);
  if (av < 0 || bv < 0) nv.error("needs two inputs");
  if (nv.is_const(av)) std::swap(av, bv);
  const float* a = nv.act_in(av, "input");
  float* y = nv.act_out();
  const int64_t n = nv.per_image(nv.out());
  if (nv.per_image(av) != n) nv.error("broadcasting the activation input is not supported");
  if (!nv.is_const(bv)) {
    if (nv.shape1(av) != nv.shape1(bv))
      nv.error("shapes " + shape_str(nv.shape1(av)) + " and " + shape_str(nv.shape1(bv)) +
               " differ");
    const float* b = nv.act_in(bv, "input");
    return [=](int batch) {
      for_chunks(batch * n,
                 [&](int64_t s, int64_t e) { ops::add_f32(a + s, b + s, y + s, e - s, false); });
    };
  }
  const Tensor& bt = nv.constant(bv, "input");
  const float* b = nv.const_f32(bv, "input");
  const Shape& as = nv.shape1(av);
  Shape bs = bt.shape;
  while (!bs.empty() && bs.front() == 1 && bs.size() > as.size() - 1) bs.erase(bs.begin());
  // Repeat period of the constant along one image: inner elements per constant value.
  int64_t inner = 0;
  if (bt.numel() == 1) {
    inner = n;
  } else if (bt.numel() == n && (bs == Shape(as.begin() + 1, as.end()))) {
    inner = 1;
  } else if (as.size() >= 2 && bt.numel() == as[1] && !bs.empty() && bs[0] == as[1] &&
             bs.size() == as.size() - 1) {
    inner = n / as[1];
  } else {
    nv.error("cannot broadcast constant " + shape_str(bt.shape) + " onto " + shape_str(as));
  }
  const int64_t values = n / inner;
  return [=](int batch) {
    tbb::parallel_for(int64_t(0), batch * values, [&](int64_t k) {
      const float c = b[k % values];
      const float* ap = a + k * inner;
      float* yp = y + k * inner;
      for (int64_t j = 0; j < inner; ++j) yp[j] = ap[j] + c;
    });
  };
}

Kernel compile_gemm(const NodeView& nv, bool is_matmul) {
  const int av = nv.in(0);
  const float* a = nv.act_in(av, "A");
  nv.require_rank(av, 2, "A");
  const Tensor& bt = nv.constant(nv.in(1), "B");
  if (bt.dtype != DType::F32 || bt.shape.size() != 2) nv.error("B must be a float matrix");
  const bool trans_b = !is_matmul && nv.attrs().i("transB", 0) != 0;
  if (!is_matmul && nv.attrs().i("transA", 0) != 0) nv.error("transA=1 is not supported");
  const float alpha = is_matmul ? 1.f : nv.attrs().f("alpha", 1.f);
  const float beta = is_matmul ? 0.f : nv.attrs().f("beta", 1.f);
  const int64_t K = nv.shape1(av)[1];
  const int64_t N = trans_b ? bt.shape[0] : bt.shape[1];
  if ((trans_b ? bt.shape[1] : bt.shape[0]) != K)
    nv.error("A " + shape_str(nv.shape1(av)) + " and B " + shape_str(bt.shape) + " do not match");
  if (nv.shape1(nv.out()) != Shape{1, N})
    nv.error("output shape " + shape_str(nv.shape1(nv.out())) + " != [1," + std::to_string(N) +
             "]");
  // C as a row of N values (a scalar C is widened once here).
  std::vector<float> c_row;
  if (!is_matmul && nv.in(2) >= 0) {
    const Tensor& ct = nv.constant(nv.in(2), "C");
    const float* c = nv.const_f32(nv.in(2), "C");
    if (ct.numel() == N)
      c_row.assign(c, c + N);
    else if (ct.numel() == 1)
      c_row.assign(size_t(N), c[0]);
    else
      nv.error("C " + shape_str(ct.shape) + " must broadcast from [N] or a scalar");
  }
  const float* b = bt.f.data();
  float* y = nv.act_out();
  return [=, c_row = std::move(c_row)](int batch) {
    ops::gemm_f32(batch, int(N), int(K), a, b, trans_b, c_row.empty() ? nullptr : c_row.data(),
                  true, alpha, beta, y);
  };
}

Kernel compile_softmax(const NodeView& nv) {
  const int xv = nv.in(0);
  const float* x = nv.act_in(xv, "input");
  const Shape& xs = nv.shape1(xv);
  const int64_t rank = int64_t(xs.size());
  int64_t axis = nv.attrs().i("axis", -1);
  if (axis < 0) axis += rank;
  if (rank < 2 || axis != rank - 1) nv.error("only softmax over the last axis is supported");
  const int64_t cols = xs.back(), rows = nv.per_image(xv) / cols;
  float* y = nv.act_out();
  return [=](int batch) { ops::softmax_f32(x, y, int(batch * rows), int(cols)); };
}

Kernel compile_pad(const NodeView& nv) {
  const int xv = nv.in(0);
  const float* x = nv.act_in(xv, "input");
  nv.require_rank(xv, 4, "input");
  const std::string mode = nv.attrs().s("mode", "constant");
  if (mode != "constant") nv.error("only constant padding is supported, not '" + mode + "'");
  if (nv.in(3) >= 0) nv.error("the axes input is not supported");
  std::vector<int64_t> p;
  float value = nv.attrs().f("value", 0.f);
  if (nv.in(1) >= 0) {  // opset >= 11: pads (and value) are inputs
    const Tensor& pt = nv.constant(nv.in(1), "pads");
    if (pt.dtype != DType::I64) nv.error("pads must be int64");
    p = pt.i;
    if (nv.in(2) >= 0) {
      if (nv.constant(nv.in(2), "constant_value").numel() != 1)
        nv.error("constant_value must be a scalar");
      value = nv.const_f32(nv.in(2), "constant_value")[0];
    }
  } else {
    p = nv.attrs().ints("pads");
  }
  if (p.size() != 8) nv.error("pads needs 8 values for a 4-D input");
  if (p[0] || p[1] || p[4] || p[5]) nv.error("only H/W padding is supported");
  for (int64_t v : p)
    if (v < 0) nv.error("negative pads are not supported");
  const Shape& xs = nv.shape1(xv);
  const int C = int(xs[1]), H = int(xs[2]), W = int(xs[3]);
  const int PT = int(p[2]), PL = int(p[3]), PB = int(p[6]), PR = int(p[7]);
  check_spatial_out(nv, C, H + PT + PB, W + PL + PR);
  float* y = nv.act_out();
  const int64_t x_img = nv.per_image(xv), y_img = nv.per_image(nv.out());
  return [=](int batch) {
    for_each_image(batch, [&](int i) {
      ops::pad_f32(x + i * x_img, y + i * y_img, C, H, W, PT, PL, PB, PR, value);
    });
  };
}

const std::set<std::string>& supported_ops() {
  // clang-format off
  static const std::set<std::string> ops = {
      "Conv", "ChannelAffine", "Relu", "Add", "MaxPool", "AveragePool", "GlobalAveragePool",
      "Flatten", "Reshape", "Identity", "Gemm", "MatMul", "Softmax", "Pad", "FakeQuant",
      "BatchNormalization"};
  // clang-format on
  return ops;
}

}  // namespace

bool is_supported_op(const std::string& op) { return supported_ops().count(op) != 0; }

bool is_view_op(const std::string& op) {
  return op == "Flatten" || op == "Reshape" || op == "Identity";
}

bool runs_in_place(const std::string& op) {
  return op == "Relu" || op == "ChannelAffine" || op == "BatchNormalization" || op == "Add" ||
         op == "FakeQuant";
}

Kernel compile_node(const Bindings& b, const Node& n) {
  const NodeView nv(b, n);
  if (n.outputs.size() != 1) nv.error("expected exactly one output");
  const std::string& op = n.op;
  if (op == "Conv") return compile_conv(nv);
  if (op == "MaxPool") return compile_pool(nv, true);
  if (op == "AveragePool") return compile_pool(nv, false);
  if (op == "GlobalAveragePool") return compile_global_avgpool(nv);
  if (is_view_op(op)) return compile_view(nv);
  if (op == "Relu") return compile_relu(nv);
  if (op == "FakeQuant") return compile_fake_quant(nv);
  if (op == "ChannelAffine") return compile_channel_affine(nv, false);
  if (op == "BatchNormalization") return compile_channel_affine(nv, true);
  if (op == "Add") return compile_add(nv);
  if (op == "Gemm") return compile_gemm(nv, false);
  if (op == "MatMul") return compile_gemm(nv, true);
  if (op == "Softmax") return compile_softmax(nv);
  if (op == "Pad") return compile_pad(nv);
  fail(b.g.source, "executor: unsupported op '" + op + "' (node '" + n.name + "')");
}

}  // namespace fgq::rt
