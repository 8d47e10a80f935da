// MaxPool / AveragePool (dilated too) / GlobalAveragePool on float NCHW tensors, MaxPool on
// integer NHWC tensors (exact on the stored integers) and QGlobalAveragePool (int32 sums, one
// requantization).
#include "ops/pool.h"
#include "ops/qpool.h"
#include "runtime/nodes/parallel.h"
#include "runtime/nodes/qtype_of.h"
#include "runtime/nodes/window_attrs.h"
#include "runtime/op_registry.h"

namespace fgq::rt {
namespace {

// Dilated windows only for the float kernels (allow_dilation); the integer MaxPool has none.
ops::Pool2dShape pool_shape(const NodeView& nv, bool allow_dilation = false) {
  const int xv = nv.in(0);
  nv.require_rank(xv, 4, "input");
  const auto k = nv.attrs().ints("kernel_shape");
  if (k.size() != 2) nv.error("kernel_shape must have 2 values");
  const Shape& xs = nv.shape1(xv);
  const Window win = node_window(nv, k[0], k[1], xs[2], xs[3]);
  if (!allow_dilation && (win.DH != 1 || win.DW != 1)) nv.error("dilated pooling is not supported here");
  if (nv.attrs().i("storage_order", 0) != 0) nv.error("storage_order=1 is not supported");
  ops::Pool2dShape s;
  s.C = int(xs[1]), s.H = int(xs[2]), s.W = int(xs[3]);
  s.KH = win.KH, s.KW = win.KW, s.SH = win.SH, s.SW = win.SW, s.DH = win.DH, s.DW = win.DW;
  s.PT = win.PT, s.PL = win.PL, s.PB = win.PB, s.PR = win.PR;
  s.ceil_mode = nv.attrs().i("ceil_mode", 0) != 0;
  s.count_include_pad = nv.attrs().i("count_include_pad", 0) != 0;
  nv.check_output_shape({1, xs[1], s.OH(), s.OW()});
  return s;
}

Compiled compile_pool_f32(const NodeView& nv, bool is_max) {
  const ops::Pool2dShape s = pool_shape(nv, /*allow_dilation=*/true);
  const float* x = nv.f32_in(nv.in(0), "input");
  float* y = nv.f32_out();
  const int64_t x_img = nv.per_image(nv.in(0)), y_img = nv.per_image(nv.out());
  return {[=](int batch, void*) {
    for_each_image(batch, [&](int i) {
      if (is_max)
        ops::maxpool2d_f32(s, x + i * x_img, y + i * y_img);
      else
        ops::avgpool2d_f32(s, x + i * x_img, y + i * y_img);
    });
  }};
}

Compiled compile_maxpool_q(const NodeView& nv) {
  const ops::Pool2dShape s = pool_shape(nv);
  const ops::QType t = qtype_of(nv, nv.in(0));
  const uint8_t* x = nv.act_in(nv.in(0), "input");
  uint8_t* y = nv.act_out();
  return {[=](int batch, void*) { ops::maxpool2d_q(s, batch, t, x, y); }};
}

Compiled compile_global_avgpool(const NodeView& nv) {
  const int xv = nv.in(0);
  const float* x = nv.f32_in(xv, "input");
  const Shape& xs = nv.shape1(xv);
  if (xs.size() < 3) nv.error("input must be N,C,spatial...");
  const int64_t C = xs[1], spatial = nv.per_image(xv) / C;
  float* y = nv.f32_out();
  // NCHW: a batch of N images is just N*C channels.
  return {[=](int batch, void*) { ops::global_avgpool_f32(int(batch * C), int(spatial), x, y); }};
}

Compiled compile_qglobal_avgpool(const NodeView& nv) {
  const int xv = nv.in(0);
  nv.require_rank(xv, 4, "input");
  const Shape& xs = nv.shape1(xv);
  nv.check_output_shape({1, xs[1], 1, 1});
  const ops::QType in = qtype_of(nv, xv), out = qtype_of(nv, nv.out());
  const float mult = nv.attrs().f("mult", 0);
  const int qmin = int(nv.attrs().i("qmin", 0)), qmax = int(nv.attrs().i("qmax", 255));
  const uint8_t* x = nv.act_in(xv, "input");
  uint8_t* y = nv.act_out();
  const int C = int(xs[1]), HW = int(xs[2] * xs[3]);
  return {[=](int batch, void*) { ops::global_avgpool_q(batch, C, HW, in, x, mult, qmin, qmax, out, y); }};
}

}  // namespace

void register_pool(OpRegistry& r) {
  r.add({"MaxPool", {DType::F32}, [](const NodeView& nv) { return compile_pool_f32(nv, true); }});
  OpKernelDef maxpool_q{"MaxPool", {DType::U8, DType::U4}, compile_maxpool_q};
  maxpool_q.team_parallel = true;
  r.add(maxpool_q);
  r.add({"AveragePool", {DType::F32}, [](const NodeView& nv) { return compile_pool_f32(nv, false); }});
  r.add({"GlobalAveragePool", {DType::F32}, compile_global_avgpool});
  OpKernelDef gap_q{"QGlobalAveragePool", {DType::U8, DType::U4}, compile_qglobal_avgpool};
  gap_q.team_parallel = true;
  r.add(gap_q);
}

}  // namespace fgq::rt
