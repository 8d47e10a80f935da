#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "fgq/error.h"
#include "graph/onnx_export.h"
#include "graph/onnx_import.h"
#include "quant/fold_scales.h"
#include "quant/quantize.h"
#include "quant/stats_correction.h"
#include "quant/ternarize.h"
#include "support/test_util.h"
#include "tests/quant/mini_runner.h"

using namespace fgq;

namespace {

// x -> conv1(bn) -> relu -> conv2(bn) -> add(relu1) -> relu -> conv3 (no bn) -> relu -> gap
//   -> flatten -> gemm. Returns the graph; value ids by name via find_value.
enum class Classifier { GemmTransB, Gemm, MatMul };
Graph small_net(Classifier cls = Classifier::GemmTransB) {
  const bool gemm_trans_b = cls == Classifier::GemmTransB;
  Graph g;
  g.source = "small_net";
  const int x = g.add_value("x", {1, 3, 6, 6});
  g.inputs = {x};
  uint32_t seed = 100;
  auto add_conv = [&](const std::string& name, int in, int K, int C, int k, bool bn) {
    const int w = g.add_const(name + "_w", Tensor::f32({K, C, k, k}, test::random_floats(K * C * k * k, seed++)));
    const int b = g.add_const(name + "_b", Tensor::f32({K}, test::random_floats(K, seed++, -0.5f, 0.5f)));
    const int out = g.add_value(name + "_out");
    Node n{"Conv", name, {in, w, b}, {out}, {}};
    n.attrs.set_ints("pads", {k / 2, k / 2, k / 2, k / 2});
    if (bn) {
      n.attrs.set_floats("bn_gamma", test::random_floats(K, seed++, 0.5f, 2.f));
      n.attrs.set_floats("bn_beta", test::random_floats(K, seed++, -1.f, 1.f));
      n.attrs.set_floats("bn_mean", test::random_floats(K, seed++, -1.f, 1.f));
      n.attrs.set_floats("bn_var", test::random_floats(K, seed++, 0.5f, 2.f));
      n.attrs.set_f("bn_eps", 1e-3f);
    }
    g.nodes.push_back(n);
    return out;
  };
  auto add_unary = [&](const std::string& op, const std::string& name, std::vector<int> in) {
    const int out = g.add_value(name);
    g.nodes.push_back(Node{op, name, in, {out}, {}});
    return out;
  };
  const int c1 = add_conv("conv1", x, 8, 3, 3, true);
  const int r1 = add_unary("Relu", "relu1", {c1});
  const int c2 = add_conv("conv2", r1, 8, 8, 3, true);
  const int s = add_unary("Add", "add", {c2, r1});
  const int r2 = add_unary("Relu", "relu2", {s});
  const int c3 = add_conv("conv3", r2, 12, 8, 1, false);
  const int r3 = add_unary("Relu", "relu3", {c3});
  const int p = add_unary("GlobalAveragePool", "gap", {r3});
  const int f = add_unary("Flatten", "flat", {p});
  const int w = g.add_const("fc_w", Tensor::f32(gemm_trans_b ? Shape{10, 12} : Shape{12, 10},
                                                test::random_floats(120, seed++)));
  const int b = g.add_const("fc_b", Tensor::f32({10}, test::random_floats(10, seed++)));
  const int y = g.add_value("logits");
  Node fc{cls == Classifier::MatMul ? "MatMul" : "Gemm", "fc", {f, w, b}, {y}, {}};
  if (cls == Classifier::MatMul) fc.inputs.pop_back();
  else fc.attrs.set_i("transB", gemm_trans_b ? 1 : 0);
  g.nodes.push_back(fc);
  g.outputs = {y};
  return g;
}

const Node& node_named(const Graph& g, const std::string& name) {
  for (const Node& n : g.nodes)
    if (n.name == name) return n;
  FAIL("no node " << name);
  throw 0;
}

const int kCalib = 6;
std::vector<float> calib_images() { return test::random_floats(kCalib * 3 * 6 * 6, 99, -2.f, 2.f); }

}  // namespace

