// Constants of the wrong element type where a kernel needs floats: the importer accepts INT64
// initializers (shape arithmetic needs them), so the executor's set-up is where they are refused,
// with one line naming the model and the node.
#include <catch2/catch.hpp>

#include <string>

#include "graph/error.h"
#include "graph/onnx_import.h"
#include "graph/prepare.h"
#include "runtime/executor.h"
#include "support/onnx_builder.h"

using fgq::test::OnnxBuilder;

namespace {

std::string executor_error(const OnnxBuilder& b) {
  const std::string bytes = b.bytes();
  try {
    fgq::Executor ex(fgq::prepare_graph(fgq::import_onnx_bytes(bytes.data(), bytes.size(), "bad.onnx")), 1);
  } catch (const fgq::Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("bad constants: INT64 weights for Conv, MatMul and Add are refused naming the node") {
  OnnxBuilder conv;
  conv.input("x", {1, 3, 4, 4});
  conv.init_i64("w", {2, 3, 1, 1}, {1, 2, 3, 4, 5, 6});
  conv.node("Conv", {"x", "w"}, {"y"}, "conv");
  conv.output("y");
  CHECK(executor_error(conv) == "bad.onnx: executor: Conv node 'conv': weight must be float [K,C,KH,KW]");

  OnnxBuilder fc;
  fc.input("x", {1, 4});
  fc.init_i64("w", {4, 2}, {1, 2, 3, 4, 5, 6, 7, 8});
  fc.node("MatMul", {"x", "w"}, {"y"}, "fc");
  fc.output("y");
  CHECK(executor_error(fc) == "bad.onnx: executor: MatMul node 'fc': B must be a float matrix");

  OnnxBuilder add;
  add.input("x", {1, 4});
  add.init_i64("b", {4}, {1, 2, 3, 4});
  add.node("Add", {"x", "b"}, {"y"}, "add");
  add.output("y");
  CHECK(executor_error(add) == "bad.onnx: executor: Add node 'add': input must be float");
}
