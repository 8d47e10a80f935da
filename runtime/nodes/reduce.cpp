// Reductions of float activations over axes other than the batch (ops/reduce.h): ReduceSum,
// ReduceMean, ReduceMax, ReduceMin, ReduceProd, ReduceL1, ReduceL2, ReduceSumSquare,
// ReduceLogSum, ReduceLogSumExp, and GlobalMaxPool (ReduceMax over the spatial axes).
#include "graph/shape_rules.h"
#include "ops/reduce.h"
#include "runtime/nodes/parallel.h"
#include "runtime/op_registry.h"

namespace fgq::rt {
namespace {

Compiled compile_reduce(const NodeView& nv) {
  const int xv = nv.in(0);
  const float* x = nv.f32_in(xv, "input");
  const Shape& xs = nv.shape1(xv);
  ops::ReduceOp op = ops::ReduceOp::Max;
  std::vector<bool> red(xs.size(), true);
  if (nv.node().op == "GlobalMaxPool") {
    if (xs.size() < 3) nv.error("input must be N,C,spatial...");
    red[0] = red[1] = false;
  } else {
    op = *ops::reduce_op_from_name(nv.node().op);
    red = reduce_axes(nv.graph(), nv.node(), xs.size());
  }
  if (red.empty() || red[0]) nv.error("reducing over the batch axis is not supported");
  const Shape img(xs.begin() + 1, xs.end());
  const std::vector<bool> img_red(red.begin() + 1, red.end());
  const int64_t x_img = nv.per_image(xv), y_img = nv.per_image(nv.out());
  int64_t kept = 1;
  for (size_t k = 0; k < img.size(); ++k)
    if (!img_red[k]) kept *= img[k];
  if (kept != y_img) nv.error("output size does not match the kept axes");
  float* y = nv.f32_out();
  return {[=](int batch, void*) {
    for_each_image(batch, [&](int i) { ops::reduce_f32(op, x + i * x_img, img, img_red, y + i * y_img); });
  }};
}

}  // namespace

void register_reduce(OpRegistry& r) {
  for (const char* op : {"ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
                         "ReduceSumSquare", "ReduceLogSum", "ReduceLogSumExp", "GlobalMaxPool"})
    r.add({op, {DType::F32}, compile_reduce});
}

}  // namespace fgq::rt
