// Conv on float tensors (NCHW), with the bias, residual and ReLU the fusion pass folds in.
#include <tbb/parallel_for.h>

#include "ops/conv2d.h"
#include "runtime/nodes/window_attrs.h"
#include "runtime/op_registry.h"

namespace fgq::rt {
namespace {

Compiled compile_conv(const NodeView& nv) {
  const int xv = nv.in(0);
  const float* x = nv.f32_in(xv, "input");
  nv.require_rank(xv, 4, "input");
  const Tensor& wt = nv.constant(nv.in(1), "weight");
  if (wt.dtype != DType::F32 || wt.shape.size() != 4) nv.error("weight must be float [K,C,KH,KW]");
  const float* w = wt.f.data();
  const float* bias = nv.in(2) >= 0 ? nv.const_f32(nv.in(2), "bias") : nullptr;
  if (bias && nv.constant(nv.in(2), "bias").numel() != wt.shape[0]) nv.error("bias size != K");
  const float* residual = nv.in(3) >= 0 ? nv.f32_in(nv.in(3), "residual") : nullptr;
  const std::string act = nv.attrs().s("activation", "");
  if (!act.empty() && act != "Relu") nv.error("unsupported fused activation '" + act + "'");
  const bool relu = act == "Relu";

  const Shape& xs = nv.shape1(xv);
  const int64_t group = nv.attrs().i("group", 1);
  const int64_t K = wt.shape[0], Cg = wt.shape[1];
  if (group < 1 || xs[1] != Cg * group || K % group != 0)
    nv.error("channels do not match: input " + shape_str(xs) + ", weight " + shape_str(wt.shape) +
             ", group " + std::to_string(group));
  const Window win = node_window(nv, wt.shape[2], wt.shape[3], xs[2], xs[3]);
  ops::Conv2dShape s;
  s.C = int(Cg), s.H = int(xs[2]), s.W = int(xs[3]);
  s.K = int(K / group), s.KH = win.KH, s.KW = win.KW;
  s.SH = win.SH, s.SW = win.SW, s.DH = win.DH, s.DW = win.DW;
  s.PT = win.PT, s.PL = win.PL, s.PB = win.PB, s.PR = win.PR;
  nv.check_output_shape({1, K, s.OH(), s.OW()});
  if (residual && nv.shape1(nv.in(3)) != nv.shape1(nv.out()))
    nv.error("residual shape " + shape_str(nv.shape1(nv.in(3))) + " != output shape " +
             shape_str(nv.shape1(nv.out())));

  float* y = nv.f32_out();
  const int64_t x_img = nv.per_image(xv), y_img = nv.per_image(nv.out());
  // Groups are contiguous channel ranges in NCHW, so each group is a plain conv on slices.
  const int64_t x_grp = int64_t(s.C) * s.H * s.W, y_grp = int64_t(s.K) * s.OH() * s.OW();
  const int64_t w_grp = int64_t(s.K) * s.C * s.KH * s.KW;
  const int groups = int(group);
  // The whole batch per call: the kernel reads each weight once per batch.
  return {[=](int batch, void*) {
    auto conv_group = [&](int g) {
      ops::conv2d_f32_batch(s, batch, x + g * x_grp, x_img, w + g * w_grp,
                            bias ? bias + g * s.K : nullptr,
                            residual ? residual + g * y_grp : nullptr, relu, y + g * y_grp, y_img);
    };
    if (groups == 1)
      conv_group(0);
    else
      tbb::parallel_for(0, groups, conv_group);
  }};
}

}  // namespace

void register_conv(OpRegistry& r) { r.add({"Conv", {DType::F32}, compile_conv}); }

}  // namespace fgq::rt
