// Bad model files: each gives one fgq::Error line naming the file and the problem.
#include <catch2/catch.hpp>

#include <fstream>
#include <random>

#include "graph/error.h"
#include "graph/onnx_import.h"
#include "graph/onnx_proto.h"
#include "graph/prepare.h"
#include "graph/shape_inference.h"
#include "graph_test_util.h"
#include "support/sample_models.h"
#include "support/test_util.h"

using namespace fgq;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
using fgq::test::OnnxBuilder;

namespace {

// x[1,3,4,4] -> Conv(w[2,3,1,1]) -> Relu -> y
void valid_model(OnnxBuilder& b) {
  b.input("x", {1, 3, 4, 4});
  b.init_f32("w", {2, 3, 1, 1}, {1, 2, 3, 4, 5, 6});
  b.node("Conv", {"x", "w"}, {"c"}, "conv");
  b.node("Relu", {"c"}, {"y"}, "relu");
  b.output("y");
}

std::string import_error(const OnnxBuilder& b) {
  try {
    fgq::test::import_model(b, "bad.onnx");
  } catch (const fgq::Error& e) {
    return e.what();
  }
  return "(no error)";
}

// Import and preparation (shape inference runs there).
std::string prepare_error(const OnnxBuilder& b) {
  try {
    prepare_graph(fgq::test::import_model(b, "bad.onnx"));
  } catch (const fgq::Error& e) {
    return e.what();
  }
  return "(no error)";
}

std::string bytes_error(const std::string& bytes) {
  try {
    import_onnx_bytes(bytes.data(), bytes.size(), "bad.onnx");
  } catch (const fgq::Error& e) {
    return e.what();
  }
  return "(no error)";
}

onnx::TensorProto& initializer(OnnxBuilder& b, const std::string& name) {
  for (auto& t : *b.proto().mutable_graph()->mutable_initializer())
    if (t.name() == name) return t;
  throw std::runtime_error("no initializer " + name);
}

}  // namespace

TEST_CASE("import errors: missing file") {
  const std::string path = fgq::test::temp_path("_missing.onnx");
  REQUIRE_THROWS_WITH(import_onnx_file(path), path + ": cannot open (No such file or directory)");
}

TEST_CASE("import errors: empty file") {
  const std::string path = fgq::test::temp_path("_empty.onnx");
  std::ofstream(path).close();
  REQUIRE_THROWS_WITH(import_onnx_file(path), path + ": not a valid ONNX model (empty file)");
  std::remove(path.c_str());
}

TEST_CASE("import errors: truncated model") {
  OnnxBuilder b;
  valid_model(b);
  const std::string bytes = b.bytes();
  REQUIRE_NOTHROW(import_onnx_bytes(bytes.data(), bytes.size(), "ok.onnx"));
  CHECK(bytes_error(bytes.substr(0, bytes.size() / 2)) ==
        "bad.onnx: not a valid ONNX model (protobuf parse failed)");
}

TEST_CASE("import errors: random garbage never crashes and names the file") {
  std::mt19937 rng(42);
  for (int trial = 0; trial < 200; ++trial) {
    std::string bytes(1 + rng() % 300, '\0');
    for (char& c : bytes) c = static_cast<char>(rng());
    const std::string msg = bytes_error(bytes);
    INFO(msg);
    CHECK_THAT(msg, StartsWith("bad.onnx: "));
  }
  CHECK(bytes_error(std::string(64, '\xff')) == "bad.onnx: not a valid ONNX model (protobuf parse failed)");
}

TEST_CASE("import errors: unsupported op names op and node") {
  OnnxBuilder b;
  valid_model(b);
  b.node("LSTM", {"y"}, {"z"}, "lstm_1");
  CHECK(import_error(b) == "bad.onnx: unsupported op 'LSTM' (node 'lstm_1')");
}

TEST_CASE("import errors: op from a custom domain") {
  OnnxBuilder b;
  valid_model(b);
  auto* n = b.proto().mutable_graph()->mutable_node(1);
  n->set_domain("com.microsoft");
  CHECK(import_error(b) == "bad.onnx: unsupported op 'com.microsoft::Relu' (node 'relu')");
}

TEST_CASE("import errors: node reads an undefined value") {
  OnnxBuilder b;
  valid_model(b);
  b.node("Add", {"y", "nowhere"}, {"z"}, "add");
  b.output("z");
  CHECK(import_error(b) == "bad.onnx: node 'add' reads undefined value 'nowhere'");
}

TEST_CASE("import errors: negative dim") {
  OnnxBuilder b;
  valid_model(b);
  initializer(b, "w").set_dims(0, -2);
  CHECK_THAT(import_error(b), Contains("initializer 'w' has a negative dimension (-2)"));
}

