// Quantize (float NCHW -> integer NHWC) and Dequantize (back): where the integer pipeline
// starts (the preprocessed image) and, when part of a network stays float, where it stops.
#include "ops/qlinear.h"
#include "runtime/nodes/qtype_of.h"
#include "runtime/op_registry.h"

namespace fgq::rt {
namespace {

// [N,C,H,W] or [N,C] as N, C, H, W.
void dims4(const NodeView& nv, int v, int& C, int& H, int& W) {
  const Shape& s = nv.shape1(v);
  if (s.size() != 2 && s.size() != 4) nv.error("needs a [N,C,H,W] or [N,C] tensor, got " + shape_str(s));
  C = int(s[1]), H = s.size() == 4 ? int(s[2]) : 1, W = s.size() == 4 ? int(s[3]) : 1;
}

Compiled compile_quantize(const NodeView& nv) {
  int C, H, W;
  dims4(nv, nv.in(0), C, H, W);
  // The image straight from the caller's buffer when the executor lets it (no arena copy).
  const float* const* caller = nv.caller_input(nv.in(0));
  const float* x = caller ? nullptr : nv.f32_in(nv.in(0), "input");
  const ops::QType t = qtype_of(nv, nv.out());
  const float scale = nv.attrs().f("scale", 0);
  const int zero = int(nv.attrs().i("zero_point", 0));
  const int qmin = int(nv.attrs().i("qmin", 0)), qmax = int(nv.attrs().i("qmax", 0));
  uint8_t* y = nv.act_out();
  return {[=](int batch, void*) {
    ops::quantize_nchw(caller ? *caller : x, batch, C, H, W, scale, zero, qmin, qmax, t, y);
  }};
}

Compiled compile_dequantize(const NodeView& nv) {
  int C, H, W;
  dims4(nv, nv.in(0), C, H, W);
  const uint8_t* x = nv.act_in(nv.in(0), "input");
  const ops::QType t = qtype_of(nv, nv.in(0));
  const float scale = nv.attrs().f("scale", 0);
  const int zero = int(nv.attrs().i("zero_point", 0));
  float* y = nv.f32_out();
  return {[=](int batch, void*) { ops::dequantize_nhwc(x, t, batch, C, H, W, scale, zero, y); }};
}

}  // namespace

void register_quantize(OpRegistry& r) {
  OpKernelDef quantize{"Quantize", {DType::F32}, compile_quantize};
  quantize.reads_caller_input = true;
  quantize.team_parallel = true;
  r.add(quantize);
  OpKernelDef dequantize{"Dequantize", {DType::U8, DType::S8, DType::U4}, compile_dequantize};
  dequantize.team_parallel = true;
  r.add(dequantize);
}

}  // namespace fgq::rt
