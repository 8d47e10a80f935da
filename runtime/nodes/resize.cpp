// Resize of float NCHW activations over H and W (ops/resize.h): nearest, linear, cubic. The
// importer turns Upsample and opset-10 Resize into this form.
#include "graph/shape_rules.h"
#include "ops/resize.h"
#include "runtime/nodes/parallel.h"
#include "runtime/op_registry.h"

namespace fgq::rt {
namespace {

Compiled compile_resize(const NodeView& nv) {
  const int xv = nv.in(0);
  const float* x = nv.f32_in(xv, "input");
  nv.require_rank(xv, 4, "input");
  const Shape& xs = nv.shape1(xv);
  const ResizeGeometry geo = resize_geometry(nv.graph(), nv.node(), xs);
  nv.check_output_shape(geo.out);
  ops::ResizeOptions o;
  if (!ops::parse_resize_mode(nv.attrs().s("mode", "nearest"), o.mode) ||
      !ops::parse_resize_coord(nv.attrs().s("coordinate_transformation_mode", "half_pixel"), o.coord) ||
      !ops::parse_resize_nearest(nv.attrs().s("nearest_mode", "round_prefer_floor"), o.nearest))
    nv.error("unsupported mode");
  o.cubic_a = nv.attrs().f("cubic_coeff_a", -0.75f);
  o.exclude_outside = nv.attrs().i("exclude_outside", 0) != 0;
  const int64_t C = xs[1], H = xs[2], W = xs[3], OH = geo.out[2], OW = geo.out[3];
  const ops::ResizeTaps th = ops::resize_taps(o, H, OH, geo.scale[2]);
  const ops::ResizeTaps tw = ops::resize_taps(o, W, OW, geo.scale[3]);
  float* y = nv.f32_out();
  const int64_t x_img = nv.per_image(xv), y_img = nv.per_image(nv.out());
  return {[=](int batch, void*) {
    for_each_image(batch, [&](int i) { ops::resize2d_f32(th, tw, x + i * x_img, y + i * y_img, C, H, W, OH, OW); });
  }};
}

}  // namespace

void register_resize(OpRegistry& r) { r.add({"Resize", {DType::F32}, compile_resize}); }

}  // namespace fgq::rt
