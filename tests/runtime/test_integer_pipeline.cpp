// The integer pipeline end to end on a miniature ResNet: quantization (simulated graph), the
// lowering to integer ops, every kernel path, saving and reloading, sessions sharing weights.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <thread>

#include "fgq/fgq.h"
#include "graph/onnx_export.h"
#include "graph/onnx_import.h"
#include "graph/prepare.h"
#include "ops/cpu_features.h"
#include "runtime/executor.h"
#include "runtime/quantize_runner.h"
#include "runtime/run_graph.h"
#include "support/sample_models.h"
#include "support/test_util.h"

using namespace fgq;

namespace {

constexpr int kCalib = 12, kImages = 5, kSide = 13;

std::vector<float> images(int n, uint32_t seed) { return test::random_floats(size_t(n) * 3 * kSide * kSide, seed, -2.f, 2.f); }

Graph quantized_mini_resnet(int act_bits, int fold_levels = 127) {
  const std::string bytes = test::mini_resnet_model().bytes();
  Graph g = prepare_graph(import_onnx_bytes(bytes.data(), bytes.size(), "mini_resnet"), /*fuse=*/false);
  QuantOptions opt;
  opt.act_bits = act_bits;
  opt.fold_levels = fold_levels;
  const auto calib = images(kCalib, 5);
  quantize_graph(g, opt, calib.data(), kCalib);
  return g;
}

std::vector<float> run(const Graph& g, const std::vector<float>& x, int batch) {
  Executor ex(g, batch);
  ex.run(x.data(), batch);
  const float* y = ex.output(0);
  return std::vector<float>(y, y + size_t(batch) * 10);
}

// Restores the run-time ISA choice when a test section forces one.
struct IsaGuard {
  ~IsaGuard() { ops::set_forced_isa(""); }
};

}  // namespace

TEST_CASE("integer pipeline: the lowering turns the whole mini ResNet into integer ops") {
  const Graph sim = quantized_mini_resnet(8);
  const RunGraph r = make_run_graph(sim, RunMode::Integer);
  REQUIRE(r.integer);
  CHECK(r.lowering.float_layers.empty());
  CHECK(r.lowering.qconv == 7);          // 6 convs (one absorbs each Add) + the classifier
  CHECK(r.lowering.qconv_ternary == 5);  // first conv and classifier stay 8-bit
  CHECK(r.lowering.maxpool == 1);
  CHECK(r.lowering.global_avgpool == 1);
  CHECK(r.lowering.quantize == 1);       // the image
  CHECK(r.lowering.dequantize == 0);     // no float tensor until the logits
  const Graph& g = r.graph;
  for (const Node& n : g.nodes) {
    INFO(n.name << " " << n.op);
    CHECK((n.op == "QConv" || n.op == "MaxPool" || n.op == "QGlobalAveragePool" || n.op == "Quantize" ||
           n.op == "Flatten"));
  }
  // Every activation between the input quantization and the logits is an integer.
  for (const Node& n : g.nodes)
    if (n.op != "Quantize" && !g.is_graph_output(n.outputs[0])) CHECK(g.values[n.outputs[0]].dtype != DType::F32);
  CHECK(g.values[g.outputs[0]].dtype == DType::F32);
  // The image is signed: stored u8 + 128, read by the first conv with that zero point.
  const Node& first = g.nodes[0];
  REQUIRE(first.op == "Quantize");
  CHECK(first.attrs.i("zero_point", 0) == 128);
  for (const Node& n : g.nodes)
    if (n.op == "QConv" && n.inputs[0] == first.outputs[0]) CHECK(n.attrs.i("in_zero_point", 0) == 128);
  // The projection shortcut's output (no ReLU, read only as a residual) is stored s8.
  bool has_s8 = false;
  for (const Value& v : g.values) has_s8 = has_s8 || (!v.is_const() && v.dtype == DType::S8);
  CHECK(has_s8);
}

