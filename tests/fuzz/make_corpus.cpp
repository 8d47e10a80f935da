// Writes the seed inputs of the loader fuzzer into DIR (tests/fuzz/corpus): small models that
// reach most importer paths and passes, a few broken ones, and metadata ('#' inputs, see
// fuzz_onnx_loader.cpp). Regressions found by fuzzing are added next to them as crash_* files.
//   fuzz_make_corpus tests/fuzz/corpus
#include <cstdio>
#include <fstream>
#include <string>

#include <limits>
#include <utility>

#include "graph/onnx_export.h"
#include "graph/onnx_import.h"
#include "graph/onnx_proto.h"
#include "graph/prepare.h"
#include "runtime/quantize_runner.h"
#include "runtime/run_graph.h"
#include "support/onnx_builder.h"
#include "support/sample_models.h"
#include "support/test_util.h"

using fgq::test::OnnxBuilder;

namespace {

std::string g_dir;

void put(const std::string& name, const std::string& bytes) {
  std::ofstream(g_dir + "/seed_" + name, std::ios::binary) << bytes;
}

void conv_relu(OnnxBuilder& b) {
  b.input("x", {1, 3, 4, 4});
  b.init_f32("w", {2, 3, 1, 1}, {1, 2, 3, 4, 5, 6});
  b.node("Conv", {"x", "w"}, {"c"}, "conv");
  b.node("Relu", {"c"}, {"y"}, "relu");
  b.output("y");
}

// The shared mixed-ops model with the preprocessing metadata.
std::string mixed() {
  OnnxBuilder b = fgq::test::mixed_ops_model();
  b.metadata("fgq.channel_order", "BGR").metadata("fgq.mean", "103.9,116.8,123.7");
  b.metadata("fgq.std", "1,1,1").metadata("fgq.pixel_scale", "1").metadata("fgq.input_size", "8");
  return b.bytes();
}

// A residual block: Conv-BN-Relu-Conv-BN-Add-Relu, AveragePool with auto_pad, Flatten, Gemm.
std::string residual() {
  OnnxBuilder b;
  b.input("x", {1, 2, 5, 5});
  b.init_f32("w1", {2, 2, 3, 3}, fgq::test::random_floats(36, 2));
  b.init_f32("w2", {2, 2, 3, 3}, fgq::test::random_floats(36, 3));
  for (const char* n : {"g", "be", "m", "v"}) b.init_f32(n, {2}, {1, 0.5f});
  b.init_f32("fw", {3, 2}, {1, 0, 0, 1, 1, 1});
  b.init_f32("fb", {3}, {0, 0, 0});
  b.node("Conv", {"x", "w1"}, {"c1"}).ints("pads", {1, 1, 1, 1});
  b.node("BatchNormalization", {"c1", "g", "be", "m", "v"}, {"b1"}).f("epsilon", 1e-5f);
  b.node("Relu", {"b1"}, {"r1"});
  b.node("Conv", {"r1", "w2"}, {"c2"}).s("auto_pad", "SAME_UPPER");
  b.node("BatchNormalization", {"c2", "g", "be", "m", "v"}, {"b2"});
  b.node("Add", {"b2", "x"}, {"a"});
  b.node("Relu", {"a"}, {"r2"});
  b.node("AveragePool", {"r2"}, {"ap"}).ints("kernel_shape", {2, 2}).s("auto_pad", "SAME_LOWER");
  b.node("GlobalAveragePool", {"ap"}, {"gap"});
  b.node("Flatten", {"gap"}, {"f"});
  b.node("Gemm", {"f", "fw", "fb"}, {"y"}).i("transB", 1).f("alpha", 0.5f);
  b.output("y");
  return b.bytes();
}

// Opset 11: Constant nodes, attribute-form Squeeze/Unsqueeze, Transpose, Cast, Mul/Sub/Div on
// constants, Dropout, Identity.
std::string constants() {
  OnnxBuilder b(11);
  b.input("x", {1, 4});
  b.node("Constant", {}, {"k"}).ints("value_ints", {1, -1});
  b.node("Constant", {}, {"s"}).f("value_float", 2.f);
  b.init_f32("w", {1, 1, 4}, {1, 2, 3, 4});
  b.node("Squeeze", {"w"}, {"w2"}).ints("axes", {0});
  b.node("Transpose", {"w2"}, {"wt"}).ints("perm", {1, 0});
  b.node("Mul", {"wt", "s"}, {"wm"});
  b.node("Sub", {"wm", "s"}, {"ws"});
  b.node("Div", {"ws", "s"}, {"wd"});
  b.node("Unsqueeze", {"wd"}, {"wu"}).ints("axes", {0});
  b.node("Squeeze", {"wu"}, {"wq"}).ints("axes", {0});
  b.node("Identity", {"x"}, {"xi"});
  b.node("Dropout", {"xi"}, {"xd"});
  b.node("MatMul", {"xd", "wq"}, {"y"});
  b.node("Cast", {"k"}, {"kc"}).i("to", 7);
  b.node("Reshape", {"y", "kc"}, {"out"});
  b.output("out");
  return b.bytes();
}

// Opset 7: Pad with a pads attribute, Softmax with the old default axis.
std::string old_opset() {
  OnnxBuilder b(7);
  b.input("x", {1, 1, 2, 2});
  b.node("Pad", {"x"}, {"p"}).ints("pads", {0, 0, 1, 1, 0, 0, 1, 1}).f("value", 0.f);
  b.node("MaxPool", {"p"}, {"m"}).ints("kernel_shape", {3, 3}).ints("strides", {1, 1});
  b.node("Flatten", {"m"}, {"f"});
  b.node("Softmax", {"f"}, {"y"});
  b.output("y");
  return b.bytes();
}

// The mini ResNet quantized (FGQ N=4, `bits`-bit activations) on random calibration images:
// the calibration graph (FakeQuant, folded weights) and the lowered integer network, as
// --save-quant writes them.
std::pair<std::string, std::string> quantized_models(int bits) {
  const std::string bytes = fgq::test::mini_resnet_model().bytes();
  fgq::Graph g = fgq::prepare_graph(fgq::import_onnx_bytes(bytes.data(), bytes.size(), "mini"), false);
  fgq::QuantOptions opt;
  opt.act_bits = bits;
  opt.gptq = false;
  const auto calib = fgq::test::random_floats(4 * 3 * 13 * 13, 5, -2.f, 2.f);
  fgq::quantize_graph(g, opt, calib.data(), 4);
  return {fgq::export_onnx_bytes(g), fgq::export_onnx_bytes(fgq::make_run_graph(g).graph)};
}

// The first initializer whose name ends in `suffix`.
onnx::TensorProto* initializer(onnx::ModelProto& m, const std::string& suffix) {
  for (auto& t : *m.mutable_graph()->mutable_initializer())
    if (t.name().size() >= suffix.size() && t.name().compare(t.name().size() - suffix.size(), suffix.size(), suffix) == 0)
      return &t;
  return nullptr;
}

onnx::AttributeProto* attribute(onnx::ModelProto& m, const std::string& op, const std::string& name) {
  for (auto& n : *m.mutable_graph()->mutable_node())
    if (n.op_type() == op)
      for (auto& a : *n.mutable_attribute())
        if (a.name() == name) return &a;
  return nullptr;
}

// Saved integer models, intact and damaged the ways a file can be: cut short, ternary codes out
// of range, levels above 127, requantization constants and scales NaN, negative or zero.
void integer_models() {
  const auto [sim8, int8] = quantized_models(8);
  const auto [sim4, int4] = quantized_models(4);
  put("quantized_fakequant", sim8);
  put("integer_8bit", int8);
  put("integer_4bit", int4);
  put("integer_truncated", int8.substr(0, int8.size() * 2 / 3));
  auto damaged = [&](const std::string& name, auto edit) {
    onnx::ModelProto m;
    m.ParseFromString(int8);
    edit(m);
    std::string out;
    m.SerializeToString(&out);
    put(name, out);
  };
  damaged("integer_code3", [](onnx::ModelProto& m) { (*initializer(m, "_codes")->mutable_raw_data())[0] = char(0xFF); });
  damaged("integer_level200", [](onnx::ModelProto& m) { (*initializer(m, "_levels")->mutable_raw_data())[0] = char(200); });
  damaged("integer_mult_nan", [](onnx::ModelProto& m) {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    initializer(m, "_mult")->mutable_raw_data()->replace(0, 4, reinterpret_cast<const char*>(&nan), 4);
  });
  damaged("integer_mult_negative", [](onnx::ModelProto& m) {
    const float neg = -1.f;
    initializer(m, "_mult")->mutable_raw_data()->replace(0, 4, reinterpret_cast<const char*>(&neg), 4);
  });
  damaged("integer_scale_zero", [](onnx::ModelProto& m) { attribute(m, "Quantize", "scale")->set_f(0.f); });
  damaged("integer_scale_nan", [](onnx::ModelProto& m) {
    attribute(m, "QGlobalAveragePool", "mult")->set_f(std::numeric_limits<float>::quiet_NaN());
  });
  damaged("integer_res_scale_negative", [](onnx::ModelProto& m) { attribute(m, "QConv", "y_scale")->set_f(-2.f); });
  damaged("integer_zero_point_300", [](onnx::ModelProto& m) { attribute(m, "QConv", "in_zero_point")->set_i(300); });
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) return std::fprintf(stderr, "usage: fuzz_make_corpus DIR\n"), 2;
  g_dir = argv[1];
  OnnxBuilder ok;
  conv_relu(ok);
  put("conv_relu", ok.bytes());
  put("mixed", mixed());
  put("residual", residual());
  put("constants", constants());
  put("old_opset", old_opset());