TEST_CASE("quantize: weights, FakeQuant placement and report on a small net") {
  Graph g = small_net();
  const auto calib = calib_images();
  QuantOptions opt;  // N=4, exact, 8-bit, mse, correction on
  const QuantReport r = quantize_graph_with(g, opt, calib.data(), kCalib, test::mini_runner());

  REQUIRE(r.layers.size() == 4);
  CHECK(r.layers[0].kind == "int8");
  CHECK(r.layers[1].kind == "ternary");
  CHECK(r.layers[2].kind == "ternary");
  CHECK(r.layers[3].kind == "int8");
  CHECK(r.corrected_layers == 3);
  // Ternary layers: conv2 (8x8x3x3, groups 8*2*9) and conv3 (12x8, groups 12*2).
  CHECK(r.mults_removed == Approx(1 - (144.0 + 24) / (576 + 96)));
  // All-zero 16 x 4 blocks of the weights that run: the graph holds them dequantized, so a
  // weight is zero iff its integer is (count_zero_blocks itself: zero_blocks_test.cpp). conv2
  // has 1 x 2 x 9 blocks, conv3 1 x 2.
  auto zero_blocks = [&](const std::string& name) {
    const Tensor& w = g.const_of(node_named(g, name).inputs[1]);
    std::vector<int8_t> nonzero(w.f.size());
    for (size_t i = 0; i < w.f.size(); ++i) nonzero[i] = w.f[i] != 0;
    return count_zero_blocks(nonzero.data(), w.shape).zero;
  };
  CHECK(r.layers[1].zero_blocks.blocks == 18);
  CHECK(r.layers[2].zero_blocks.blocks == 2);
  CHECK(r.layers[1].zero_blocks.zero == zero_blocks("conv2"));
  CHECK(r.layers[2].zero_blocks.zero == zero_blocks("conv3"));
  CHECK(r.zero_blocks.blocks == 20);
  CHECK(r.zero_blocks.zero == r.layers[1].zero_blocks.zero + r.layers[2].zero_blocks.zero);
  CHECK(r.weight_sparsity > 0.1);
  CHECK(r.weight_sparsity < 0.6);

  // One FakeQuant behind every value the integer pipeline stores: the layers' inputs, the
  // residual operand of the Add (relu1, a layer input too), the pool's input (relu3), and the
  // classifier's input (flat: the pool's average is requantized). Every reader reads it.
  int fq = 0;
  for (const Node& n : g.nodes) {
    if (n.op == "FakeQuant") {
      ++fq;
      CHECK(n.attrs.f("scale", 0) > 0);
    }
    if (n.op == "Conv" || n.op == "Gemm") {
      REQUIRE(n.inputs[0] >= 0);
      bool from_fq = false;
      for (const Node& p : g.nodes)
        if (p.outputs[0] == n.inputs[0]) from_fq = p.op == "FakeQuant";
      CHECK(from_fq);
    }
  }
  CHECK(fq == 5);
  CHECK(node_named(g, "add").inputs[1] == g.find_value("relu1_fq"));
  CHECK(node_named(g, "add").inputs[0] == g.find_value("conv2_out"));  // fuses into conv2
  CHECK(node_named(g, "gap").inputs[0] == g.find_value("relu3_fq"));
  CHECK(node_named(g, "fq/relu3").attrs.i("qmax", 0) == 255);
  CHECK(node_named(g, "fq/x").attrs.i("qmin", 0) == -127);  // network input: signed
  CHECK(node_named(g, "fq/relu1").attrs.i("qmin", -1) == 0);  // after ReLU: unsigned
  CHECK(node_named(g, "fq/relu1").attrs.i("qmax", 0) == 255);
  CHECK(node_named(g, "fq/flat").attrs.i("qmin", -1) == 0);  // ReLU -> pool -> flatten
  REQUIRE(r.act_params.size() == 5);
  CHECK(r.act_params.at("relu2").scale == node_named(g, "fq/relu2").attrs.f("scale", 0));

  // Ternary weights, folded: w = s_o[k] * level * t exactly, one level (1..127) per group of 4
  // input channels at each kernel tap, and some channel reaching level 127.
  const Node& c2 = node_named(g, "conv2");
  CHECK(c2.attrs.s("fgq_weight", "") == "ternary");
  CHECK(c2.attrs.i("fgq_group", 0) == 4);
  CHECK(!c2.attrs.has("bn_gamma"));
  const Tensor& w2 = g.const_of(c2.inputs[1]);
  const auto so = c2.attrs.floats("fgq_wscale");
  REQUIRE(so.size() == 8);
  int top = 0;
  for (int k = 0; k < 8; ++k)
    for (int grp = 0; grp < 2; ++grp)
      for (int tap = 0; tap < 9; ++tap) {
        int level = 0;
        for (int c = grp * 4; c < grp * 4 + 4; ++c) {
          const float w = w2.f[(k * 8 + c) * 9 + tap];
          const float q = std::nearbyint(w / so[k]);
          CHECK(so[k] * q == w);
          if (q == 0) continue;
          CHECK((level == 0 || level == std::fabs(q)));
          level = int(std::fabs(q));
        }
        CHECK(level <= 127);
        top = std::max(top, level);
      }
  CHECK(top == 127);
  // 8-bit weights: integer multiples of the per-channel scale.
  const Node& c1 = node_named(g, "conv1");
  CHECK(c1.attrs.s("fgq_weight", "") == "int8");
  const auto ws = c1.attrs.floats("fgq_wscale");
  const Tensor& w1 = g.const_of(c1.inputs[1]);
  for (size_t i = 0; i < w1.f.size(); ++i) {
    const float q = w1.f[i] / ws[i / 27];
    CHECK(std::fabs(q - std::round(q)) < 1e-3f);
    CHECK(std::fabs(q) <= 127.01f);
  }
}

