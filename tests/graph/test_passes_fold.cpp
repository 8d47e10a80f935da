// drop_identities, fold_constants and fold_batchnorm.
#include <catch2/catch.hpp>

#include <cmath>

#include "graph/error.h"
#include "graph/passes.h"
#include "graph/shape_inference.h"
#include "graph_test_util.h"
#include "support/test_util.h"

using namespace fgq;
using Catch::Matchers::Contains;
using fgq::test::OnnxBuilder;

TEST_CASE("passes: drop_identities rewires readers and keeps output names") {
  OnnxBuilder b;
  b.input("x", {1, 4});
  b.node("Identity", {"x"}, {"i1"}, "id1");
  b.node("Relu", {"i1"}, {"r"}, "relu");
  b.node("Dropout", {"r"}, {"d", "mask"}, "drop");
  b.node("Identity", {"d"}, {"out"}, "id2");
  b.output("out");
  Graph g = fgq::test::import_model(b);
  drop_identities(g);
  REQUIRE(g.nodes.size() == 1);
  const Node& relu = g.nodes[0];
  CHECK(relu.op == "Relu");
  CHECK(relu.inputs[0] == g.find_value("x"));
  // The graph output keeps its name: the Relu writes "out" now.
  CHECK(g.values[relu.outputs[0]].name == "out");
  CHECK(g.values[g.outputs[0]].name == "out");
}

TEST_CASE("passes: drop_identities rejects a used dropout mask") {
  OnnxBuilder b;
  b.input("x", {1, 4});
  b.node("Dropout", {"x"}, {"d", "mask"}, "drop");
  b.output("d");
  b.output("mask");
  Graph g = fgq::test::import_model(b);
  REQUIRE_THROWS_WITH(drop_identities(g),
                      "test.onnx: node 'drop' (Dropout): the dropout mask output is not supported");
}

TEST_CASE("passes: fold_constants folds torchvision-style Flatten into Reshape [0,-1]") {
  // y = Reshape(x, Concat(Unsqueeze(Gather(Shape(x), 0)), [-1]))
  OnnxBuilder b;
  b.input("x", {-1, 8, 2, 2});
  b.init_i64("zero", {}, {0});
  b.init_i64("axes0", {1}, {0});
  b.init_i64("minus1", {1}, {-1});
  b.node("Shape", {"x"}, {"s"});
  b.node("Gather", {"s", "zero"}, {"n"}).i("axis", 0);
  b.node("Unsqueeze", {"n", "axes0"}, {"nu"});
  b.node("Concat", {"nu", "minus1"}, {"target"}).i("axis", 0);
  b.node("Reshape", {"x", "target"}, {"y"}, "reshape");
  b.output("y");
  Graph g = fgq::test::import_model(b);
  fold_constants(g);
  REQUIRE(g.nodes.size() == 1);
  const Node& r = g.nodes[0];
  CHECK(r.op == "Reshape");
  const Tensor& t = g.const_of(r.inputs[1]);
  CHECK(t.i == std::vector<int64_t>{0, -1});  // the batch is kept, not baked in as 1
  infer_shapes(g, 5);
  CHECK(fgq::test::value_named(g, "y").shape == Shape{5, 32});
}

TEST_CASE("passes: fold_constants evaluates arithmetic, Cast, Transpose, Squeeze") {
  OnnxBuilder b;
  b.input("x", {1, 6});
  b.init_i64("a", {2}, {2, 3});
  b.init_i64("k", {}, {1});
  b.init_f32("w", {2, 3}, {1, 2, 3, 4, 5, 6});
  b.init_i64("ax", {1}, {0});
  b.node("Mul", {"a", "k"}, {"a1"});
  b.node("Add", {"a1", "k"}, {"a2"});       // [3, 4]
  b.node("Sub", {"a2", "k"}, {"a3"});       // [2, 3]
  b.node("Div", {"a3", "a3"}, {"ones"});    // [1, 1]
  b.node("Cast", {"ones"}, {"onesf"}).i("to", 1);
  b.node("Transpose", {"w"}, {"wt"}).ints("perm", {1, 0});  // [3,2]: 1 4 2 5 3 6
  b.node("Unsqueeze", {"wt", "ax"}, {"wu"});                // [1,3,2]
  b.node("Squeeze", {"wu", "ax"}, {"ws"});                  // [3,2]
  b.node("Reshape", {"x", "a3"}, {"xr"});
  b.node("MatMul", {"xr", "ws"}, {"y"}, "mm");  // [2,3] x [3,2]
  b.node("Mul", {"y", "onesf"}, {"out"}, "scale");
  b.output("out");
  Graph g = fgq::test::import_model(b);
  fold_constants(g);
  REQUIRE(g.nodes.size() == 3);
  const Tensor& ws = g.const_of(fgq::test::node_named(g, "mm").inputs[1]);
  CHECK(ws.shape == Shape{3, 2});
  CHECK(ws.f == std::vector<float>{1, 4, 2, 5, 3, 6});
  const Tensor& ones = g.const_of(fgq::test::node_named(g, "scale").inputs[1]);
  CHECK(ones.dtype == DType::F32);
  CHECK(ones.f == std::vector<float>{1, 1});
  CHECK(fgq::test::value_named(g, "out").shape == Shape{2, 2});
}

