// Gemm / MatMul of a float activation [N, K] with constant weights.
#include "ops/gemm.h"
#include "runtime/op_registry.h"

namespace fgq::rt {
namespace {

Compiled compile_gemm(const NodeView& nv, bool is_matmul) {
  const int av = nv.in(0);
  const float* a = nv.f32_in(av, "A");
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
  nv.check_output_shape({1, N});
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
  float* y = nv.f32_out();
  return {[=, c_row = std::move(c_row)](int batch, void*) {
    ops::gemm_f32(batch, int(N), int(K), a, b, trans_b, c_row.empty() ? nullptr : c_row.data(),
                  true, alpha, beta, y);
  }};
}

}  // namespace

void register_gemm(OpRegistry& r) {
  r.add({"Gemm", {DType::F32}, [](const NodeView& nv) { return compile_gemm(nv, false); }});
  r.add({"MatMul", {DType::F32}, [](const NodeView& nv) { return compile_gemm(nv, true); }});
}

}  // namespace fgq::rt