TEST_CASE("quantize: corrected convs reproduce the target statistics on the calibration set") {
  const Graph fp32 = small_net();
  const auto calib = calib_images();
  const auto ref = test::mini_run(fp32, calib.data(), kCalib);
  auto check_matches_fp32 = [&](const Graph& g, const test::MiniActs& out, const char* name) {
    const auto& a = out.at(g.find_value(std::string(name) + "_out"));
    const auto& f = ref.at(fp32.find_value(std::string(name) + "_out"));
    const ChannelMoments m = channel_moments(a.data.data(), a.shape);
    const ChannelMoments mref = channel_moments(f.data.data(), f.shape);
    for (size_t c = 0; c < m.mean.size(); ++c) {
      CHECK(m.mean[c] == Approx(mref.mean[c]).margin(1e-4));
      CHECK(m.var[c] == Approx(mref.var[c]).epsilon(1e-3));
    }
  };
  for (const char* correction : {"fp32", "bn"})
    for (bool gptq : {false, true})
      for (int bits : {0, 8}) {
        Graph g = small_net();
        QuantOptions opt;
        opt.act_bits = bits;
        opt.correction = correction;
        opt.gptq = gptq;
        quantize_graph_with(g, opt, calib.data(), kCalib, test::mini_runner());
        const auto out = test::mini_run(g, calib.data(), kCalib);
        INFO("correction " << correction << ", gptq " << gptq << ", act_bits " << bits);
        for (const char* name : {"conv1", "conv2"}) {
          if (std::string(correction) == "fp32") {
            check_matches_fp32(g, out, name);
            continue;
          }
          // Re-estimated BN: the output mean per channel is beta exactly.
          const auto beta = node_named(fp32, name).attrs.floats("bn_beta");
          const auto& a = out.at(g.find_value(std::string(name) + "_out"));
          const ChannelMoments m = channel_moments(a.data.data(), a.shape);
          for (size_t c = 0; c < beta.size(); ++c) CHECK(m.mean[c] == Approx(beta[c]).margin(1e-4));
        }
        check_matches_fp32(g, out, "conv3");  // no BN: always matched to the FP32 network
      }
}

TEST_CASE("quantize: power-of-two activation scales (dynamic fixed point)") {
  Graph g = small_net();
  const auto calib = calib_images();
  QuantOptions opt;
  opt.pow2_scales = true;
  const QuantReport r = quantize_graph_with(g, opt, calib.data(), kCalib, test::mini_runner());
  REQUIRE(r.act_params.size() == 5);
  for (const auto& [name, p] : r.act_params) {
    int e = 0;
    INFO(name << ": scale " << p.scale);
    CHECK(std::frexp(p.scale, &e) == 0.5f);
  }
  for (const Node& n : g.nodes)
    if (n.op == "FakeQuant") CHECK(r.act_params.at(g.values[n.inputs[0]].name).scale == n.attrs.f("scale", 0));
}

TEST_CASE("quantize: without correction or activation bits no calibration is needed") {
  Graph g = small_net();
  QuantOptions opt;
  opt.stats_correction = false;
  opt.act_bits = 0;
  opt.gptq = false;
  const QuantReport r = quantize_graph_with(g, opt, nullptr, 0, test::mini_runner());
  CHECK(r.corrected_layers == 0);
  CHECK(r.act_params.empty());
  for (const Node& n : g.nodes) CHECK(n.op != "FakeQuant");
  CHECK(node_named(g, "conv2").attrs.has("bn_gamma"));  // untouched
  CHECK(node_named(g, "conv2").attrs.s("fgq_weight", "") == "ternary");
}

