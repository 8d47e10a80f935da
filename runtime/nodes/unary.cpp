// Float element-wise activations and math ops (ops/unary.h): Sigmoid, Tanh, LeakyRelu, Clip,
// HardSigmoid, HardSwish, Elu, Celu, Selu, ThresholdedRelu, Softplus, Softsign, Neg, Abs, Exp,
// Log, Sqrt, Reciprocal, Floor, Ceil, Round, Erf.
#include "ops/unary.h"
#include "runtime/nodes/parallel.h"
#include "runtime/op_registry.h"

namespace fgq::rt {
namespace {

// Clip's bound: the constant scalar input k (opset 11+), else the attribute (opsets 1-10).
float clip_bound(const NodeView& nv, size_t k, const char* attr, float def) {
  const int v = nv.in(k);
  if (v < 0) return nv.attrs().f(attr, def);
  if (nv.constant(v, attr).numel() != 1) nv.error(std::string(attr) + " must be a scalar");
  return nv.const_f32(v, attr)[0];
}

Compiled compile_unary(const NodeView& nv) {
  const std::optional<ops::UnaryOp> op = ops::unary_op_from_name(nv.node().op);
  if (!op) nv.error("not an element-wise op");
  ops::UnaryParams p = ops::default_unary_params(*op);
  p.alpha = nv.attrs().f("alpha", p.alpha);
  p.beta = nv.attrs().f("beta", p.beta);
  p.gamma = nv.attrs().f("gamma", p.gamma);
  if (*op == ops::UnaryOp::Clip) {
    p.lo = clip_bound(nv, 1, "min", p.lo);
    p.hi = clip_bound(nv, 2, "max", p.hi);
  } else if (nv.node().inputs.size() > 1) {
    nv.error("takes one input");
  }
  if (*op == ops::UnaryOp::Celu && p.alpha == 0.f) nv.error("alpha must not be 0");
  const float* x = nv.f32_in(nv.in(0), "input");
  float* y = nv.f32_out();
  const int64_t n = nv.per_image(nv.out());
  const ops::UnaryOp o = *op;
  return {[=](int batch, void*) {
    for_chunks(batch * n, [&](int64_t b, int64_t e) { ops::unary_f32(o, p, x + b, y + b, e - b); });
  }};
}

}  // namespace

void register_unary(OpRegistry& r) {
  for (const char* op : {"Sigmoid", "Tanh", "LeakyRelu", "Clip", "HardSigmoid", "HardSwish", "Elu", "Celu", "Selu",
                         "ThresholdedRelu", "Softplus", "Softsign", "Neg", "Abs", "Exp", "Log", "Sqrt", "Reciprocal",
                         "Floor", "Ceil", "Round", "Erf"})
    r.add({op, {DType::F32}, compile_unary, false, true});
}

}  // namespace fgq::rt
