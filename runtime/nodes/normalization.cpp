// LRN and InstanceNormalization on float NC... activations (ops/normalization.h).
#include "ops/normalization.h"
#include "runtime/nodes/parallel.h"
#include "runtime/op_registry.h"

namespace fgq::rt {
namespace {

Compiled compile_lrn(const NodeView& nv) {
  const int xv = nv.in(0);
  const float* x = nv.f32_in(xv, "input");
  const Shape& xs = nv.shape1(xv);
  if (xs.size() < 3) nv.error("input must be N,C,spatial...");
  const int64_t size = nv.attrs().i("size", 0);
  if (size < 1) nv.error("size must be >= 1");
  const float alpha = nv.attrs().f("alpha", 1e-4f), beta = nv.attrs().f("beta", 0.75f),
              bias = nv.attrs().f("bias", 1.f);
  const int64_t C = xs[1], n = nv.per_image(xv), spatial = n / C;
  float* y = nv.f32_out();
  return {[=](int batch, void*) {
    for_each_image(batch, [&](int i) { ops::lrn_f32(x + i * n, y + i * n, C, spatial, size, alpha, beta, bias); });
  }};
}

Compiled compile_instance_norm(const NodeView& nv) {
  const int xv = nv.in(0);
  const float* x = nv.f32_in(xv, "input");
  const Shape& xs = nv.shape1(xv);
  if (xs.size() < 3) nv.error("input must be N,C,spatial...");
  const int64_t C = xs[1], n = nv.per_image(xv), spatial = n / C;
  auto param = [&](size_t k, const char* role) {
    if (nv.constant(nv.in(k), role).numel() != C)
      nv.error(std::string(role) + " needs " + std::to_string(C) + " values");
    const float* p = nv.const_f32(nv.in(k), role);
    return std::vector<float>(p, p + C);
  };
  const std::vector<float> scale = param(1, "scale"), shift = param(2, "B");
  const float eps = nv.attrs().f("epsilon", 1e-5f);
  float* y = nv.f32_out();
  return {[=](int batch, void*) {
    for_each_image(batch, [&](int i) {
      ops::instance_norm_f32(x + i * n, y + i * n, C, spatial, scale.data(), shift.data(), eps);
    });
  }};
}

}  // namespace

void register_normalization(OpRegistry& r) {
  r.add({"LRN", {DType::F32}, compile_lrn});
  r.add({"InstanceNormalization", {DType::F32}, compile_instance_norm, false, true});
}

}  // namespace fgq::rt