TEST_CASE("quantize: ternarize_first/last, 4-bit activations and [in, out] classifier weights") {
  for (Classifier cls : {Classifier::Gemm, Classifier::MatMul}) {
    INFO((cls == Classifier::Gemm ? "Gemm transB=0" : "MatMul"));
    Graph g = small_net(cls);
    const Tensor fc_w = g.const_of(node_named(g, "fc").inputs[1]);  // [in=12, out=10]
    const auto calib = calib_images();
    QuantOptions opt;
    opt.act_bits = 4;
    opt.act_calib = "max";
    opt.stats_correction = false;
    opt.gptq = false;  // the classifier's alphas are compared with plain ternarization
    opt.ternarize_last = true;
    const QuantReport r = quantize_graph_with(g, opt, calib.data(), kCalib, test::mini_runner());
    CHECK(r.layers[0].kind == "int8");
    CHECK(r.layers[3].kind == "ternary");
    CHECK(node_named(g, "fq/x").attrs.i("qmax", 0) == 127);  // feeds the 8-bit first conv
    CHECK(node_named(g, "fq/relu1").attrs.i("qmax", 0) == 15);
    CHECK(node_named(g, "fq/relu3").attrs.i("qmax", 0) == 255);  // only the pool reads it
    CHECK(node_named(g, "fq/flat").attrs.i("qmax", 0) == 15);
    // Groups of the transB=0 classifier run along its inputs: ternarize the [out, in] transpose.
    std::vector<float> t(120);
    for (int i = 0; i < 12; ++i)
      for (int o = 0; o < 10; ++o) t[o * 12 + i] = fc_w.f[i * 10 + o];
    const TernaryWeights ref = ternarize(t.data(), {10, 12}, 4, Threshold::Exact);
    const Int8Weights folded = fold_group_scales(ref, 127);
    CHECK(node_named(g, "fc").attrs.floats("fgq_wscale") == folded.scale);
    const auto deq = folded.dequantize();
    const Tensor& w = g.const_of(node_named(g, "fc").inputs[1]);
    REQUIRE(w.shape == Shape{12, 10});
    for (int i = 0; i < 12; ++i)
      for (int o = 0; o < 10; ++o) CHECK(w.f[i * 10 + o] == deq[o * 12 + i]);
  }
}

TEST_CASE("quantize: every layer ternary counts the removed multiplications exactly") {
  Graph all = small_net();
  QuantOptions opt;
  opt.ternarize_first = opt.ternarize_last = true;
  opt.stats_correction = false;
  opt.act_bits = 0;
  opt.gptq = false;
  const QuantReport ra = quantize_graph_with(all, opt, nullptr, 0, test::mini_runner());
  // conv1 3 channels -> one group of 3 per (k,r,s): 72 groups of 216; fc: 30 of 120.
  CHECK(ra.mults_removed == Approx(1 - (72.0 + 144 + 24 + 30) / (216 + 576 + 96 + 120)));
}

TEST_CASE("quantize: invalid options and graphs are errors") {
  const auto calib = calib_images();
  Graph g = small_net();
  QuantOptions opt;
  opt.act_bits = 3;
  CHECK_THROWS_AS(quantize_graph_with(g, opt, calib.data(), kCalib, test::mini_runner()), Error);
  opt = QuantOptions{};
  opt.threshold = "median";
  CHECK_THROWS_AS(quantize_graph_with(g, opt, calib.data(), kCalib, test::mini_runner()), Error);
  opt = QuantOptions{};
  CHECK_THROWS_AS(quantize_graph_with(g, opt, nullptr, 0, test::mini_runner()), Error);
  quantize_graph_with(g, opt, calib.data(), kCalib, test::mini_runner());
  CHECK_THROWS_WITH(quantize_graph_with(g, opt, calib.data(), kCalib, test::mini_runner()),
                    Catch::Contains("already quantized"));
}

TEST_CASE("quantize: a quantized graph survives ONNX export and import (--save-quant)") {
  Graph g = small_net();
  const auto calib = calib_images();
  QuantOptions opt;
  opt.act_bits = 4;
  quantize_graph_with(g, opt, calib.data(), kCalib, test::mini_runner());
  const std::string bytes = export_onnx_bytes(g);
  const Graph back = import_onnx_bytes(bytes.data(), bytes.size(), "quantized");
  REQUIRE(back.nodes.size() == g.nodes.size());
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    const Node &a = g.nodes[k], &b = back.nodes[k];
    INFO(a.name);
    CHECK(a.op == b.op);
    CHECK(a.attrs.all().size() == b.attrs.all().size());
    for (const char* key : {"scale", "qmin", "qmax", "bits", "fgq_group", "fgq_weight"})
      CHECK(a.attrs.has(key) == b.attrs.has(key));
    CHECK(a.attrs.f("scale", 0) == b.attrs.f("scale", 0));
    CHECK(a.attrs.i("qmin", 0) == b.attrs.i("qmin", 0));
    CHECK(a.attrs.floats("fgq_wscale") == b.attrs.floats("fgq_wscale"));
    for (size_t i = 1; i < a.inputs.size(); ++i)
      if (g.values[a.inputs[i]].is_const())  // the dequantized weights and biases
        CHECK(g.const_of(a.inputs[i]).f == back.const_of(b.inputs[i]).f);
  }
  // Already quantized: quantizing it again is refused.
  Graph again = back;
  CHECK_THROWS_WITH(quantize_graph_with(again, opt, calib.data(), kCalib, test::mini_runner()),
                    Catch::Matchers::Contains("already quantized"));
}
