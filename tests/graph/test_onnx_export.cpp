// Graph -> ONNX -> Graph: the exporter writes what the importer reads back unchanged, and the
// importer takes fgq's own FakeQuant only from the "fgq" domain, with valid parameters.
#include <catch2/catch.hpp>

#include <filesystem>

#include "graph/error.h"
#include "graph/onnx_export.h"
#include "graph/onnx_import.h"
#include "graph/onnx_proto.h"
#include "graph/prepare.h"
#include "graph_test_util.h"
#include "support/sample_models.h"
#include "support/test_util.h"

using namespace fgq;
using Catch::Matchers::Contains;
using fgq::test::OnnxBuilder;

namespace {

bool same_attr(const Attr& a, const Attr& b) {
  return a.kind == b.kind && a.i == b.i && a.f == b.f && a.s == b.s && a.ints == b.ints &&
         a.floats == b.floats;
}

std::string value_name(const Graph& g, int v) { return v < 0 ? "" : g.values[v].name; }

// Same nodes (op, name, input/output names, attributes), constants, inputs, outputs, metadata.
void check_same_graph(const Graph& a, const Graph& b) {
  REQUIRE(a.nodes.size() == b.nodes.size());
  for (size_t k = 0; k < a.nodes.size(); ++k) {
    const Node &x = a.nodes[k], &y = b.nodes[k];
    INFO("node " << x.name);
    CHECK(x.op == y.op);
    CHECK(x.name == y.name);
    REQUIRE(x.inputs.size() == y.inputs.size());
    for (size_t i = 0; i < x.inputs.size(); ++i) {
      CHECK(value_name(a, x.inputs[i]) == value_name(b, y.inputs[i]));
      if (x.inputs[i] >= 0 && a.values[x.inputs[i]].is_const()) {
        const Tensor &s = *a.values[x.inputs[i]].constant, &t = b.const_of(y.inputs[i]);
        CHECK(s.shape == t.shape);
        CHECK(s.f == t.f);
        CHECK(s.i == t.i);
      }
    }
    CHECK(value_name(a, x.outputs[0]) == value_name(b, y.outputs[0]));
    REQUIRE(x.attrs.all().size() == y.attrs.all().size());
    for (const auto& [key, attr] : x.attrs.all()) {
      INFO("attribute " << key);
      REQUIRE(y.attrs.has(key));
      CHECK(same_attr(attr, y.attrs.all().at(key)));
    }
  }
  CHECK(value_name(a, a.inputs.at(0)) == value_name(b, b.inputs.at(0)));
  CHECK(value_name(a, a.outputs.at(0)) == value_name(b, b.outputs.at(0)));
  CHECK(a.metadata == b.metadata);
}

// x -> FakeQuant (domain `domain`, scale `scale`) -> Relu -> y
OnnxBuilder fake_quant_model(const std::string& domain, float scale) {
  OnnxBuilder b;
  b.input("x", {-1, 2});
  b.node("FakeQuant", {"x"}, {"q"}, "fq").f("scale", scale).i("qmin", -127).i("qmax", 127);
  b.node("Relu", {"q"}, {"y"}, "relu");
  b.output("y");
  b.proto().mutable_graph()->mutable_node(0)->set_domain(domain);
  if (!domain.empty()) {
    auto* os = b.proto().add_opset_import();
    os->set_domain(domain);
    os->set_version(1);
  }
  return b;
}

}  // namespace

TEST_CASE("onnx_export: a prepared graph reads back unchanged (bytes and file)") {
  const std::string bytes = test::mixed_ops_model().metadata("fgq.input_size", "8").bytes();
  Graph g = prepare_graph(import_onnx_bytes(bytes.data(), bytes.size(), "mixed"));
  g.nodes[0].attrs.set_floats("fgq_wscale", {0.5f, 0.25f});  // what the quantizer adds
  g.nodes[0].attrs.set_s("fgq_weight", "ternary");
  const std::string out = export_onnx_bytes(g);
  check_same_graph(g, import_onnx_bytes(out.data(), out.size(), "exported"));

  const std::string path = test::temp_path("_export.onnx");
  export_onnx_file(g, path);
  check_same_graph(g, import_onnx_file(path));
  std::filesystem::remove(path);
  CHECK_THROWS_WITH(export_onnx_file(g, "/nonexistent-dir/x.onnx"),
                    Contains("/nonexistent-dir/x.onnx") && Contains("cannot create"));
}

TEST_CASE("onnx_import: FakeQuant only from the fgq domain, with a valid grid") {
  const std::string ok = fake_quant_model(kFgqDomain, 0.5f).bytes();
  const Graph g = import_onnx_bytes(ok.data(), ok.size(), "fq");
  REQUIRE(g.nodes.size() == 2);
  CHECK(g.nodes[0].op == "FakeQuant");
  CHECK(g.nodes[0].attrs.f("scale", 0) == 0.5f);

  const std::string plain = fake_quant_model("", 0.5f).bytes();
  CHECK_THROWS_WITH(import_onnx_bytes(plain.data(), plain.size(), "fq"),
                    Contains("unsupported op 'FakeQuant'"));
  const std::string other = fake_quant_model("com.example", 0.5f).bytes();
  CHECK_THROWS_WITH(import_onnx_bytes(other.data(), other.size(), "fq"),
                    Contains("unsupported op 'com.example::FakeQuant'"));
  const std::string zero = fake_quant_model(kFgqDomain, 0.f).bytes();
  CHECK_THROWS_WITH(import_onnx_bytes(zero.data(), zero.size(), "fq"), Contains("'scale' > 0"));
}
