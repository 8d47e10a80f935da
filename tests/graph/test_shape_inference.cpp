// Shape inference: window arithmetic (odd sizes, strides, pads, ceil_mode, auto_pad), the
// matrix and reshape ops, broadcasting, and errors that name the node.
#include <catch2/catch.hpp>

#include "graph/error.h"
#include "graph/shape_inference.h"
#include "graph_test_util.h"

using namespace fgq;
using Catch::Matchers::Contains;
using fgq::test::OnnxBuilder;

namespace {

Shape shape_of(const Graph& g, const std::string& v) { return fgq::test::value_named(g, v).shape; }

// One op on input x of `in`, inferred at `batch`; returns y's shape.
template <class SetAttrs>
Shape infer_one(const std::string& op, const Shape& in, SetAttrs set, int64_t batch = 1,
                const std::vector<std::pair<std::string, Shape>>& weights = {}) {
  OnnxBuilder b;
  b.input("x", in);
  std::vector<std::string> inputs{"x"};
  for (const auto& [name, s] : weights) {
    b.init_f32(name, s, std::vector<float>(static_cast<size_t>(numel(s)), 0.5f));
    inputs.push_back(name);
  }
  set(b.node(op, inputs, {"y"}, "n"));
  b.output("y");
  Graph g = fgq::test::import_model(b);
  infer_shapes(g, batch);
  return shape_of(g, "y");
}

auto no_attrs = [](OnnxBuilder::NodeRef) {};

}  // namespace

TEST_CASE("shape_inference: conv output sizes") {
  const std::vector<std::pair<std::string, Shape>> w7 = {{"w", {64, 3, 7, 7}}};
  CHECK(infer_one("Conv", {-1, 3, 224, 224}, [](auto n) { n.ints("strides", {2, 2}).ints("pads", {3, 3, 3, 3}); }, 4, w7) ==
        Shape{4, 64, 112, 112});
  CHECK(infer_one("Conv", {1, 3, 227, 227}, [](auto n) { n.ints("strides", {4, 4}); }, 1,
                  {{"w", {96, 3, 11, 11}}}) == Shape{1, 96, 55, 55});
  // Odd size, asymmetric pads, stride 2, dilation 2.
  CHECK(infer_one("Conv", {1, 2, 9, 10}, [](auto n) {
          n.ints("strides", {2, 2}).ints("pads", {0, 1, 2, 0}).ints("dilations", {2, 2});
        }, 1, {{"w", {5, 2, 3, 3}}}) == Shape{1, 5, 4, 4});
  // auto_pad SAME_UPPER keeps ceil(in / stride).
  CHECK(infer_one("Conv", {1, 2, 7, 8}, [](auto n) { n.s("auto_pad", "SAME_UPPER").ints("strides", {2, 2}); }, 1,
                  {{"w", {3, 2, 3, 3}}}) == Shape{1, 3, 4, 4});
  CHECK(infer_one("Conv", {1, 2, 7, 8}, [](auto n) { n.s("auto_pad", "VALID"); }, 1, {{"w", {3, 2, 3, 3}}}) ==
        Shape{1, 3, 5, 6});
  // Grouped conv: 4 input channels in 2 groups of 2.
  CHECK(infer_one("Conv", {1, 4, 5, 5}, [](auto n) { n.i("group", 2); }, 1, {{"w", {6, 2, 1, 1}}}) ==
        Shape{1, 6, 5, 5});
}

TEST_CASE("shape_inference: pooling with ceil_mode and pads") {
  auto pool = [](const char* op, Shape in, std::vector<int64_t> k, std::vector<int64_t> s,
                 std::vector<int64_t> p, int ceil) {
    return infer_one(op, in, [&](auto n) {
      n.ints("kernel_shape", k).ints("strides", s).ints("pads", p).i("ceil_mode", ceil);
    });
  };
  CHECK(pool("MaxPool", {1, 64, 112, 112}, {3, 3}, {2, 2}, {1, 1, 1, 1}, 0) == Shape{1, 64, 56, 56});
  CHECK(pool("MaxPool", {1, 96, 55, 55}, {3, 3}, {2, 2}, {0, 0, 0, 0}, 0) == Shape{1, 96, 27, 27});
  // floor(3/2)+1 = 2 vs ceil(3/2)+1 = 3
  CHECK(pool("MaxPool", {1, 1, 6, 6}, {3, 3}, {2, 2}, {0, 0, 0, 0}, 0) == Shape{1, 1, 2, 2});
  CHECK(pool("MaxPool", {1, 1, 6, 6}, {3, 3}, {2, 2}, {0, 0, 0, 0}, 1) == Shape{1, 1, 3, 3});
  // ceil_mode's extra window would start in the end padding: dropped (PyTorch rule).
  CHECK(pool("AveragePool", {1, 1, 5, 5}, {2, 2}, {2, 2}, {1, 1, 1, 1}, 1) == Shape{1, 1, 3, 3});
  CHECK(infer_one("GlobalAveragePool", {-1, 2048, 7, 7}, no_attrs, 3) == Shape{3, 2048, 1, 1});
}

