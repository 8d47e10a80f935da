// Data movement on float activations: Transpose, Concat, Gather, Slice, DepthToSpace and
// SpaceToDepth along axes other than the batch (dim 0 stays the batch: the executor runs one
// plan for every batch size).
#include <cstring>

#include "graph/shape_rules.h"
#include "ops/transpose.h"
#include "runtime/nodes/parallel.h"
#include "runtime/op_registry.h"

namespace fgq::rt {
namespace {

// `axis` of a node over an input of rank r, normalized; the batch axis is refused.
int64_t data_axis(const NodeView& nv, int64_t axis, int64_t r) {
  axis = normalize_axis(axis, r, [&](const std::string& m) { nv.error(m); });
  if (axis == 0) nv.error("working along the batch axis (0) is not supported");
  return axis;
}

Compiled compile_transpose(const NodeView& nv) {
  const int xv = nv.in(0);
  const float* x = nv.f32_in(xv, "input");
  const Shape& xs = nv.shape1(xv);
  const int64_t r = int64_t(xs.size());
  std::vector<int64_t> perm = nv.attrs().ints("perm");
  if (!nv.attrs().has("perm"))
    for (int64_t d = r - 1; d >= 0; --d) perm.push_back(d);
  if (int64_t(perm.size()) != r) nv.error("perm does not match the input rank");
  if (perm[0] != 0) nv.error("perm " + shape_str(perm) + " moves the batch axis");
  // One image: its own axes, perm shifted down by one.
  const Shape img(xs.begin() + 1, xs.end());
  std::vector<int64_t> p;
  for (size_t k = 1; k < perm.size(); ++k) p.push_back(perm[k] - 1);
  Shape ys{1};
  for (int64_t a : p) {
    if (a < 0 || a >= r - 1) nv.error("perm " + shape_str(perm) + " is not a permutation");
    ys.push_back(img[size_t(a)]);
  }
  nv.check_output_shape(ys);
  float* y = nv.f32_out();
  const int64_t n = nv.per_image(xv);
  return {[=](int batch, void*) {
    for_each_image(batch, [&](int i) { ops::transpose_f32(x + i * n, img, p, y + i * n); });
  }};
}

// Concat along a non-batch axis. A constant input repeats for every image (its dim 0 is 1).
Compiled compile_concat(const NodeView& nv) {
  const Shape& ys = nv.shape1(nv.out());
  const int64_t r = int64_t(ys.size());
  const int64_t axis = data_axis(nv, nv.attrs().i("axis", 0), r);
  struct Part {
    const float* p;
    int64_t block;     // elements per outer index
    int64_t per_image; // 0 for a constant
  };
  std::vector<Part> parts;
  const int64_t outer = numel(Shape(ys.begin() + 1, ys.begin() + axis));  // per image
  int64_t total = 0;
  for (size_t k = 0; k < nv.node().inputs.size(); ++k) {
    const int v = nv.in(k);
    if (v < 0) nv.error("input " + std::to_string(k) + " is missing");
    Shape s;
    Part part;
    if (nv.is_const(v)) {
      s = nv.constant(v, "input").shape;
      part.p = nv.const_f32(v, "input");
      if (s.size() != ys.size() || s[0] != 1)
        nv.error("constant input " + shape_str(s) + " does not repeat over the batch");
      part.per_image = 0;
    } else {
      s = nv.shape1(v);
      part.p = nv.f32_in(v, "input");
      part.per_image = nv.per_image(v);
    }
    if (s.size() != ys.size()) nv.error("input " + std::to_string(k) + " has rank " + std::to_string(s.size()));
    part.block = numel(Shape(s.begin() + axis, s.end()));
    total += part.block;
    parts.push_back(part);
  }
  if (total * outer != nv.per_image(nv.out())) nv.error("input sizes do not add up to the output");
  float* y = nv.f32_out();
  const int64_t y_img = nv.per_image(nv.out());
  return {[=](int batch, void*) {
    for_each_image(batch, [&](int i) {
      int64_t off = 0;
      for (const Part& part : parts) {
        ops::copy_blocks_f32(part.p + i * part.per_image, part.block, part.block, outer, y + i * y_img + off, total);
        off += part.block;
      }
    });
  }};
}

// Gather of constant indices along a non-batch axis of an activation.
Compiled compile_gather(const NodeView& nv) {
  const int xv = nv.in(0);
  const float* x = nv.f32_in(xv, "data");
  const Tensor& idx = nv.constant(nv.in(1), "indices");
  if (idx.dtype != DType::I64) nv.error("indices must be int64");
  const Shape& xs = nv.shape1(xv);
  const int64_t axis = data_axis(nv, nv.attrs().i("axis", 0), int64_t(xs.size()));
  const int64_t dim = xs[size_t(axis)];
  std::vector<int64_t> index;
  for (int64_t i : idx.i) {
    if (i < -dim || i >= dim)
      nv.error("index " + std::to_string(i) + " is out of range for dim " + std::to_string(dim));
    index.push_back(i < 0 ? i + dim : i);
  }
  const int64_t outer = numel(Shape(xs.begin() + 1, xs.begin() + axis));  // per image
  const int64_t inner = numel(Shape(xs.begin() + axis + 1, xs.end()));
  const int64_t x_img = nv.per_image(xv), y_img = nv.per_image(nv.out());
  if (y_img != outer * int64_t(index.size()) * inner) nv.error("output size does not match the indices");
  float* y = nv.f32_out();
  return {[=](int batch, void*) {
    for_each_image(batch, [&](int b) {
      float* yp = y + b * y_img;
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t i : index) {
          std::memcpy(yp, x + b * x_img + (o * dim + i) * inner, sizeof(float) * size_t(inner));
          yp += inner;
        }
    });
  }};
}

// Slice with constant parameters; the batch axis is taken whole.
Compiled compile_slice(const NodeView& nv) {
  const int xv = nv.in(0);
  const float* x = nv.f32_in(xv, "data");
  const Shape& xs = nv.shape1(xv);
  const SliceParams sp = slice_params(nv.graph(), nv.node(), xs);
  if (sp.starts[0] != 0 || sp.steps[0] != 1 || sp.counts[0] != xs[0])
    nv.error("slicing the batch axis is not supported");
  nv.check_output_shape(sp.counts);
  const Shape img(xs.begin() + 1, xs.end());
  const std::vector<int64_t> starts(sp.starts.begin() + 1, sp.starts.end());
  const std::vector<int64_t> steps(sp.steps.begin() + 1, sp.steps.end());
  const std::vector<int64_t> counts(sp.counts.begin() + 1, sp.counts.end());
  float* y = nv.f32_out();
  const int64_t x_img = nv.per_image(xv), y_img = nv.per_image(nv.out());
  return {[=](int batch, void*) {
    for_each_image(batch, [&](int b) { ops::slice_f32(x + b * x_img, img, starts, steps, counts, y + b * y_img); });
  }};
}

// DepthToSpace (DCR / CRD) and SpaceToDepth: one image is a 5-D transpose (ONNX defines them as
// reshape -> transpose -> reshape).
Compiled compile_depth_space(const NodeView& nv) {
  const int xv = nv.in(0);
  const float* x = nv.f32_in(xv, "input");
  nv.require_rank(xv, 4, "input");
  const Shape& xs = nv.shape1(xv);
  const int64_t b = nv.attrs().i("blocksize", 0), C = xs[1], H = xs[2], W = xs[3];
  if (b < 1) nv.error("blocksize must be >= 1");
  Shape img, ys;
  std::vector<int64_t> perm;
  if (nv.node().op == "DepthToSpace") {
    if (C % (b * b)) nv.error("channels are not a multiple of blocksize^2");
    const std::string mode = nv.attrs().s("mode", "DCR");
    if (mode == "DCR") img = {b, b, C / (b * b), H, W}, perm = {2, 3, 0, 4, 1};
    else if (mode == "CRD") img = {C / (b * b), b, b, H, W}, perm = {0, 3, 1, 4, 2};
    else nv.error("unsupported mode '" + mode + "'");
    ys = {1, C / (b * b), H * b, W * b};
  } else {
    if (H % b || W % b) nv.error("height and width are not multiples of blocksize");
    img = {C, H / b, b, W / b, b}, perm = {2, 4, 0, 1, 3};
    ys = {1, C * b * b, H / b, W / b};
  }
  nv.check_output_shape(ys);
  float* y = nv.f32_out();
  const int64_t n = nv.per_image(xv);
  return {[=](int batch, void*) {
    for_each_image(batch, [&](int i) { ops::transpose_f32(x + i * n, img, perm, y + i * n); });
  }};
}

}  // namespace

void register_layout(OpRegistry& r) {
  const std::vector<DType> f32{DType::F32};
  r.add({"Transpose", f32, compile_transpose});
  r.add({"Concat", f32, compile_concat});
  r.add({"Gather", f32, compile_gather});
  r.add({"Slice", f32, compile_slice});
  r.add({"DepthToSpace", f32, compile_depth_space});
  r.add({"SpaceToDepth", f32, compile_depth_space});
}

}  // namespace fgq::rt