TEST_CASE("import errors: zero and negative graph input dims") {
  for (int64_t d : {0, -3}) {
    OnnxBuilder b;
    b.input("x", {1, 3, 4, 4});
    b.node("Relu", {"x"}, {"y"});
    b.output("y");
    // Set on the proto: the builder turns negative dims into symbolic ones.
    b.proto().mutable_graph()->mutable_input(0)->mutable_type()->mutable_tensor_type()
        ->mutable_shape()->mutable_dim(2)->set_dim_value(d);
    CHECK(import_error(b) == "bad.onnx: graph input 'x' has invalid dimension " + std::to_string(d));
  }
}

TEST_CASE("import errors: an empty activation is refused at load time") {
  // A Conv with no filters imported fine and crashed the executor (division by zero).
  OnnxBuilder conv;
  conv.input("x", {1, 3, 4, 4});
  conv.init_f32("w", {0, 3, 1, 1}, {});
  conv.node("Conv", {"x", "w"}, {"y"}, "conv");
  conv.output("y");
  CHECK(prepare_error(conv) == "bad.onnx: node 'conv' (Conv): output [1,0,4,4] is empty");

  OnnxBuilder fc;
  fc.input("x", {1, 4});
  fc.init_f32("w", {4, 0}, {});
  fc.node("MatMul", {"x", "w"}, {"y"}, "fc");
  fc.output("y");
  CHECK(prepare_error(fc) == "bad.onnx: node 'fc' (MatMul): output [1,0] is empty");
}

TEST_CASE("import errors: huge declared dims are rejected before allocating") {
  OnnxBuilder b;
  valid_model(b);
  auto& w = initializer(b, "w");
  w.set_dims(0, int64_t(1) << 40);
  w.set_dims(1, int64_t(1) << 40);  // the product overflows int64 too
  const std::string msg = import_error(b);
  CHECK_THAT(msg, StartsWith("bad.onnx: initializer 'w' declared size too large"));

  OnnxBuilder big_input;
  big_input.input("x", {1, 1 << 20, 1 << 20, 1 << 20});
  big_input.node("Relu", {"x"}, {"y"});
  big_input.output("y");
  CHECK_THAT(import_error(big_input), Contains("graph input 'x' declared size too large"));

  // 8192 stored floats whose outer product (folded at load time) would be 16M elements.
  OnnxBuilder outer;
  outer.input("x", {1, 4096});
  outer.init_f32("col", {4096, 1}, std::vector<float>(4096, 1.f));
  outer.init_f32("row", {1, 4096}, std::vector<float>(4096, 1.f));
  outer.node("Mul", {"col", "row"}, {"big"}, "outer");
  outer.node("Add", {"x", "big"}, {"y"});
  outer.output("y");
  CHECK(prepare_error(outer) ==
        "bad.onnx: node 'outer' (Mul): folding it would make 16777216 elements out of 8192");
}

TEST_CASE("import errors: raw_data size mismatch") {
  OnnxBuilder b;
  valid_model(b);
  initializer(b, "w").mutable_raw_data()->resize(20);
  CHECK(import_error(b) == "bad.onnx: initializer 'w': raw_data has 20 bytes, dims need 24");

  OnnxBuilder typed;
  valid_model(typed);
  auto& w = initializer(typed, "w");
  w.clear_raw_data();
  w.add_float_data(1.f);
  CHECK(import_error(typed) == "bad.onnx: initializer 'w': has 1 values, dims need 6");
}

TEST_CASE("import errors: cycle") {
  OnnxBuilder b;
  b.input("x", {1, 2});
  b.node("Add", {"x", "b"}, {"a"}, "first");
  b.node("Relu", {"a"}, {"b"}, "second");
  b.output("b");
  CHECK_THAT(import_error(b), StartsWith("bad.onnx: graph has a cycle through node '"));
}

TEST_CASE("import errors: wrong initializer data type") {
  OnnxBuilder b;
  valid_model(b);
  auto& w = initializer(b, "w");
  w.set_data_type(onnx::TensorProto::DOUBLE);
  CHECK(import_error(b) ==
        "bad.onnx: initializer 'w' has data type DOUBLE; only FLOAT, INT64, UINT8, INT8 and INT32 are supported");
}