TEST_CASE("integer pipeline: every kernel path and the integer-exact simulation agree to the bit") {
  IsaGuard guard;
  for (int bits : {8, 4}) {
    INFO(bits << "-bit activations");
    const Graph sim = quantized_mini_resnet(bits);
    const RunGraph s = make_run_graph(sim, RunMode::FakeQuant), r = make_run_graph(sim, RunMode::Integer);
    const RunGraph e = make_run_graph(sim, RunMode::Simulate);
    REQUIRE(!s.integer);
    REQUIRE(e.integer);
    if (bits == 4) {
      bool has_u4 = false;
      for (const Value& v : r.graph.values) has_u4 = has_u4 || (!v.is_const() && v.dtype == DType::U4);
      CHECK(has_u4);
    }
    const auto x = images(kImages, 11);
    const auto ys = run(s.graph, x, kImages);
    std::vector<float> scalar;
    for (ops::Isa isa : ops::supported_isas()) {
      ops::set_forced_isa(ops::isa_name(isa));
      const auto yi = run(r.graph, x, kImages);
      if (scalar.empty()) {
        scalar = yi;
        // The simulation rounds in float where the integer pipeline is exact: requantization
        // ties may land on the other integer. Logits agree to a small fraction of their range.
        double diff = 0, range = 0;
        for (size_t i = 0; i < yi.size(); ++i) {
          diff = std::max(diff, double(std::fabs(yi[i] - ys[i])));
          range = std::max(range, double(std::fabs(ys[i])));
        }
        CHECK(diff <= 0.02 * range);
      }
      INFO("isa " << ops::isa_name(isa));
      CHECK(yi == scalar);  // bit-identical across kernel paths
      if (isa == ops::Isa::Scalar) CHECK(run(e.graph, x, kImages) == scalar);  // FP32 kernels, same bits
      // Batch 1 equals the batch of 5, image by image.
      const std::vector<float> one(x.begin() + 2 * 3 * kSide * kSide, x.begin() + 3 * 3 * kSide * kSide);
      const auto y1 = run(r.graph, one, 1);
      CHECK(std::equal(y1.begin(), y1.end(), yi.begin() + 20));
    }
    for (ops::Isa isa : {ops::Isa::Avx2, ops::Isa::Avx512Vnni})
      if (!ops::cpu_supports(isa)) WARN("kernel path " << ops::isa_name(isa) << " skipped: this CPU lacks it");
  }
}

TEST_CASE("integer pipeline: a saved integer model reloads and computes the same logits") {
  const Graph sim = quantized_mini_resnet(4);
  const RunGraph r = make_run_graph(sim, RunMode::Integer);
  const std::string bytes = export_onnx_bytes(r.graph);
  const Graph back = prepare_graph(import_onnx_bytes(bytes.data(), bytes.size(), "saved.onnx"), false);
  CHECK(has_integer_ops(back));
  const RunGraph again = make_run_graph(back, RunMode::Integer);
  CHECK(again.integer);
  const auto x = images(2, 3);
  CHECK(run(again.graph, x, 2) == run(r.graph, x, 2));
  CHECK_THROWS_WITH(make_run_graph(back, RunMode::FakeQuant), Catch::Contains("integer model"));
  // Ternary weights travel as 2-bit codes: the file is far smaller than the float model.
  CHECK(bytes.size() < test::mini_resnet_model().bytes().size() / 2);
}

TEST_CASE("integer pipeline: a conv writes over its residual when nothing reads it later, same bits") {
  IsaGuard guard;
  for (int bits : {8, 4}) {
    INFO(bits << "-bit activations");
    const Graph g = make_run_graph(quantized_mini_resnet(bits), RunMode::Integer).graph;
    // The same network with every residual also a graph output: alive to the end, never reused.
    Graph kept = g;
    std::vector<std::pair<int, int>> res_out;  // (residual, output) of each conv with one
    int same_layout = 0;  // u8 or s8 into u8 or s8 (byte for byte); a u4 one differs from u8
    for (const Node& n : g.nodes)
      if (n.op == "QConv" && n.inputs.size() > 5 && n.inputs[5] >= 0) {
        res_out.emplace_back(n.inputs[5], n.outputs[0]);
        kept.outputs.push_back(n.inputs[5]);
        const DType r = g.values[n.inputs[5]].dtype, y = g.values[n.outputs[0]].dtype;
        same_layout += r != DType::U4 && y != DType::U4;
      }
    REQUIRE(res_out.size() == 2);  // the mini ResNet's residual blocks
    CHECK(same_layout == (bits == 8 ? 2 : 0));  // 4-bit: s8 -> u4 and u4 -> u8
    const auto x = images(3, 21);
    for (ops::Isa isa : ops::supported_isas()) {
      INFO("isa " << ops::isa_name(isa));
      ops::set_forced_isa(ops::isa_name(isa));
      Executor shared(g, 3), apart(kept, 3);
      int in_place = 0;
      for (auto [res, out] : res_out) {
        in_place += shared.value_data(out) == shared.value_data(res);
        CHECK(apart.value_data(out) != apart.value_data(res));
      }
      CHECK(in_place == same_layout);
      shared.run(x.data(), 3);
      apart.run(x.data(), 3);
      CHECK(std::equal(shared.output(0), shared.output(0) + 30, apart.output(0)));
    }
  }
}

