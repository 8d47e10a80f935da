// The importer on well-formed models: values, constants, attributes, metadata, input shapes.
#include <catch2/catch.hpp>

#include "graph/onnx_proto.h"

#include "graph/onnx_import.h"
#include "graph_test_util.h"
#include "support/test_util.h"

using namespace fgq;
using fgq::test::OnnxBuilder;

namespace {

// x[N,3,8,8] -> Conv(4, 3x3, pad 1, stride 2) -> Relu -> MaxPool -> GlobalAveragePool -> Flatten
// -> Gemm(transB) -> Softmax
void small_cnn(OnnxBuilder& b) {
  b.input("x", {-1, 3, 8, 8});
  b.init_f32("w", {4, 3, 3, 3}, fgq::test::random_floats(4 * 27, 1));
  b.init_f32("b", {4}, {0.1f, 0.2f, 0.3f, 0.4f});
  b.init_f32("fc_w", {5, 4}, fgq::test::random_floats(20, 2));
  b.init_f32("fc_b", {5}, {0, 0, 0, 0, 0});
  b.node("Conv", {"x", "w", "b"}, {"c"}, "conv1")
      .ints("kernel_shape", {3, 3})
      .ints("pads", {1, 1, 1, 1})
      .ints("strides", {2, 2});
  b.node("Relu", {"c"}, {"r"}, "relu1");
  b.node("MaxPool", {"r"}, {"p"}, "pool1").ints("kernel_shape", {2, 2}).ints("strides", {2, 2});
  b.node("GlobalAveragePool", {"p"}, {"g"}, "gap");
  b.node("Flatten", {"g"}, {"f"}, "flat").i("axis", 1);
  b.node("Gemm", {"f", "fc_w", "fc_b"}, {"logits"}, "fc").i("transB", 1).f("alpha", 1.f);
  b.node("Softmax", {"logits"}, {"prob"}, "softmax").i("axis", 1);
  b.output("prob");
}

}  // namespace

TEST_CASE("onnx_import: small CNN keeps ops, order, initializers and attributes") {
  OnnxBuilder b;
  small_cnn(b);
  Graph g = fgq::test::import_model(b);
  REQUIRE(g.source == "test.onnx");
  REQUIRE(g.nodes.size() == 7);
  const std::vector<std::string> ops = {"Conv", "Relu", "MaxPool", "GlobalAveragePool",
                                        "Flatten", "Gemm", "Softmax"};
  for (size_t k = 0; k < ops.size(); ++k) CHECK(g.nodes[k].op == ops[k]);

  REQUIRE(g.inputs.size() == 1);
  const Value& x = g.values[g.inputs[0]];
  CHECK(x.name == "x");
  CHECK(x.shape == Shape{-1, 3, 8, 8});  // symbolic batch
  CHECK_FALSE(x.is_const());

  const Value& w = fgq::test::value_named(g, "w");
  REQUIRE(w.is_const());
  CHECK(w.constant->dtype == DType::F32);
  CHECK(w.constant->shape == Shape{4, 3, 3, 3});
  CHECK(w.constant->f == fgq::test::random_floats(4 * 27, 1));
  CHECK(fgq::test::value_named(g, "b").constant->f == std::vector<float>{0.1f, 0.2f, 0.3f, 0.4f});

  const Node& conv = fgq::test::node_named(g, "conv1");
  CHECK(conv.attrs.ints("pads") == std::vector<int64_t>{1, 1, 1, 1});
  CHECK(conv.attrs.ints("strides") == std::vector<int64_t>{2, 2});
  CHECK(conv.inputs.size() == 3);
  const Node& fc = fgq::test::node_named(g, "fc");
  CHECK(fc.attrs.i("transB", 0) == 1);
  CHECK(fc.attrs.f("alpha", 0.f) == 1.f);
  REQUIRE(g.outputs.size() == 1);
  CHECK(g.values[g.outputs[0]].name == "prob");
}

TEST_CASE("onnx_import: graph inputs that are initializers are constants") {
  OnnxBuilder b;
  small_cnn(b);
  b.input("w", {4, 3, 3, 3});  // older exporters list every initializer as an input too
  Graph g = fgq::test::import_model(b);
  REQUIRE(g.inputs.size() == 1);
  CHECK(g.values[g.inputs[0]].name == "x");
  CHECK(fgq::test::value_named(g, "w").is_const());
}

TEST_CASE("onnx_import: float_data and int64 raw_data payloads") {
  OnnxBuilder b;
  b.input("x", {1, 4});
  auto* t = b.proto().mutable_graph()->add_initializer();
  t->set_name("s");
  t->set_data_type(onnx::TensorProto::FLOAT);
  t->add_dims(4);
  for (float v : {1.f, 2.f, 3.f, 4.f}) t->add_float_data(v);
  auto* shape = b.proto().mutable_graph()->add_initializer();
  shape->set_name("target");
  shape->set_data_type(onnx::TensorProto::INT64);
  shape->add_dims(2);
  const int64_t dims[2] = {2, 2};
  shape->set_raw_data(std::string(reinterpret_cast<const char*>(dims), sizeof dims));
  b.node("Add", {"x", "s"}, {"y"});
  b.node("Reshape", {"y", "target"}, {"z"});
  b.output("z");
  Graph g = fgq::test::import_model(b);
  CHECK(fgq::test::value_named(g, "s").constant->f == std::vector<float>{1, 2, 3, 4});
  const Tensor& tt = *fgq::test::value_named(g, "target").constant;
  CHECK(tt.dtype == DType::I64);
  CHECK(tt.i == std::vector<int64_t>{2, 2});
}

