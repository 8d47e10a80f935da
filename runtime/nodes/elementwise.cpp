// Float element-wise ops: Relu, Add / Sub / Mul / Div / Pow / PRelu / Max / Min (numpy
// broadcasting), per-channel affine
// (ChannelAffine, inference BatchNormalization), simulated quantization (FakeQuant), Softmax
// and Pad.
#include <tbb/parallel_for.h>

#include <cmath>
#include <cstring>

#include "ops/broadcast.h"
#include "ops/elementwise.h"
#include "ops/pad.h"
#include "ops/softmax.h"
#include "runtime/nodes/parallel.h"
#include "runtime/op_registry.h"

namespace fgq::rt {
namespace {

Compiled compile_relu(const NodeView& nv) {
  const float* x = nv.f32_in(nv.in(0), "input");
  float* y = nv.f32_out();
  const int64_t n = nv.per_image(nv.out());
  return {[=](int batch, void*) {
    for_chunks(batch * n, [&](int64_t b, int64_t e) { ops::relu_f32(x + b, y + b, e - b); });
  }};
}

// A FakeQuant without any parameters was inserted by quantization and is not calibrated yet:
// it passes its input through (into its own buffer unless it runs in place), and the calibration
// pass quantizes that copy from its observer.
Compiled compile_fake_quant(const NodeView& nv) {
  const float* x = nv.f32_in(nv.in(0), "input");
  float* y = nv.f32_out();
  const int64_t n = nv.per_image(nv.out());
  const int given = nv.attrs().has("scale") + nv.attrs().has("qmin") + nv.attrs().has("qmax");
  if (given == 0) {
    if (x == y) return {[](int, void*) {}};
    return {[=](int batch, void*) {
      for_chunks(batch * n, [&](int64_t b, int64_t e) { std::memcpy(y + b, x + b, sizeof(float) * size_t(e - b)); });
    }};
  }
  if (given != 3) nv.error("needs attributes scale, qmin, qmax");
  const float scale = nv.attrs().f("scale", 0);
  const int qmin = int(nv.attrs().i("qmin", 0)), qmax = int(nv.attrs().i("qmax", 0));
  if (!(scale > 0) || qmin > qmax) nv.error("needs scale > 0 and qmin <= qmax");
  return {[=](int batch, void*) {
    for_chunks(batch * n, [&](int64_t b, int64_t e) {
      ops::fake_quant_f32(x + b, y + b, e - b, scale, qmin, qmax);
    });
  }};
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
Compiled compile_channel_affine(const NodeView& nv, bool is_batchnorm) {
  const int xv = nv.in(0);
  const float* x = nv.f32_in(xv, "input");
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
  float* y = nv.f32_out();
  return {[=, scale = std::move(scale), shift = std::move(shift)](int batch, void*) {
    tbb::parallel_for(int64_t(0), batch * C, [&](int64_t plane) {
      ops::scale_shift_f32(x + plane * inner, y + plane * inner, inner, scale[plane % C], shift[plane % C]);
    });
  }};
}

ops::BinaryOp binary_op(const std::string& op) {
  if (op == "Add") return ops::BinaryOp::Add;
  if (op == "Sub") return ops::BinaryOp::Sub;
  if (op == "Mul") return ops::BinaryOp::Mul;
  if (op == "Pow") return ops::BinaryOp::Pow;
  if (op == "PRelu") return ops::BinaryOp::PRelu;
  if (op == "Max") return ops::BinaryOp::Max;
  if (op == "Min") return ops::BinaryOp::Min;
  return ops::BinaryOp::Div;
}

// Add / Sub / Mul / Div / Pow / PRelu (slope B) / Max / Min of two inputs, with numpy
// broadcasting: two activations (same shape, or one repeating
// along some axes, e.g. a squeeze-and-excitation scale [N,C,1,1] on [N,C,H,W]), or an activation
// and a constant on either side. Activations keep the batch as dim 0; a constant repeats over
// the batch (its dim 0, if it has the output's rank, is 1).
Compiled compile_binary(const NodeView& nv) {
  const int av = nv.in(0), bv = nv.in(1);
  if (av < 0 || bv < 0) nv.error("needs two inputs");
  if (nv.is_const(av) && nv.is_const(bv)) nv.error("both inputs are constants (they fold at load time)");
  const ops::BinaryOp op = binary_op(nv.node().op);
  const Shape ys = nv.shape1(nv.out());
  if (ys.empty()) nv.error("output has no batch dimension");
  struct Operand {
    const float* p;
    Shape shape;  // at batch 1 for an activation
    bool act;
  };
  auto operand = [&](int v, const char* role) {
    if (nv.is_const(v)) {
      const Tensor& t = nv.constant(v, role);
      const float* p = nv.const_f32(v, role);
      if (t.shape.size() > ys.size() || (t.shape.size() == ys.size() && t.shape[0] != 1))
        nv.error(std::string("constant ") + role + " " + shape_str(t.shape) + " varies along the batch axis of " +
                 shape_str(ys));
      return Operand{p, t.shape, false};
    }
    const Shape& s = nv.shape1(v);
    if (s.size() != ys.size())
      nv.error(std::string("activation ") + role + " " + shape_str(s) + " would move the batch axis of " +
               shape_str(ys));
    return Operand{nv.f32_in(v, role), s, true};
  };
  const Operand a = operand(av, "input"), b = operand(bv, "input");
  Shape check;
  if (!ops::broadcast_shape(a.shape, b.shape, check) || check != ys)
    nv.error("shapes " + shape_str(a.shape) + " and " + shape_str(b.shape) + " do not broadcast to " + shape_str(ys));
  float* y = nv.f32_out();
  const int64_t y_img = nv.per_image(nv.out());
  if (op == ops::BinaryOp::Add && a.act && b.act && a.shape == b.shape)  // a residual add
    return {[=](int batch, void*) {
      for_chunks(batch * y_img, [&](int64_t s, int64_t e) { ops::add_f32(a.p + s, b.p + s, y + s, e - s, false); });
    }};
  return {[=](int batch, void*) {
    auto at = [batch](const Operand& o) {
      Shape s = o.shape;
      if (o.act) s[0] = batch;
      return s;
    };
    Shape yb = ys;
    yb[0] = batch;
    const ops::BroadcastPlan plan = ops::plan_broadcast(at(a), at(b), yb);
    for_chunks(batch * y_img, [&](int64_t s, int64_t e) { ops::broadcast_binary_f32(op, plan, a.p, b.p, y, s, e); });
  }};
}

// Softmax / LogSoftmax along one axis other than the batch (the opset 13 meaning; fold_constants
// rewrites the opset 1-12 2-D form, marked "coerce_2d" by the importer, into it).
Compiled compile_softmax(const NodeView& nv) {
  const bool log = nv.node().op == "LogSoftmax";
  const int xv = nv.in(0);
  const float* x = nv.f32_in(xv, "input");
  const Shape& xs = nv.shape1(xv);
  const int64_t rank = int64_t(xs.size());
  int64_t axis = nv.attrs().i("axis", -1);
  if (axis < -rank || axis >= rank) nv.error("axis " + std::to_string(axis) + " is out of range");
  if (axis < 0) axis += rank;
  if (axis == 0) nv.error("softmax over the batch axis is not supported");
  if (nv.attrs().has("coerce_2d")) nv.error("the opset 1-12 form is resolved by prepare_graph; run it first");
  const int64_t n = xs[axis];
  const int64_t inner = numel(Shape(xs.begin() + axis + 1, xs.end()));
  const int64_t outer = nv.per_image(xv) / (n * inner);  // per image
  float* y = nv.f32_out();
  if (inner == 1)
    return {[=](int batch, void*) {
      for_chunks(batch * outer, [&](int64_t b, int64_t e) {
        if (log)
          ops::log_softmax_rows_f32(x + b * n, y + b * n, e - b, n);
        else
          ops::softmax_f32(x + b * n, y + b * n, int(e - b), int(n));
      });
    }};
  return {[=](int batch, void*) {
    tbb::parallel_for(int64_t(0), batch * outer, [&](int64_t o) {
      ops::softmax_axis_f32(x + o * n * inner, y + o * n * inner, n, inner, log);
    });
  }};
}

Compiled compile_pad(const NodeView& nv) {
  const int xv = nv.in(0);
  const float* x = nv.f32_in(xv, "input");
  nv.require_rank(xv, 4, "input");
  const std::string mode_name = nv.attrs().s("mode", "constant");
  ops::PadMode mode = ops::PadMode::Constant;
  if (mode_name == "reflect") mode = ops::PadMode::Reflect;
  else if (mode_name == "edge") mode = ops::PadMode::Edge;
  else if (mode_name != "constant") nv.error("unsupported padding mode '" + mode_name + "'");
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
  nv.check_output_shape({1, C, H + PT + PB, W + PL + PR});
  float* y = nv.f32_out();
  const int64_t x_img = nv.per_image(xv), y_img = nv.per_image(nv.out());
  return {[=](int batch, void*) {
    for_each_image(batch, [&](int i) {
      ops::pad2d_f32(mode, x + i * x_img, y + i * y_img, C, H, W, PT, PL, PB, PR, value);
    });
  }};
}

}  // namespace

void register_elementwise(OpRegistry& r) {
  const std::vector<DType> f32{DType::F32};
  r.add({"Relu", f32, compile_relu, false, true});
  r.add({"FakeQuant", f32, compile_fake_quant, false, true});
  r.add({"ChannelAffine", f32, [](const NodeView& nv) { return compile_channel_affine(nv, false); }, false, true});
  r.add({"BatchNormalization", f32, [](const NodeView& nv) { return compile_channel_affine(nv, true); }, false, true});
  for (const char* op : {"Add", "Sub", "Mul", "Div", "Pow", "PRelu", "Max", "Min"})
    r.add({op, f32, compile_binary, false, true});
  r.add({"Softmax", f32, compile_softmax});
  r.add({"LogSoftmax", f32, compile_softmax});
  r.add({"Pad", f32, compile_pad});
}

}  // namespace fgq::rt