TEST_CASE("integer pipeline: unfolded ternary scales stay on float kernels, still consistent") {
  const Graph sim = quantized_mini_resnet(8, /*fold_levels=*/0);
  const RunGraph r = make_run_graph(sim, RunMode::Integer);
  CHECK(r.lowering.float_layers.size() == 5);
  CHECK(r.lowering.qconv == 2);
  CHECK(r.lowering.dequantize > 0);
  const RunGraph s = make_run_graph(sim, RunMode::FakeQuant);
  const auto x = images(3, 4);
  const auto yi = run(r.graph, x, 3), ys = run(s.graph, x, 3);
  for (size_t i = 0; i < yi.size(); ++i) CHECK(yi[i] == Approx(ys[i]).margin(0.05));
}

TEST_CASE("integer pipeline: sessions of one model share the packed weights, on several threads") {
  const std::string bytes = test::mini_resnet_model().bytes();
  Model m = Model::load_from_memory(bytes.data(), bytes.size(), "mini");
  const size_t fp32_bytes = m.weight_bytes();
  const auto calib = images(kCalib, 5);
  const QuantSummary qs = m.quantize(QuantOptions{}, calib.data(), kCalib);
  // Only what the integer graph reads stays: 2-bit codes + levels, int8, float requantization
  // constants; not the float weights the lowering replaced.
  CHECK(m.weight_bytes() < fp32_bytes / 2);
  CHECK(qs.integer);
  CHECK(qs.integer_layers == 7);
  CHECK(qs.float_layers.empty());
  CHECK(m.integer());
  Session s1(m, 2);
  const size_t after_one = m.weight_bytes();
  Session s2(m, 2);
  CHECK(m.weight_bytes() == after_one);  // the second session packed nothing new
  const auto x = images(2, 8);
  const std::vector<float> want = s1.run(x, 2);
  std::vector<float> got1, got2;
  std::thread t1([&] { for (int i = 0; i < 20; ++i) got1 = s1.run(x, 2); });
  std::thread t2([&] { for (int i = 0; i < 20; ++i) got2 = s2.run(x, 2); });
  t1.join();
  t2.join();
  CHECK(got1 == want);
  CHECK(got2 == want);
  // Save and load through the public API: no calibration needed, same numbers.
  const std::string path = test::temp_path(".onnx");
  m.save(path);
  Model back = Model::load(path);
  CHECK(back.integer());
  CHECK(Session(back, 2).run(x, 2) == want);
}

TEST_CASE("integer pipeline: a damaged saved integer model is a one-line error naming the file") {
  // The damaged files of the fuzz corpus (tests/fuzz/make_corpus.cpp writes them).
  const std::string dir = std::string(std::getenv("FGQ_SOURCE_DIR") ? std::getenv("FGQ_SOURCE_DIR") : ".") +
                          "/tests/fuzz/corpus/";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"seed_integer_truncated", "not a valid ONNX model"},
      {"seed_integer_code3", "ternary code 3"},
      {"seed_integer_level200", "exceeds 127"},
      {"seed_integer_mult_nan", "mult value nan"},
      {"seed_integer_mult_negative", "mult value -1"},
      {"seed_integer_scale_zero", "'scale' must be finite and > 0"},
      {"seed_integer_scale_nan", "'mult' must be finite and > 0"},
      {"seed_integer_res_scale_negative", "'y_scale' must be finite and > 0"},
      {"seed_integer_zero_point_300", "in_zero_point"},
  };
  const auto x = images(1, 1);
  for (const auto& [file, what] : cases) {
    INFO(file);
    const std::string path = dir + file;
    std::string message;
    try {
      Model m = Model::load(path);
      Session s(m, 1);
      s.run(x, 1);
    } catch (const Error& e) {
      message = e.what();
    }
    CHECK(message.rfind(path, 0) == 0);
    CHECK(message.find(what) != std::string::npos);
    CHECK(message.find('\n') == std::string::npos);
  }
  // The intact ones load and run.
  for (const char* file : {"seed_integer_8bit", "seed_integer_4bit", "seed_quantized_fakequant"}) {
    Model m = Model::load(dir + file);
    CHECK(m.integer());
    CHECK(Session(m, 1).run(x, 1).size() == 10);
  }
}