TEST_CASE("import errors: value defined twice, missing output, bad input type") {
  OnnxBuilder twice;
  valid_model(twice);
  twice.node("Relu", {"x"}, {"c"}, "again");
  CHECK(import_error(twice) == "bad.onnx: value 'c' is defined twice");

  OnnxBuilder no_out;
  valid_model(no_out);
  no_out.output("ghost");
  CHECK(import_error(no_out) == "bad.onnx: graph output 'ghost' is never computed");

  OnnxBuilder int_in;
  valid_model(int_in);
  int_in.proto().mutable_graph()->mutable_input(0)->mutable_type()->mutable_tensor_type()->set_elem_type(
      onnx::TensorProto::INT64);
  CHECK_THAT(import_error(int_in), Contains("graph input 'x' has element type INT64"));

  OnnxBuilder sym;
  valid_model(sym);
  sym.proto().mutable_graph()->mutable_input(0)->mutable_type()->mutable_tensor_type()->mutable_shape()
      ->mutable_dim(2)->set_dim_param("H");
  CHECK_THAT(import_error(sym), Contains("graph input 'x' has symbolic dimension 2 ('H')"));
}

TEST_CASE("import errors: opset and model-level checks") {
  OnnxBuilder future(22);
  valid_model(future);
  CHECK(import_error(future) == "bad.onnx: opset 22 is not supported (need 1 to 21)");

  OnnxBuilder no_graph;
  no_graph.proto().clear_graph();
  CHECK(import_error(no_graph) == "bad.onnx: not a valid ONNX model (no graph)");
}

TEST_CASE("import errors: per-op attribute validation") {
  auto conv_with = [](auto&& set) {
    OnnxBuilder b;
    b.input("x", {1, 3, 4, 4});
    b.init_f32("w", {2, 3, 1, 1}, {1, 2, 3, 4, 5, 6});
    set(b.node("Conv", {"x", "w"}, {"y"}, "conv"));
    b.output("y");
    return import_error(b);
  };
  using Ref = OnnxBuilder::NodeRef;
  CHECK(conv_with([](Ref n) { n.s("auto_pad", "SAME_WEIRD"); }) ==
        "bad.onnx: node 'conv' (Conv): unsupported auto_pad 'SAME_WEIRD'");
  CHECK_THAT(conv_with([](Ref n) { n.ints("strides", {1, 1, 1}); }),
             Contains("attribute 'strides' has 3 values; only 2-D"));
  CHECK_THAT(conv_with([](Ref n) { n.ints("pads", {0, -1, 0, 0}); }),
             Contains("attribute 'pads' value -1 is out of range"));
  CHECK_THAT(conv_with([](Ref n) { n.ints("strides", {0, 1}); }),
             Contains("attribute 'strides' value 0 is out of range"));

  OnnxBuilder pool;
  pool.input("x", {1, 3, 4, 4});
  pool.node("MaxPool", {"x"}, {"y"}, "pool");
  pool.output("y");
  CHECK(import_error(pool) == "bad.onnx: node 'pool' (MaxPool): missing attribute 'kernel_shape'");

  OnnxBuilder pad;
  pad.input("x", {1, 3, 4, 4});
  pad.init_i64("p", {8}, {0, 0, 1, 1, 0, 0, 1, 1});
  pad.node("Pad", {"x", "p"}, {"y"}, "pad").s("mode", "wrap");
  pad.output("y");
  CHECK(import_error(pad) ==
        "bad.onnx: node 'pad' (Pad): padding mode 'wrap' is not supported (constant, reflect and edge are)");

  OnnxBuilder arity;
  arity.input("x", {1, 3});
  arity.node("Add", {"x"}, {"y"}, "add");
  arity.output("y");
  CHECK(import_error(arity) == "bad.onnx: node 'add' (Add): has 1 inputs, expected 2");

  OnnxBuilder two_out;
  two_out.input("x", {1, 3, 4, 4});
  two_out.node("MaxPool", {"x"}, {"y", "indices"}, "pool").ints("kernel_shape", {2, 2});
  two_out.output("y");
  CHECK(import_error(two_out) == "bad.onnx: node 'pool' (MaxPool): has 2 outputs, expected 1");
}

TEST_CASE("import errors: mutated models give fgq::Error or a valid graph, nothing else") {
  // A small model using most importer paths; random byte flips must never crash, throw a
  // non-fgq exception or allocate wildly in import or in the preparation passes.
  const OnnxBuilder b = fgq::test::mixed_ops_model();
  const std::string good = b.bytes();
  REQUIRE_NOTHROW(prepare_graph(import_onnx_bytes(good.data(), good.size(), "ok.onnx")));
  std::mt19937 rng(7);
  int rejected = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    std::string bytes = good;
    const int flips = 1 + static_cast<int>(rng() % 3);
    for (int k = 0; k < flips; ++k) bytes[rng() % bytes.size()] = static_cast<char>(rng());
    try {
      Graph g = prepare_graph(import_onnx_bytes(bytes.data(), bytes.size(), "m.onnx"));
      infer_shapes(g, 3);
    } catch (const fgq::Error& e) {
      ++rejected;
      CHECK_THAT(std::string(e.what()), StartsWith("m.onnx: "));
    }
  }
  CHECK(rejected > 100);
}
