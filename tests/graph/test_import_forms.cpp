// How the importer and prepare_graph turn opset 1-12 forms and composite ops into the forms the
// runtime implements: legacy attributes, Upsample / Resize-10, Split, variadic Max/Min/Sum/Mean,
// 1-D windows, the opset < 13 Softmax; the importer's own markers refused in files; prepared
// graphs export as standard ONNX and import again.
#include <catch2/catch.hpp>

#include "graph/error.h"
#include "graph/onnx_export.h"
#include "graph/prepare.h"
#include "graph/shape_inference.h"
#include "graph_test_util.h"

using namespace fgq;
using Catch::Matchers::Contains;
using fgq::test::count_op;
using fgq::test::import_model;
using fgq::test::OnnxBuilder;
using fgq::test::only_node;

namespace {

Graph prepared(const OnnxBuilder& b) { return prepare_graph(import_model(b), false); }

std::string error_of(const OnnxBuilder& b) {
  try {
    prepared(b);
  } catch (const fgq::Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("import forms: opset 1 attributes become the current forms") {
  OnnxBuilder b(1);
  b.input("x", {1, 3, 4, 5}).output("y");
  b.init_f32("bv", {3}, {1, 2, 3});
  b.node("Add", {"x", "bv"}, {"a"}, "add").i("broadcast", 1).i("axis", 1).ints("consumed_inputs", {0, 0});
  b.node("Pad", {"a"}, {"p"}, "pad").ints("paddings", {0, 0, 1, 1, 0, 0, 1, 1});
  b.node("Cast", {"p"}, {"c"}, "cast").s("to", "FLOAT");
  b.node("Reshape", {"c"}, {"r"}, "reshape").ints("shape", {0, -1});
  b.node("Concat", {"r", "r"}, {"y"}, "concat");
  const Graph imported = import_model(b);
  CHECK(fgq::test::node_named(imported, "add").attrs.i("broadcast_axis", -1) == 1);
  CHECK_FALSE(fgq::test::node_named(imported, "add").attrs.has("consumed_inputs"));
  CHECK(fgq::test::node_named(imported, "pad").attrs.ints("pads") == std::vector<int64_t>{0, 0, 1, 1, 0, 0, 1, 1});
  CHECK(fgq::test::node_named(imported, "cast").attrs.i("to", 0) == 1);
  CHECK(fgq::test::node_named(imported, "reshape").inputs.size() == 2);
  CHECK(fgq::test::node_named(imported, "concat").attrs.i("axis", -1) == 1);

  const Graph g = prepared(b);
  const Node& add = only_node(g, "Add");
  CHECK_FALSE(add.attrs.has("broadcast_axis"));
  CHECK(g.values[add.inputs[1]].constant->shape == Shape{3, 1, 1});  // lined up at axis 1
  CHECK(fgq::test::value_named(g, "y").shape == Shape{1, 252});  // [1, 3, 6, 7] flattened, twice
}

TEST_CASE("import forms: Softmax before opset 13 is the opset 13 op, rewritten where it must be") {
  for (const Shape& in : {Shape{1, 10}, Shape{1, 10, 1, 1}, Shape{1, 4, 5, 3}}) {
    INFO(shape_str(in));
    OnnxBuilder b(11);
    b.input("x", in).output("y");
    b.node("Softmax", {"x"}, {"y"}, "sm");  // axis 1 by default
    const Graph g = prepared(b);
    const Node& sm = only_node(g, "Softmax");
    CHECK_FALSE(sm.attrs.has("coerce_2d"));
    CHECK(sm.attrs.i("axis", -1) == 1);
    if (in == Shape{1, 4, 5, 3}) {
      // Over 4 * 5 * 3 values: Reshape to [N, 60], softmax, Reshape back.
      CHECK(count_op(g, "Reshape") == 2);
      CHECK(g.values[sm.inputs[0]].shape == Shape{1, 60});
      CHECK(fgq::test::value_named(g, "y").shape == in);
    } else {
      CHECK(g.nodes.size() == 1);
    }
  }
}

TEST_CASE("import forms: Upsample, Resize-10, Split, variadic ops and 1-D windows") {
  OnnxBuilder up(9);
  up.input("x", {1, 2, 3, 3}).output("y");
  up.init_f32("s", {4}, {1, 1, 2, 2});
  up.node("Upsample", {"x", "s"}, {"y"}).s("mode", "linear");
  const Graph ug = import_model(up);
  const Node& rs = only_node(ug, "Resize");
  CHECK(rs.attrs.s("coordinate_transformation_mode", "") == "asymmetric");
  CHECK(rs.attrs.s("mode", "") == "linear");
  CHECK(fgq::test::value_named(prepared(up), "y").shape == Shape{1, 2, 6, 6});

  OnnxBuilder split(13);
  split.input("x", {1, 7, 2}).output("a").output("b");
  split.node("Split", {"x"}, {"a", "b"}).i("axis", 1);  // uneven: 4 + 3
  const Graph sg = prepared(split);
  CHECK(count_op(sg, "Slice") == 2);
  CHECK(fgq::test::value_named(sg, "a").shape == Shape{1, 4, 2});
  CHECK(fgq::test::value_named(sg, "b").shape == Shape{1, 3, 2});

  OnnxBuilder sum(13);
  sum.input("x", {1, 4}).output("y");
  sum.node("Sum", {"x", "x", "x", "x"}, {"s"});
  sum.node("Mean", {"s", "x"}, {"y"});
  const Graph vg = prepared(sum);
  CHECK(count_op(vg, "Add") == 4);
  CHECK(count_op(vg, "Div") == 1);

  OnnxBuilder conv1d(13);
  conv1d.input("x", {1, 2, 9}).output("y");
  conv1d.init_f32("w", {3, 2, 3}, std::vector<float>(18, 0.5f));
  conv1d.node("Conv", {"x", "w"}, {"c"}).ints("strides", {2}).ints("pads", {1, 1});
  conv1d.node("MaxPool", {"c"}, {"y"}).ints("kernel_shape", {2});
  const Graph cg = prepared(conv1d);
  const Node& conv = only_node(cg, "Conv");
  CHECK(cg.values[conv.inputs[1]].constant->shape == Shape{3, 2, 1, 3});
  CHECK(conv.attrs.ints("pads") == std::vector<int64_t>{0, 1, 0, 1});
  CHECK(only_node(cg, "MaxPool").attrs.ints("kernel_shape") == std::vector<int64_t>{1, 2});
  CHECK(fgq::test::value_named(cg, "y").shape == Shape{1, 3, 4});
}

TEST_CASE("import forms: the importer's markers in a file, and bad sizes, are errors") {
  OnnxBuilder marked(13);
  marked.input("x", {1, 4}).output("y");
  marked.init_i64("st", {1}, {0}).init_i64("en", {1}, {2});
  marked.node("Slice", {"x", "st", "en"}, {"y"}, "s").ints("split_part", {5, 2});
  CHECK_THAT(error_of(marked), Contains("unexpected attribute 'split_part'"));

  OnnxBuilder sizes(13);
  sizes.input("x", {1, 6}).output("a").output("b");
  sizes.init_i64("sp", {2}, {2, 3});
  sizes.node("Split", {"x", "sp"}, {"a", "b"}).i("axis", 1);
  CHECK_THAT(error_of(sizes), Contains("split sizes add up to 5, the axis has 6"));

  OnnxBuilder bn(7);
  bn.input("x", {1, 2, 3}).output("y");
  for (const char* p : {"s", "b", "m", "v"}) bn.init_f32(p, {2, 3}, std::vector<float>(6, 1.f));
  bn.node("BatchNormalization", {"x", "s", "b", "m", "v"}, {"y"}, "bn").i("spatial", 0);
  CHECK_THAT(error_of(bn), Contains("spatial=0 is not supported"));

  OnnxBuilder wide(6);
  wide.input("x", {1, 3, 4}).output("y");
  wide.init_f32("b", {3, 4}, std::vector<float>(12, 1.f));
  wide.node("Add", {"x", "b"}, {"y"}).i("broadcast", 1).i("axis", 2);
  CHECK_THAT(error_of(wide), Contains("does not fit B [3,4] into A [1,3,4]"));
}

TEST_CASE("import forms: prepared graphs with the new ops export as standard ONNX and import again") {
  OnnxBuilder b(11);
  b.input("x", {1, 4, 6, 6}).output("y");
  b.init_f32("sc", {4}, {1, 1, 2, 2});
  b.node("Softmax", {"x"}, {"s"});  // rewritten: Reshape, Softmax, Reshape
  b.node("Split", {"s"}, {"a", "b"}).i("axis", 1).ints("split", {1, 3});
  b.node("Resize", {"b", "", "sc"}, {"r"}).s("mode", "nearest");
  b.node("Sigmoid", {"r"}, {"g"});
  b.node("ReduceMean", {"g"}, {"y"}).ints("axes", {2, 3});
  const Graph g = prepared(b);
  const std::string bytes = export_onnx_bytes(g);
  Graph again = prepare_graph(import_onnx_bytes(bytes.data(), bytes.size(), "again.onnx"), false);
  infer_shapes(again, 3);
  CHECK(fgq::test::value_named(again, "y").shape == Shape{3, 3, 1, 1});
  CHECK(again.nodes.size() == g.nodes.size());
}