TEST_CASE("integer pipeline: a ternary Gemm over a flattened [C,H,W] tensor (AlexNet's classifier)") {
  // conv 3x3 -> ReLU -> MaxPool -> Flatten (8 x 6 x 6) -> Gemm 288->16 (ternary) -> ReLU -> Gemm.
  // Its groups run along the flattened index, not along channels per tap as the integer
  // kernels store activations (NHWC): it keeps its folded weights as int8, same numbers.
  test::OnnxBuilder b;
  b.input("x", {-1, 3, kSide, kSide});
  b.init_f32("w1", {8, 3, 3, 3}, test::random_floats(8 * 27, 1, -0.5f, 0.5f));
  b.init_f32("w2", {16, 288}, test::random_floats(16 * 288, 2, -0.2f, 0.2f));
  b.init_f32("b2", {16}, test::random_floats(16, 3, -0.1f, 0.1f));
  b.init_f32("w3", {10, 16}, test::random_floats(160, 4, -0.5f, 0.5f));
  b.node("Conv", {"x", "w1"}, {"c1"}).ints("kernel_shape", {3, 3}).ints("pads", {1, 1, 1, 1});
  b.node("Relu", {"c1"}, {"r1"});
  b.node("MaxPool", {"r1"}, {"p1"}).ints("kernel_shape", {2, 2}).ints("strides", {2, 2});
  b.node("Flatten", {"p1"}, {"f"}).i("axis", 1);
  b.node("Gemm", {"f", "w2", "b2"}, {"g2"}).i("transB", 1);
  b.node("Relu", {"g2"}, {"r2"});
  b.node("Gemm", {"r2", "w3"}, {"y"}).i("transB", 1);
  b.output("y");
  const std::string bytes = b.bytes();
  Graph g = prepare_graph(import_onnx_bytes(bytes.data(), bytes.size(), "mini_alexnet"), /*fuse=*/false);
  QuantOptions opt;
  const auto calib = images(kCalib, 5);
  quantize_graph(g, opt, calib.data(), kCalib);
  const RunGraph r = make_run_graph(g, RunMode::Integer), e = make_run_graph(g, RunMode::Simulate);
  REQUIRE(r.integer);
  CHECK(r.lowering.float_layers.empty());
  CHECK(r.lowering.qconv == 3);
  CHECK(r.lowering.qconv_ternary == 0);
  const auto x = images(kImages, 7);
  const auto want = run(e.graph, x, kImages);
  IsaGuard guard;
  for (ops::Isa isa : ops::supported_isas()) {
    INFO("isa " << ops::isa_name(isa));
    ops::set_forced_isa(ops::isa_name(isa));
    CHECK(run(r.graph, x, kImages) == want);
  }
}

TEST_CASE("integer pipeline: the input quantization reads the caller's buffer, no arena copy") {
  const Graph g = make_run_graph(quantized_mini_resnet(8), RunMode::Integer).graph;
  const int input = g.inputs[0];
  Executor ex(g, 2);
  CHECK(ex.value_data(input) == nullptr);
  // The same network with its input also an output must keep a copy: a bigger arena.
  Graph kept = g;
  kept.outputs.push_back(input);
  Executor copy(kept, 2);
  REQUIRE(copy.value_data(input) != nullptr);
  CHECK(copy.arena_bytes() > ex.arena_bytes());
  // Each run reads the buffer it is given, not the first one it saw.
  const auto a = images(2, 31), b = images(2, 32);
  ex.run(a.data(), 2);
  const std::vector<float> ya(ex.output(0), ex.output(0) + 20);
  ex.run(b.data(), 2);
  const std::vector<float> yb(ex.output(0), ex.output(0) + 20);
  CHECK(ya != yb);
  CHECK(ya == run(g, a, 2));
  CHECK(yb == run(g, b, 2));
  copy.run(b.data(), 2);
  CHECK(std::equal(yb.begin(), yb.end(), copy.output(0)));
  CHECK_THROWS_WITH(ex.run(nullptr, 1), Catch::Contains("null input"));
}

