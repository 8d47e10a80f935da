// ConvTranspose on float NCHW activations (ops/conv_transpose.h), 2-D (1-D arrives lifted to
// 2-D by the importer).
#include "graph/shape_rules.h"
#include "ops/conv_transpose.h"
#include "runtime/nodes/parallel.h"
#include "runtime/op_registry.h"

namespace fgq::rt {
namespace {

Compiled compile_conv_transpose(const NodeView& nv) {
  const int xv = nv.in(0);
  const float* x = nv.f32_in(xv, "input");
  nv.require_rank(xv, 4, "input");
  const Tensor& wt = nv.constant(nv.in(1), "weight");
  if (wt.dtype != DType::F32 || wt.shape.size() != 4) nv.error("weight must be float [C,K/group,KH,KW]");
  const Shape& xs = nv.shape1(xv);
  const ConvTransposeGeometry geo = conv_transpose_geometry(nv.graph(), nv.node(), xs, wt.shape);
  nv.check_output_shape(geo.out);
  ops::ConvTranspose2dShape s;
  s.C = xs[1], s.H = xs[2], s.W = xs[3], s.K = geo.out[1], s.OH = geo.out[2], s.OW = geo.out[3];
  s.group = geo.group, s.kh = geo.kh, s.kw = geo.kw, s.sh = geo.sh, s.sw = geo.sw, s.dh = geo.dh, s.dw = geo.dw;
  s.pt = geo.pt, s.pl = geo.pl;
  std::vector<float> bias;
  if (nv.in(2) >= 0) {
    if (nv.constant(nv.in(2), "bias").numel() != s.K) nv.error("bias size != output channels");
    const float* b = nv.const_f32(nv.in(2), "bias");
    bias.assign(b, b + s.K);
  }
  auto packed = std::static_pointer_cast<const std::vector<float>>(nv.shared("packed", [&] {
    auto p = std::make_shared<const std::vector<float>>(ops::pack_conv_transpose_weight(s, wt.f.data()));
    return CacheItem{p, p->size() * sizeof(float)};
  }));
  float* y = nv.f32_out();
  const int64_t x_img = nv.per_image(xv), y_img = nv.per_image(nv.out());
  const int64_t cols = ops::conv_transpose_scratch(s);
  // Images one after another (the GEMM parallelizes inside), sharing one column buffer.
  return {[=, bias = std::move(bias)](int batch, void* scratch) {
            float* c = static_cast<float*>(scratch);
            for (int i = 0; i < batch; ++i)
              ops::conv_transpose2d_f32(s, x + i * x_img, packed->data(), bias.empty() ? nullptr : bias.data(),
                                        y + i * y_img, c);
          },
          size_t(cols) * sizeof(float)};
}

}  // namespace

void register_conv_transpose(OpRegistry& r) { r.add({"ConvTranspose", {DType::F32}, compile_conv_transpose}); }

}  // namespace fgq::rt
