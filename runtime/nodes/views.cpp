// Flatten / Reshape / Squeeze / Unsqueeze / Identity / Cast to float of a float tensor: nothing
// to do when the executor gave the output the input's storage, a copy otherwise. Integer tensors
// are NHWC, so a reshape only keeps its meaning when the spatial size is 1 ([N,C,1,1] <-> [N,C])
// or the shape does not change.
#include <cstring>

#include "runtime/op_registry.h"

namespace fgq::rt {
namespace {

Compiled compile_view(const NodeView& nv) {
  const int xv = nv.in(0);
  if (nv.node().op == "Cast" && nv.attrs().i("to", 0) != 1 /*FLOAT*/)
    nv.error("casting an activation to data type " + std::to_string(nv.attrs().i("to", 0)) + " is not supported");
  const uint8_t* x = nv.act_in(xv, "input");
  uint8_t* y = nv.act_out();
  if (nv.per_image(xv) != nv.per_image(nv.out()))
    nv.error("element count changes from " + shape_str(nv.shape1(xv)) + " to " +
             shape_str(nv.shape1(nv.out())));
  if (nv.dtype(xv) != DType::F32) {
    const Shape &xs = nv.shape1(xv), &ys = nv.shape1(nv.out());
    auto flat = [](const Shape& s) { return s.size() == 2 || (s.size() == 4 && s[2] == 1 && s[3] == 1); };
    if (xs != ys && !(flat(xs) && flat(ys)))
      nv.error(std::string("cannot reshape a ") + dtype_name(nv.dtype(xv)) + " tensor (stored NHWC) from " +
               shape_str(xs) + " to " + shape_str(ys));
  }
  const int64_t bytes = nv.image_bytes(xv);
  if (bytes != nv.image_bytes(nv.out())) nv.error("input and output storage sizes differ");
  if (x == y) return {[](int, void*) {}};
  return {[=](int batch, void*) { std::memcpy(y, x, size_t(batch * bytes)); }};
}

}  // namespace

void register_views(OpRegistry& r) {
  const std::vector<DType> any{DType::F32, DType::U8, DType::S8, DType::U4};
  auto add_view = [&r](const char* op, std::vector<DType> types) {
    OpKernelDef def{op, std::move(types), compile_view, /*view=*/true};
    def.team_parallel = true;  // no parallel loop
    r.add(def);
  };
  for (const char* op : {"Flatten", "Reshape", "Squeeze", "Unsqueeze", "Identity"}) add_view(op, any);
  add_view("Cast", {DType::F32});
}

}  // namespace fgq::rt