TEST_CASE("onnx_import: Constant nodes become constant values") {
  OnnxBuilder b;
  b.input("x", {1, 2});
  b.node("Constant", {}, {"c1"}).floats("value_floats", {0.5f, 1.5f});
  b.node("Constant", {}, {"c2"}).i("value_int", 7);
  auto* n = b.proto().mutable_graph()->add_node();  // tensor-valued Constant
  n->set_op_type("Constant");
  n->add_output("c3");
  auto* a = n->add_attribute();
  a->set_name("value");
  a->set_type(onnx::AttributeProto::TENSOR);
  a->mutable_t()->set_data_type(onnx::TensorProto::INT64);
  a->mutable_t()->add_dims(2);
  a->mutable_t()->add_int64_data(1);
  a->mutable_t()->add_int64_data(-1);
  b.node("Add", {"x", "c1"}, {"y"});
  b.node("Reshape", {"y", "c3"}, {"z"});
  b.node("Unsqueeze", {"c2", "c3"}, {"unused"});
  b.output("z");
  Graph g = fgq::test::import_model(b);
  CHECK(g.nodes.size() == 2);  // Constants are values; the unused Unsqueeze is dead
  CHECK(fgq::test::value_named(g, "c1").constant->f == std::vector<float>{0.5f, 1.5f});
  CHECK(fgq::test::value_named(g, "c2").constant->i == std::vector<int64_t>{7});
  CHECK(fgq::test::value_named(g, "c2").constant->shape.empty());
  CHECK(fgq::test::value_named(g, "c3").constant->i == std::vector<int64_t>{1, -1});
}

TEST_CASE("onnx_import: metadata_props and fixed batch") {
  OnnxBuilder b;
  b.input("x", {2, 3});
  b.node("Relu", {"x"}, {"y"});
  b.output("y");
  b.metadata("fgq.mean", "103.939,116.779,123.68");
  b.metadata("labels", "a,b");
  Graph g = fgq::test::import_model(b);
  CHECK(g.metadata.at("fgq.mean") == "103.939,116.779,123.68");
  CHECK(g.metadata.at("labels") == "a,b");
  CHECK(g.values[g.inputs[0]].shape == Shape{2, 3});
}

TEST_CASE("onnx_import: nodes out of file order are sorted, dead nodes dropped") {
  OnnxBuilder b;
  b.input("x", {1, 2});
  b.node("Relu", {"y"}, {"z"}, "second");
  b.node("Relu", {"x"}, {"y"}, "first");
  b.node("Relu", {"x"}, {"dead"}, "unused");
  b.output("z");
  Graph g = fgq::test::import_model(b);
  REQUIRE(g.nodes.size() == 2);
  CHECK(g.nodes[0].name == "first");
  CHECK(g.nodes[1].name == "second");
}

TEST_CASE("onnx_import: optional inputs, unnamed nodes, Dropout mask output") {
  OnnxBuilder b;
  b.input("x", {1, 2, 4, 4});
  b.init_f32("w", {2, 2, 1, 1}, {1, 0, 0, 1});
  b.node("Conv", {"x", "w", ""}, {"c"}, "conv");  // empty name = absent bias
  auto* d = b.proto().mutable_graph()->add_node();
  d->set_op_type("Dropout");
  d->add_input("c");
  d->add_output("y");
  d->add_output("mask");
  b.output("y");
  Graph g = fgq::test::import_model(b);
  CHECK(fgq::test::node_named(g, "conv").inputs.size() == 2);  // trailing absent input dropped
  const Node& drop = fgq::test::only_node(g, "Dropout");
  CHECK(drop.name == "Dropout:y");
  CHECK(drop.outputs.size() == 2);
}

TEST_CASE("onnx_import: opset < 13 Softmax gets its old default axis") {
  OnnxBuilder b(11);
  b.input("x", {1, 10});
  b.node("Softmax", {"x"}, {"y"}, "sm");
  b.output("y");
  Graph g = fgq::test::import_model(b);
  CHECK(fgq::test::node_named(g, "sm").attrs.i("axis", -1) == 1);
  OnnxBuilder b13(13);
  b13.input("x", {1, 10});
  b13.node("Softmax", {"x"}, {"y"}, "sm");
  b13.output("y");
  CHECK_FALSE(fgq::test::node_named(fgq::test::import_model(b13), "sm").attrs.has("axis"));
}

TEST_CASE("onnx_import: file round trip and supported op list") {
  const std::string path = fgq::test::temp_path(".onnx");
  OnnxBuilder b;
  small_cnn(b);
  b.save(path);
  Graph g = import_onnx_file(path);
  CHECK(g.source == path);
  CHECK(g.nodes.size() == 7);
  std::remove(path.c_str());
  for (const char* op : {"Conv", "BatchNormalization", "Relu", "MaxPool", "AveragePool",
                         "GlobalAveragePool", "Add", "Pad", "Flatten", "Gemm", "MatMul", "Reshape",
                         "Softmax", "Identity", "Dropout", "Constant", "Shape", "Gather",
                         "Unsqueeze", "Concat"})
    CHECK(is_supported_op(op));
  for (const char* op : {"LSTM", "NonMaxSuppression", "Loop", "ChannelAffine", ""}) CHECK_FALSE(is_supported_op(op));
}
