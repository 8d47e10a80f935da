// Float element-wise ops: Relu, Add (two activations, or a broadcast constant), per-channel
// affine (ChannelAffine, inference BatchNormalization), simulated quantization (FakeQuant),
// Softmax and constant Pad.
#include <tbb/parallel_for.h>

#include <cmath>
#include <cstring>

#include "ops/elementwise.h"
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

// Add of two same-shape activations, or of an activation and a broadcast constant: a scalar,
// a per-channel vector ([C,1,1] / [1,C,1,1]) or one image's worth of values.
Compiled compile_add(const NodeView& nv) {
  int av = nv.in(0), bv = nv.in(1);
  if (av < 0 || bv < 0) nv.error("needs two inputs");
  if (nv.is_const(av)) std::swap(av, bv);
  const float* a = nv.f32_in(av, "input");
  float* y = nv.f32_out();
  const int64_t n = nv.per_image(nv.out());
  if (nv.per_image(av) != n) nv.error("broadcasting the activation input is not supported");
  if (!nv.is_const(bv)) {
    if (nv.shape1(av) != nv.shape1(bv))
      nv.error("shapes " + shape_str(nv.shape1(av)) + " and " + shape_str(nv.shape1(bv)) +
               " differ");
    const float* b = nv.f32_in(bv, "input");
    return {[=](int batch, void*) {
      for_chunks(batch * n,
                 [&](int64_t s, int64_t e) { ops::add_f32(a + s, b + s, y + s, e - s, false); });
    }};
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
  return {[=](int batch, void*) {
    tbb::parallel_for(int64_t(0), batch * values, [&](int64_t k) {
      const float c = b[k % values];
      const float* ap = a + k * inner;
      float* yp = y + k * inner;
      for (int64_t j = 0; j < inner; ++j) yp[j] = ap[j] + c;
    });
  }};
}

Compiled compile_softmax(const NodeView& nv) {
  const int xv = nv.in(0);
  const float* x = nv.f32_in(xv, "input");
  const Shape& xs = nv.shape1(xv);
  const int64_t rank = int64_t(xs.size());
  int64_t axis = nv.attrs().i("axis", -1);
  if (axis < 0) axis += rank;
  if (rank < 2 || axis != rank - 1) nv.error("only softmax over the last axis is supported");
  const int64_t cols = xs.back(), rows = nv.per_image(xv) / cols;
  float* y = nv.f32_out();
  return {[=](int batch, void*) { ops::softmax_f32(x, y, int(batch * rows), int(cols)); }};
}

Compiled compile_pad(const NodeView& nv) {
  const int xv = nv.in(0);
  const float* x = nv.f32_in(xv, "input");
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
  nv.check_output_shape({1, C, H + PT + PB, W + PL + PR});
  float* y = nv.f32_out();
  const int64_t x_img = nv.per_image(xv), y_img = nv.per_image(nv.out());
  return {[=](int batch, void*) {
    for_each_image(batch, [&](int i) {
      ops::pad_f32(x + i * x_img, y + i * y_img, C, H, W, PT, PL, PB, PR, value);
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
  r.add({"Add", f32, compile_add, false, true});
  r.add({"Softmax", f32, compile_softmax});
  r.add({"Pad", f32, compile_pad});
}

}  // namespace fgq::rt