TEST_CASE("shape_inference: Flatten, Reshape, Gemm, MatMul, Softmax") {
  CHECK(infer_one("Flatten", {1, 256, 6, 6}, no_attrs, 2) == Shape{2, 9216});
  CHECK(infer_one("Flatten", {1, 2, 3, 4}, [](auto n) { n.i("axis", -1); }, 5) == Shape{30, 4});
  CHECK(infer_one("Flatten", {1, 2, 3}, [](auto n) { n.i("axis", 0); }, 1) == Shape{1, 6});

  OnnxBuilder b;
  b.input("x", {-1, 2048, 1, 1});
  b.init_i64("shape", {2}, {0, -1});
  b.init_f32("w", {1000, 2048}, std::vector<float>(2048000, 0.f));
  b.init_f32("bias", {1000}, std::vector<float>(1000, 0.f));
  b.init_f32("m", {1000, 10}, std::vector<float>(10000, 0.f));
  b.node("Reshape", {"x", "shape"}, {"r"});
  b.node("Gemm", {"r", "w", "bias"}, {"fc"}).i("transB", 1);
  b.node("MatMul", {"fc", "m"}, {"mm"});
  b.node("Softmax", {"mm"}, {"y"});
  b.output("y");
  Graph g = fgq::test::import_model(b);
  infer_shapes(g, 8);
  CHECK(shape_of(g, "x") == Shape{8, 2048, 1, 1});
  CHECK(shape_of(g, "r") == Shape{8, 2048});
  CHECK(shape_of(g, "fc") == Shape{8, 1000});
  CHECK(shape_of(g, "y") == Shape{8, 10});
}

TEST_CASE("shape_inference: Add broadcasting, Pad, Concat") {
  OnnxBuilder b;
  b.input("x", {-1, 4, 5, 5});
  b.init_f32("bias", {4, 1, 1}, {1, 2, 3, 4});
  b.init_i64("pads", {8}, {0, 0, 1, 2, 0, 0, 3, 4});
  b.node("Add", {"x", "bias"}, {"a"});
  b.node("Pad", {"a", "pads"}, {"p"});
  b.node("Concat", {"a", "x"}, {"c"}).i("axis", 1);
  b.node("Add", {"p", "p"}, {"y"});
  b.output("y");
  b.output("c");
  Graph g = fgq::test::import_model(b);
  infer_shapes(g, 2);
  CHECK(shape_of(g, "a") == Shape{2, 4, 5, 5});
  CHECK(shape_of(g, "p") == Shape{2, 4, 9, 11});
  CHECK(shape_of(g, "c") == Shape{2, 8, 5, 5});

  // Opset 2..10 Pad: pads as an attribute.
  CHECK(infer_one("Pad", {1, 1, 2, 2}, [](auto n) { n.ints("pads", {0, 0, 1, 1, 0, 0, 1, 1}); }) ==
        Shape{1, 1, 4, 4});
}

TEST_CASE("shape_inference: errors name the node") {
  auto err = [](auto&& f) -> std::string {
    try {
      f();
    } catch (const fgq::Error& e) {
      return e.what();
    }
    return "(no error)";
  };
  CHECK(err([] { infer_one("Conv", {1, 4, 8, 8}, no_attrs, 1, {{"w", {2, 3, 3, 3}}}); }) ==
        "test.onnx: node 'n' (Conv): input has 4 channels, weight expects 3");
  CHECK_THAT(err([] { infer_one("Conv", {1, 3, 2, 2}, no_attrs, 1, {{"w", {2, 3, 3, 3}}}); }),
             Contains("node 'n' (Conv): kernel [3,3] does not fit input [1,3,2,2]"));
  CHECK_THAT(err([] { infer_one("Conv", {1, 3, 8, 8, 8}, no_attrs, 1, {{"w", {2, 3, 3, 3, 3}}}); }),
             Contains("node 'n' (Conv): input must have rank 4"));
  CHECK_THAT(err([] { infer_one("Add", {1, 3, 8}, no_attrs, 1, {{"b", {2}}}); }),
             Contains("node 'n' (Add): shapes [1,3,8] and [2] cannot broadcast"));
  CHECK_THAT(err([] { infer_one("Gemm", {1, 10}, no_attrs, 1, {{"w", {9, 5}}}); }),
             Contains("node 'n' (Gemm): A [1,10] and B [9,5] do not match"));
  CHECK_THAT(err([] { infer_one("Softmax", {1, 10}, [](auto n) { n.i("axis", 2); }); }),
             Contains("node 'n' (Softmax): axis 2 is out of range for rank 2"));
  CHECK_THAT(err([] { infer_one("MaxPool", {1, 1, 4, 4}, [](auto n) { n.ints("kernel_shape", {5, 5}); }); }),
             Contains("node 'n' (MaxPool): kernel [5,5] does not fit input [1,1,4,4]"));
  CHECK_THAT(err([] { infer_one("Relu", {1, 1 << 20, 1 << 10}, no_attrs, 1 << 12); }),
             Contains("graph input 'x' is too large at batch 4096"));
}