TEST_CASE("passes: fold_constants reports invalid constant data") {
  OnnxBuilder b;
  b.input("x", {1, 6});
  b.init_i64("s", {3}, {1, 2, 3});
  b.init_i64("idx", {1}, {5});
  b.node("Gather", {"s", "idx"}, {"g"}, "gather");
  b.node("Reshape", {"x", "g"}, {"y"});
  b.output("y");
  Graph g = fgq::test::import_model(b);
  REQUIRE_THROWS_WITH(fold_constants(g), "test.onnx: node 'gather' (Gather): index 5 is out of range");
}

namespace {

// x[1,2,3,3] -> Conv(w[2,2,1,1], b) -> BN -> y, with known numbers.
struct BnModel {
  std::vector<float> w{1, 2, 3, 4}, bias{0.5f, -1.f};
  std::vector<float> gamma{2.f, 0.5f}, beta{0.1f, -0.2f}, mean{1.f, -2.f}, var{3.f, 0.25f};
  float eps = 1e-3f;
  void build(OnnxBuilder& b, bool with_bias) const {
    b.input("x", {1, 2, 3, 3});
    b.init_f32("w", {2, 2, 1, 1}, w);
    if (with_bias) b.init_f32("b", {2}, bias);
    b.init_f32("gamma", {2}, gamma);
    b.init_f32("beta", {2}, beta);
    b.init_f32("mean", {2}, mean);
    b.init_f32("var", {2}, var);
    if (with_bias)
      b.node("Conv", {"x", "w", "b"}, {"c"}, "conv");
    else
      b.node("Conv", {"x", "w"}, {"c"}, "conv");
    b.node("BatchNormalization", {"c", "gamma", "beta", "mean", "var"}, {"y"}, "bn").f("epsilon", eps);
    b.output("y");
  }
};

}  // namespace

TEST_CASE("passes: fold_batchnorm folds into the conv with exact numerics") {
  const BnModel m;
  for (bool with_bias : {true, false}) {
    OnnxBuilder b;
    m.build(b, with_bias);
    Graph g = fgq::test::import_model(b);
    fold_batchnorm(g);
    REQUIRE(g.nodes.size() == 1);
    const Node& conv = g.nodes[0];
    CHECK(conv.op == "Conv");
    CHECK(g.values[conv.outputs[0]].name == "y");
    // By hand: s = gamma / sqrt(var + eps); W' = W * s[k]; b' = (b - mean) * s + beta.
    const float s0 = 2.f / std::sqrt(3.001f), s1 = 0.5f / std::sqrt(0.251f);
    const Tensor& w = g.const_of(conv.inputs[1]);
    CHECK(w.f[0] == Approx(1 * s0));
    CHECK(w.f[1] == Approx(2 * s0));
    CHECK(w.f[2] == Approx(3 * s1));
    CHECK(w.f[3] == Approx(4 * s1));
    const Tensor& bias = g.const_of(conv.inputs[2]);
    const float b0 = with_bias ? 0.5f : 0.f, b1 = with_bias ? -1.f : 0.f;
    CHECK(bias.f[0] == Approx((b0 - 1.f) * s0 + 0.1f));
    CHECK(bias.f[1] == Approx((b1 + 2.f) * s1 - 0.2f));
    CHECK(conv.attrs.floats("bn_gamma") == m.gamma);
    CHECK(conv.attrs.floats("bn_beta") == m.beta);
    CHECK(conv.attrs.floats("bn_mean") == m.mean);
    CHECK(conv.attrs.floats("bn_var") == m.var);
    CHECK(conv.attrs.f("bn_eps", 0) == m.eps);
  }
}

TEST_CASE("passes: fold_batchnorm leaves shared weights intact") {
  OnnxBuilder b;
  BnModel().build(b, true);
  b.node("Conv", {"x", "w"}, {"c2"}, "other_conv");  // reads the same weight
  b.output("c2");
  Graph g = fgq::test::import_model(b);
  fold_batchnorm(g);
  CHECK(g.const_of(fgq::test::node_named(g, "other_conv").inputs[1]).f == std::vector<float>{1, 2, 3, 4});
  CHECK(g.const_of(fgq::test::node_named(g, "conv").inputs[1]).f != std::vector<float>{1, 2, 3, 4});
}

TEST_CASE("passes: fold_batchnorm makes ChannelAffine when the conv output has other readers") {
  OnnxBuilder b;
  BnModel().build(b, true);
  b.node("Relu", {"c"}, {"r"}, "second_reader");
  b.output("r");
  Graph g = fgq::test::import_model(b);
  fold_batchnorm(g);
  CHECK(fgq::test::count_op(g, "BatchNormalization") == 0);
  const Node& aff = fgq::test::only_node(g, "ChannelAffine");
  REQUIRE(aff.inputs.size() == 3);
  const float s0 = 2.f / std::sqrt(3.001f), s1 = 0.5f / std::sqrt(0.251f);
  const Tensor& scale = g.const_of(aff.inputs[1]);
  const Tensor& shift = g.const_of(aff.inputs[2]);
  CHECK(scale.f[0] == Approx(s0));
  CHECK(scale.f[1] == Approx(s1));
  CHECK(shift.f[0] == Approx(0.1f - 1.f * s0));
  CHECK(shift.f[1] == Approx(-0.2f + 2.f * s1));
  CHECK_FALSE(fgq::test::node_named(g, "conv").attrs.has("bn_gamma"));
  infer_shapes(g, 1);
  CHECK(fgq::test::value_named(g, "y").shape == Shape{1, 2, 3, 3});
}