  const std::string m = mixed();
  put("truncated", m.substr(0, m.size() / 2));
  OnnxBuilder cycle;
  cycle.input("x", {1, 2});
  cycle.node("Add", {"x", "b"}, {"a"});
  cycle.node("Relu", {"a"}, {"b"});
  cycle.output("b");
  put("cycle", cycle.bytes());
  OnnxBuilder lstm;
  conv_relu(lstm);
  lstm.node("LSTM", {"y"}, {"z"}, "lstm_1");
  put("unsupported_op", lstm.bytes());
  OnnxBuilder huge;
  conv_relu(huge);
  auto* w = huge.proto().mutable_graph()->mutable_initializer(0);
  w->set_dims(0, int64_t(1) << 40);
  put("huge_dims", huge.bytes());
  OnnxBuilder dtype;
  conv_relu(dtype);
  dtype.proto().mutable_graph()->mutable_initializer(0)->set_data_type(onnx::TensorProto::DOUBLE);
  put("double_weights", dtype.bytes());
  OnnxBuilder mismatch;  // Conv expects 3 input channels, gets 4
  mismatch.input("x", {1, 4, 4, 4});
  mismatch.init_f32("w", {2, 3, 1, 1}, {1, 2, 3, 4, 5, 6});
  mismatch.node("Conv", {"x", "w"}, {"y"});
  mismatch.output("y");
  put("channel_mismatch", mismatch.bytes());

  integer_models();

  put("metadata_ok", "#fgq.channel_order=BGR\nfgq.pixel_scale=1\nfgq.mean=103.94,116.78,123.68\n"
                     "fgq.std=1,1,1\nfgq.input_size=224\n");
  put("metadata_bad", "#fgq.channel_order=RGB\nfgq.mean=1,,2\nfgq.std=0,1,1\nfgq.input_size=1e9\n");
  return 0;
}