namespace {

// Layers big enough to run as several tasks on two threads (the mini ResNet's run on one):
// x [-1, 3, 40, 40] -> conv 3x3/2 48 ch -> Relu -> conv 3x3 64 ch -> Relu -> conv 1x1 48 ch
// + the first conv's output -> Relu -> MaxPool 2x2 -> GlobalAveragePool -> Flatten -> Gemm.
Graph quantized_wide_net() {
  test::OnnxBuilder b;
  b.input("x", {-1, 3, 40, 40});
  uint32_t seed = 70;
  auto conv = [&](const std::string& name, const std::string& in, int K, int C, int k, int stride) {
    b.init_f32(name + "_w", {K, C, k, k}, test::random_floats(size_t(K) * C * k * k, seed++, -0.3f, 0.3f));
    b.init_f32(name + "_b", {K}, test::random_floats(K, seed++, -0.2f, 0.2f));
    const int pad = k / 2;
    b.node("Conv", {in, name + "_w", name + "_b"}, {name})
        .ints("kernel_shape", {k, k})
        .ints("strides", {stride, stride})
        .ints("pads", {pad, pad, pad, pad});
  };
  conv("c1", "x", 48, 3, 3, 2);
  b.node("Relu", {"c1"}, {"r1"});
  conv("c2", "r1", 64, 48, 3, 1);
  b.node("Relu", {"c2"}, {"r2"});
  conv("c3", "r2", 48, 64, 1, 1);
  b.node("Add", {"c3", "r1"}, {"sum"});
  b.node("Relu", {"sum"}, {"r3"});
  b.node("MaxPool", {"r3"}, {"pool"}).ints("kernel_shape", {2, 2}).ints("strides", {2, 2});
  b.node("GlobalAveragePool", {"pool"}, {"gap"});
  b.node("Flatten", {"gap"}, {"flat"}).i("axis", 1);
  b.init_f32("fc_w", {10, 48}, test::random_floats(480, seed++, -0.5f, 0.5f));
  b.init_f32("fc_b", {10}, test::random_floats(10, seed++, -0.1f, 0.1f));
  b.node("Gemm", {"flat", "fc_w", "fc_b"}, {"logits"}).i("transB", 1);
  b.output("logits");
  const std::string bytes = b.bytes();
  Graph g = prepare_graph(import_onnx_bytes(bytes.data(), bytes.size(), "wide_net"), /*fuse=*/false);
  const auto calib = test::random_floats(size_t(8) * 3 * 40 * 40, 71, -2.f, 2.f);
  quantize_graph(g, QuantOptions{}, calib.data(), 8);
  return make_run_graph(g, RunMode::Integer).graph;
}

// Sets FGQ_SPIN_TEAM for the executors made while it lives.
struct SpinTeamEnv {
  explicit SpinTeamEnv(const char* v) { setenv("FGQ_SPIN_TEAM", v, 1); }
  ~SpinTeamEnv() { unsetenv("FGQ_SPIN_TEAM"); }
};

}  // namespace

TEST_CASE("integer pipeline: runs on the spinning team and on TBB's workers give the same bits") {
  IsaGuard guard;
  const Graph g = quantized_wide_net();
  for (const Node& n : g.nodes) {  // an integer network throughout, so the run opens one team
    INFO(n.name << " " << n.op);
    CHECK((n.op == "QConv" || n.op == "MaxPool" || n.op == "QGlobalAveragePool" || n.op == "Quantize" ||
           n.op == "Flatten"));
  }
  const auto x = test::random_floats(size_t(3) * 3 * 40 * 40, 72, -2.f, 2.f);
  for (ops::Isa isa : ops::supported_isas()) {
    INFO("isa " << ops::isa_name(isa));
    ops::set_forced_isa(ops::isa_name(isa));
    std::vector<float> tbb_bits;
    {
      const SpinTeamEnv off("0");
      tbb_bits = run(g, x, 3);
    }
    Executor team(g, 3);  // FGQ_SPIN_TEAM unset: the team
    for (int rep = 0; rep < 20; ++rep) {
      team.run(x.data(), 3);
      REQUIRE(std::equal(tbb_bits.begin(), tbb_bits.end(), team.output(0)));
    }
    // Batch 1, image by image, on either.
    for (int i = 0; i < 3; ++i) {
      team.run(x.data() + size_t(i) * 3 * 40 * 40, 1);
      CHECK(std::equal(team.output(0), team.output(0) + 10, tbb_bits.begin() + 10 * i));
    }
  }
}
