// The ops the ONNX conformance work added or widened, end to end (ONNX model -> import -> prepare
// -> executor) against plain-loop references: numpy-broadcast binary ops on activations,
// Concat / Transpose / Gather / Slice / Split, Softmax and LogSoftmax on any non-batch axis,
// dilated pooling, reflect/edge Pad, element-wise activations, reductions, 1-D Conv/MaxPool, the
// opset 1-6 forms, and the executor refusing constant outputs. Odd sizes, batch 3 vs batch 1.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>
#include <string>
#include <vector>

#include "fgq/fgq.h"
#include "graph/error.h"
#include "graph/onnx_import.h"
#include "graph/prepare.h"
#include "runtime/executor.h"
#include "runtime/run_graph.h"
#include "support/onnx_builder.h"
#include "graph/ir.h"
#include "support/test_util.h"

namespace {

using fgq::Shape;
using fgq::test::OnnxBuilder;
using fgq::test::random_floats;
using Catch::Matchers::Contains;

struct Result {
  std::vector<float> y;
  Shape shape;
};

// Imports, prepares and runs the model at `batch` (executor sized for max(batch, 2), so it also
// checks that every activation scales with the batch).
Result run(const OnnxBuilder& b, const std::vector<float>& x, int batch) {
  const std::string bytes = b.bytes();
  fgq::Graph g = fgq::prepare_graph(fgq::import_onnx_bytes(bytes.data(), bytes.size(), "m.onnx"), false);
  fgq::RunGraph rg = fgq::make_run_graph(std::move(g));
  fgq::Executor ex(rg.graph, std::max(batch, 2));
  ex.run(x.data(), batch);
  Result r;
  r.shape = ex.output_shape(0, batch);
  r.y.assign(ex.output(0), ex.output(0) + fgq::numel(r.shape));
  return r;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const fgq::Error& e) {
    return e.what();
  }
  return "(no error)";
}

void require_close(const std::vector<float>& got, const std::vector<float>& want, double tol = 1e-5) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i);
    if (std::isnan(want[i]))
      REQUIRE(std::isnan(got[i]));
    else
      REQUIRE(got[i] == Approx(want[i]).epsilon(tol).margin(tol));
  }
}

}  // namespace

TEST_CASE("widened ops: broadcast binary ops on two activations and on constants") {
  const Shape xs{3, 5, 7, 9};
  const auto x = random_floats(size_t(fgq::numel(xs)), 1);
  const auto c = random_floats(5, 2, 0.5f, 2.f);
  // SE-style: s = GlobalAveragePool(x) [N,5,1,1]; y = (c - x) * s / c  (constant on the left).
  OnnxBuilder b;
  b.input("x", {1, 5, 7, 9}).output("y");
  b.init_f32("c", {5, 1, 1}, c);
  b.node("GlobalAveragePool", {"x"}, {"s"});
  b.node("Sub", {"c", "x"}, {"d"});
  b.node("Mul", {"d", "s"}, {"m"});
  b.node("Div", {"m", "c"}, {"y"});
  std::vector<float> want(x.size());
  for (int64_t n = 0; n < 3; ++n)
    for (int64_t ch = 0; ch < 5; ++ch) {
      const float* xp = x.data() + (n * 5 + ch) * 63;
      double mean = 0;
      for (int k = 0; k < 63; ++k) mean += xp[k];
      mean /= 63;
      for (int k = 0; k < 63; ++k)
        want[size_t((n * 5 + ch) * 63 + k)] = float((c[size_t(ch)] - xp[k]) * float(mean) / c[size_t(ch)]);
    }
  const Result r = run(b, x, 3);
  REQUIRE(r.shape == xs);
  require_close(r.y, want);
  // Batch 1 gives the first image.
  const Result r1 = run(b, std::vector<float>(x.begin(), x.begin() + 315), 1);
  require_close(r1.y, std::vector<float>(want.begin(), want.begin() + 315));

  // Pow / Max / Min / PRelu with a broadcast constant of lower rank.
  for (const char* op : {"Pow", "Max", "Min", "PRelu", "Add"}) {
    INFO(op);
    const auto k = random_floats(9, 3, 0.5f, 1.5f);
    OnnxBuilder m;
    m.input("x", {1, 5, 7, 9}).output("y");
    m.init_f32("k", {9}, k);
    m.node(op, {"x", "k"}, {"y"});
    std::vector<float> w(x.size());
    for (size_t i = 0; i < x.size(); ++i) {
      const float a = x[i], v = k[i % 9];
      const std::string o = op;
      w[i] = o == "Pow" ? std::pow(a, v) : o == "Max" ? std::max(a, v) : o == "Min" ? std::min(a, v)
           : o == "PRelu" ? (a < 0 ? a * v : a) : a + v;
    }
    require_close(run(m, x, 3).y, w);
  }
}

TEST_CASE("widened ops: a broadcast that would move the batch axis is an error") {
  OnnxBuilder b;
  b.input("x", {1, 4}).output("y");
  b.init_f32("k", {3, 1, 4}, std::vector<float>(12, 1.f));
  b.node("Add", {"x", "k"}, {"y"});
  CHECK_THAT(error_of([&] { run(b, std::vector<float>(8, 1.f), 2); }), Contains("batch"));
}

TEST_CASE("widened ops: Concat, Transpose, Gather, Slice and Split on activations") {
  const Shape xs{3, 4, 5, 7};
  const auto x = random_floats(size_t(fgq::numel(xs)), 4);
  OnnxBuilder b;
  b.input("x", {1, 4, 5, 7}).output("y");
  b.node("Relu", {"x"}, {"r"});
  b.node("Concat", {"x", "r"}, {"c"}).i("axis", 1);                   // [N,8,5,7]
  b.node("Transpose", {"c"}, {"t"}).ints("perm", {0, 2, 3, 1});       // [N,5,7,8]
  b.init_i64("idx", {2}, {-1, 2});
  b.node("Gather", {"t", "idx"}, {"g"}).i("axis", 2);                 // [N,5,2,8]
  b.init_i64("st", {2}, {7, 4}).init_i64("en", {2}, {0, 0}).init_i64("ax", {2}, {3, 1}).init_i64("sp", {2}, {-2, -3});
  b.node("Slice", {"g", "st", "en", "ax", "sp"}, {"s"});              // [N,2,2,4]: ch 7,5,3,1; rows 4,1
  b.init_i64("parts", {2}, {1, 3});
  b.node("Split", {"s", "parts"}, {"lo", "y"}).i("axis", 3);          // y: [N,2,2,3]
  std::vector<float> want;
  for (int64_t n = 0; n < 3; ++n)
    for (int64_t h : {4, 1})
      for (int64_t w : {6, 2})            // gather indices -1 (=6), 2 of the W axis
        for (int64_t ch : {5, 3, 1}) {    // slice of channels 7,5,3,1 minus the first part
          const int64_t src_ch = ch % 4;  // concat: channel ch of [x, relu(x)]
          const float v = x[size_t(((n * 4 + src_ch) * 5 + h) * 7 + w)];
          want.push_back(ch < 4 ? v : std::max(v, 0.f));
        }
  const Result r = run(b, x, 3);
  REQUIRE(r.shape == Shape{3, 2, 2, 3});
  require_close(r.y, want);
}

TEST_CASE("widened ops: Softmax and LogSoftmax over a middle axis, and the opset-11 2-D form") {
  const Shape xs{3, 4, 5, 3};
  const auto x = random_floats(size_t(fgq::numel(xs)), 5, -4.f, 4.f);
  for (bool log : {false, true}) {
    for (int opset : {13, 11}) {
      INFO((log ? "LogSoftmax" : "Softmax") << " opset " << opset);
      OnnxBuilder b(opset);
      b.input("x", {1, 4, 5, 3}).output("y");
      b.node(log ? "LogSoftmax" : "Softmax", {"x"}, {"y"}).i("axis", 1);
      // Opset 13: over axis 1 alone; opset 11: over axes 1..3 flattened.
      std::vector<float> want(x.size());
      for (int64_t n = 0; n < 3; ++n)
        for (int64_t i = 0; i < (opset == 13 ? 15 : 1); ++i) {
          const int64_t len = opset == 13 ? 4 : 60, stride = opset == 13 ? 15 : 1;
          const int64_t base = n * 60 + i;
          double mx = -1e30, sum = 0;
          for (int64_t j = 0; j < len; ++j) mx = std::max(mx, double(x[size_t(base + j * stride)]));
          for (int64_t j = 0; j < len; ++j) sum += std::exp(x[size_t(base + j * stride)] - mx);
          for (int64_t j = 0; j < len; ++j) {
            const double v = x[size_t(base + j * stride)] - mx;
            want[size_t(base + j * stride)] = float(log ? v - std::log(sum) : std::exp(v) / sum);
          }
        }
      require_close(run(b, x, 3).y, want);
    }
  }
}

TEST_CASE("widened ops: dilated MaxPool and AveragePool through the executor") {
  const Shape xs{2, 3, 11, 13};
  const auto x = random_floats(size_t(fgq::numel(xs)), 6);
  for (const char* op : {"MaxPool", "AveragePool"}) {
    INFO(op);
    OnnxBuilder b(19);
    b.input("x", {1, 3, 11, 13}).output("y");
    b.node(op, {"x"}, {"y"}).ints("kernel_shape", {3, 2}).ints("dilations", {2, 3}).ints("strides", {2, 1})
        .ints("pads", {1, 0, 2, 1});
    // Window spans 5 x 4: output 5 x 11.
    const int OH = (11 + 3 - 5) / 2 + 1, OW = (13 + 1 - 4) / 1 + 1;
    std::vector<float> want;
    for (int n = 0; n < 2; ++n)
      for (int c = 0; c < 3; ++c)
        for (int oh = 0; oh < OH; ++oh)
          for (int ow = 0; ow < OW; ++ow) {
            float mx = -INFINITY;
            double sum = 0;
            int cnt = 0;
            for (int i = 0; i < 3; ++i)
              for (int j = 0; j < 2; ++j) {
                const int h = oh * 2 - 1 + i * 2, w = ow - 0 + j * 3;
                if (h < 0 || h >= 11 || w < 0 || w >= 13) continue;
                const float v = x[size_t(((n * 3 + c) * 11 + h) * 13 + w)];
                mx = std::max(mx, v), sum += v, ++cnt;
              }
            want.push_back(std::string(op) == "MaxPool" ? mx : float(sum / cnt));
          }
    const Result r = run(b, x, 2);
    REQUIRE(r.shape == Shape{2, 3, OH, OW});
    require_close(r.y, want);
  }
}

TEST_CASE("widened ops: reflect and edge Pad match numpy's modes") {
  const Shape xs{2, 2, 3, 4};
  const auto x = random_floats(size_t(fgq::numel(xs)), 7);
  auto reflect = [](int i, int n) {
    while (i < 0 || i >= n) i = i < 0 ? -i : 2 * (n - 1) - i;
    return i;
  };
  for (const char* mode : {"reflect", "edge"}) {
    INFO(mode);
    OnnxBuilder b;
    b.input("x", {1, 2, 3, 4}).output("y");
    b.init_i64("p", {8}, {0, 0, 2, 3, 0, 0, 1, 5});
    b.node("Pad", {"x", "p"}, {"y"}).s("mode", mode);
    std::vector<float> want;
    for (int n = 0; n < 2; ++n)
      for (int c = 0; c < 2; ++c)
        for (int h = -2; h < 3 + 1; ++h)
          for (int w = -3; w < 4 + 5; ++w) {
            const bool edge = std::string(mode) == "edge";
            const int sh = edge ? std::clamp(h, 0, 2) : reflect(h, 3), sw = edge ? std::clamp(w, 0, 3) : reflect(w, 4);
            want.push_back(x[size_t(((n * 2 + c) * 3 + sh) * 4 + sw)]);
          }
    const Result r = run(b, x, 2);
    REQUIRE(r.shape == Shape{2, 2, 6, 12});
    require_close(r.y, want);
  }
}

TEST_CASE("widened ops: element-wise activations match std:: references") {
  const auto x = random_floats(3 * 7 * 11, 8, -3.f, 3.f);
  struct Op {
    const char* name;
    std::function<double(double)> f;
    float alpha = NAN, beta = NAN;
  };
  const std::vector<Op> ops = {
      {"Sigmoid", [](double v) { return 1 / (1 + std::exp(-v)); }},
      {"Tanh", [](double v) { return std::tanh(v); }},
      {"LeakyRelu", [](double v) { return v < 0 ? 0.1 * v : v; }, 0.1f},
      {"HardSigmoid", [](double v) { return std::clamp(0.3 * v + 0.4, 0.0, 1.0); }, 0.3f, 0.4f},
      {"HardSwish", [](double v) { return v * std::clamp(v / 6 + 0.5, 0.0, 1.0); }},
      {"Elu", [](double v) { return v < 0 ? 0.7 * (std::exp(v) - 1) : v; }, 0.7f},
      {"Celu", [](double v) { return std::max(0.0, v) + std::min(0.0, 1.5 * (std::exp(v / 1.5) - 1)); }, 1.5f},
      {"Selu", [](double v) { return v <= 0 ? 1.0507009873554805 * 1.6732632423543772 * (std::exp(v) - 1) : 1.0507009873554805 * v; }},
      {"ThresholdedRelu", [](double v) { return v > 0.5 ? v : 0; }, 0.5f},
      {"Softplus", [](double v) { return std::log1p(std::exp(v)); }},
      {"Softsign", [](double v) { return v / (1 + std::fabs(v)); }},
      {"Neg", [](double v) { return -v; }},
      {"Abs", [](double v) { return std::fabs(v); }},
      {"Exp", [](double v) { return std::exp(v); }},
      {"Log", [](double v) { return std::log(v); }},
      {"Sqrt", [](double v) { return std::sqrt(v); }},
      {"Reciprocal", [](double v) { return 1 / v; }},
      {"Floor", [](double v) { return std::floor(v); }},
      {"Ceil", [](double v) { return std::ceil(v); }},
      {"Round", [](double v) { return std::nearbyint(v); }},
      {"Erf", [](double v) { return std::erf(v); }},
  };
  for (const Op& op : ops) {
    INFO(op.name);
    OnnxBuilder b;
    b.input("x", {1, 7, 11}).output("y");
    auto n = b.node(op.name, {"x"}, {"y"});
    if (!std::isnan(op.alpha)) n.f("alpha", op.alpha);
    if (!std::isnan(op.beta)) n.f("beta", op.beta);
    std::vector<float> want;
    for (float v : x) want.push_back(float(op.f(v)));
    require_close(run(b, x, 3).y, want, 2e-5);
  }
  // Clip: attributes before opset 11, constant inputs after.
  std::vector<float> clipped;
  for (float v : x) clipped.push_back(std::clamp(v, -0.5f, 1.25f));
  OnnxBuilder c6(6);
  c6.input("x", {1, 7, 11}).output("y");
  c6.node("Clip", {"x"}, {"y"}).f("min", -0.5f).f("max", 1.25f);
  require_close(run(c6, x, 3).y, clipped);
  OnnxBuilder c13;
  c13.input("x", {1, 7, 11}).output("y");
  c13.init_f32("lo", {}, {-0.5f}).init_f32("hi", {}, {1.25f});
  c13.node("Clip", {"x", "lo", "hi"}, {"y"});
  require_close(run(c13, x, 3).y, clipped);
}

TEST_CASE("widened ops: reductions over non-batch axes, GlobalMaxPool, and the batch axis refused") {
  const Shape xs{3, 4, 5, 6};
  const auto x = random_floats(size_t(fgq::numel(xs)), 9, 0.1f, 2.f);
  // ReduceMean over axes {1, 3}, keepdims 1 and 0.
  for (int keep : {1, 0}) {
    OnnxBuilder b;
    b.input("x", {1, 4, 5, 6}).output("y");
    b.node("ReduceMean", {"x"}, {"y"}).ints("axes", {3, -3}).i("keepdims", keep);
    std::vector<float> want;
    for (int n = 0; n < 3; ++n)
      for (int h = 0; h < 5; ++h) {
        double s = 0;
        for (int c = 0; c < 4; ++c)
          for (int w = 0; w < 6; ++w) s += x[size_t(((n * 4 + c) * 5 + h) * 6 + w)];
        want.push_back(float(s / 24));
      }
    const Result r = run(b, x, 3);
    REQUIRE(r.shape == (keep ? Shape{3, 1, 5, 1} : Shape{3, 5}));
    require_close(r.y, want);
  }
  // Every reduction over axis 2 (opset 13 ReduceSum takes the axes as an input).
  const std::vector<std::pair<std::string, std::function<double(const std::vector<double>&)>>> red = {
      {"ReduceSum", [](const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0); }},
      {"ReduceMax", [](const std::vector<double>& v) { return *std::max_element(v.begin(), v.end()); }},
      {"ReduceMin", [](const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); }},
      {"ReduceProd", [](const std::vector<double>& v) { double p = 1; for (double a : v) p *= a; return p; }},
      {"ReduceL1", [](const std::vector<double>& v) { double p = 0; for (double a : v) p += std::fabs(a); return p; }},
      {"ReduceL2", [](const std::vector<double>& v) { double p = 0; for (double a : v) p += a * a; return std::sqrt(p); }},
      {"ReduceSumSquare", [](const std::vector<double>& v) { double p = 0; for (double a : v) p += a * a; return p; }},
      {"ReduceLogSum", [](const std::vector<double>& v) { return std::log(std::accumulate(v.begin(), v.end(), 0.0)); }},
      {"ReduceLogSumExp", [](const std::vector<double>& v) { double p = 0; for (double a : v) p += std::exp(a); return std::log(p); }},
  };
  for (const auto& [op, f] : red) {
    INFO(op);
    OnnxBuilder b;
    b.input("x", {1, 4, 5, 6}).output("y");
    if (op == "ReduceSum") {
      b.init_i64("axes", {1}, {2});
      b.node(op, {"x", "axes"}, {"y"});
    } else {
      b.node(op, {"x"}, {"y"}).ints("axes", {2});
    }
    std::vector<float> want;
    for (int n = 0; n < 3; ++n)
      for (int c = 0; c < 4; ++c)
        for (int w = 0; w < 6; ++w) {
          std::vector<double> v;
          for (int h = 0; h < 5; ++h) v.push_back(x[size_t(((n * 4 + c) * 5 + h) * 6 + w)]);
          want.push_back(float(f(v)));
        }
    require_close(run(b, x, 3).y, want, 1e-5);
  }
  OnnxBuilder g;
  g.input("x", {1, 4, 5, 6}).output("y");
  g.node("GlobalMaxPool", {"x"}, {"y"});
  std::vector<float> gmax;
  for (int nc = 0; nc < 12; ++nc) gmax.push_back(*std::max_element(x.begin() + nc * 30, x.begin() + nc * 30 + 30));
  const Result r = run(g, x, 3);
  REQUIRE(r.shape == Shape{3, 4, 1, 1});
  require_close(r.y, gmax);

  OnnxBuilder all;
  all.input("x", {1, 4, 5, 6}).output("y");
  all.node("ReduceMean", {"x"}, {"y"});
  CHECK_THAT(error_of([&] { run(all, x, 3); }), Contains("batch"));
}

TEST_CASE("widened ops: 1-D Conv and MaxPool run as 2-D ops over [N, C, 1, L]") {
  const int C = 3, L = 17, K = 4, k = 3;
  const auto x = random_floats(size_t(2 * C * L), 10);
  const auto w = random_floats(size_t(K * C * k), 11);
  const auto bias = random_floats(size_t(K), 12);
  OnnxBuilder b(6);
  b.input("x", {1, C, L}).output("y");
  b.init_f32("w", {K, C, k}, w).init_f32("b", {K}, bias);
  b.node("Conv", {"x", "w", "b"}, {"c"}).ints("pads", {2, 1}).ints("strides", {2}).ints("dilations", {2});
  b.node("MaxPool", {"c"}, {"y"}).ints("kernel_shape", {2}).ints("strides", {1});
  const int CL = (L + 3 - 5) / 2 + 1, PL = CL - 1;
  std::vector<float> conv(size_t(2 * K * CL));
  for (int n = 0; n < 2; ++n)
    for (int o = 0; o < K; ++o)
      for (int t = 0; t < CL; ++t) {
        double s = bias[size_t(o)];
        for (int c = 0; c < C; ++c)
          for (int j = 0; j < k; ++j) {
            const int p = t * 2 - 2 + j * 2;
            if (p >= 0 && p < L) s += double(x[size_t((n * C + c) * L + p)]) * w[size_t((o * C + c) * k + j)];
          }
        conv[size_t((n * K + o) * CL + t)] = float(s);
      }
  std::vector<float> want;
  for (int nk = 0; nk < 2 * K; ++nk)
    for (int t = 0; t < PL; ++t) want.push_back(std::max(conv[size_t(nk * CL + t)], conv[size_t(nk * CL + t + 1)]));
  const Result r = run(b, x, 2);
  REQUIRE(r.shape == Shape{2, K, PL});
  require_close(r.y, want, 1e-4);
}

TEST_CASE("widened ops: opset 1-6 forms (broadcast axis, Reshape/Pad attributes, Cast names, BN, PRelu)") {
  const Shape xs{2, 3, 4, 5};
  const auto x = random_floats(size_t(fgq::numel(xs)), 13);
  const std::vector<float> bvec{0.5f, -1.f, 2.f}, scale{1.f, 2.f, 0.5f}, shift{0.1f, 0.2f, 0.3f}, mean{0.f, 0.5f, -0.5f},
      var{1.f, 2.f, 0.25f}, slope{0.1f, 0.2f, 0.3f};
  OnnxBuilder b(1);
  b.input("x", {1, 3, 4, 5}).output("y");
  b.init_f32("bv", {3}, bvec).init_f32("s", {3}, scale).init_f32("sh", {3}, shift).init_f32("m", {3}, mean)
      .init_f32("v", {3}, var).init_f32("sl", {3}, slope);
  b.node("Add", {"x", "bv"}, {"a"}).i("broadcast", 1).i("axis", 1).ints("consumed_inputs", {0, 0});  // per channel
  b.node("BatchNormalization", {"a", "s", "sh", "m", "v"}, {"bn"}).i("is_test", 1).i("spatial", 1).f("epsilon", 1e-3f);
  b.node("PRelu", {"bn", "sl"}, {"pr"});                                                               // slope per channel
  b.node("Pad", {"pr"}, {"p"}).ints("paddings", {0, 0, 1, 0, 0, 0, 0, 1}).f("value", 0.25f);           // [N,3,5,6]
  b.node("Cast", {"p"}, {"cf"}).s("to", "FLOAT");
  b.node("Reshape", {"cf"}, {"r"}).ints("shape", {0, 15, 6});                                         // [N,15,6]
  b.node("Concat", {"r", "r"}, {"y"});                                                                 // axis 1: [N,30,6]
  std::vector<float> img(size_t(2 * 3 * 5 * 6));
  for (int n = 0; n < 2; ++n)
    for (int c = 0; c < 3; ++c)
      for (int h = 0; h < 5; ++h)
        for (int w = 0; w < 6; ++w) {
          float v = 0.25f;
          if (h >= 1 && w < 5) {
            const double a = x[size_t(((n * 3 + c) * 4 + (h - 1)) * 5 + w)] + bvec[size_t(c)];
            const double bn = (a - mean[size_t(c)]) / std::sqrt(var[size_t(c)] + 1e-3) * scale[size_t(c)] + shift[size_t(c)];
            v = float(bn < 0 ? bn * slope[size_t(c)] : bn);
          }
          img[size_t(((n * 3 + c) * 5 + h) * 6 + w)] = v;
        }
  std::vector<float> want;
  for (int n = 0; n < 2; ++n)
    for (int rep = 0; rep < 2; ++rep) want.insert(want.end(), img.begin() + n * 90, img.begin() + n * 90 + 90);
  const Result r = run(b, x, 2);
  REQUIRE(r.shape == Shape{2, 30, 6});
  require_close(r.y, want);
}

TEST_CASE("widened ops: an output folded to a constant is refused, by the executor and by Session") {
  // Shape(x)[1:] cast to float is a constant [2]: it has no batch dimension, and Session::run
  // used to copy batch x 2 floats out of it.
  OnnxBuilder b(15);
  b.input("x", {1, 4, 5}).output("y");
  b.node("Shape", {"x"}, {"s"}).i("start", 1);
  b.node("Cast", {"s"}, {"y"}).i("to", 1);
  CHECK_THAT(error_of([&] { run(b, std::vector<float>(40, 1.f), 2); }),
             Contains("executor: output 'y' is a constant (it does not depend on the input)"));
  const std::string bytes = b.bytes();
  CHECK_THAT(error_of([&] {
               fgq::Model m = fgq::Model::load_from_memory(bytes.data(), bytes.size(), "m.onnx");
               fgq::Session s(m, 2);
             }),
             Contains("is a constant"));
}

TEST_CASE("widened ops: DepthToSpace (DCR, CRD) and SpaceToDepth invert each other") {
  const Shape xs{2, 8, 3, 5};
  const auto x = random_floats(size_t(fgq::numel(xs)), 14);
  for (const char* mode : {"DCR", "CRD"}) {
    INFO(mode);
    OnnxBuilder b;
    b.input("x", {1, 8, 3, 5}).output("y");
    b.node("DepthToSpace", {"x"}, {"d"}).i("blocksize", 2).s("mode", mode);
    b.node("Identity", {"d"}, {"y"});
    // ONNX: DCR reads channel (i * 2 + j) * 2 + c, CRD channel (c * 2 + i) * 2 + j for output
    // channel c at (h * 2 + i, w * 2 + j).
    std::vector<float> want;
    for (int n = 0; n < 2; ++n)
      for (int c = 0; c < 2; ++c)
        for (int oh = 0; oh < 6; ++oh)
          for (int ow = 0; ow < 10; ++ow) {
            const int i = oh % 2, j = ow % 2, h = oh / 2, w = ow / 2;
            const int ch = std::string(mode) == "DCR" ? (i * 2 + j) * 2 + c : (c * 2 + i) * 2 + j;
            want.push_back(x[size_t(((n * 8 + ch) * 3 + h) * 5 + w)]);
          }
    const Result r = run(b, x, 2);
    REQUIRE(r.shape == Shape{2, 2, 6, 10});
    require_close(r.y, want);
  }
  OnnxBuilder round;  // SpaceToDepth(DepthToSpace DCR) is the identity
  round.input("x", {1, 8, 3, 5}).output("y");
  round.node("DepthToSpace", {"x"}, {"d"}).i("blocksize", 2);
  round.node("SpaceToDepth", {"d"}, {"y"}).i("blocksize", 2);
  require_close(run(round, x, 2).y, x);
}

TEST_CASE("widened ops: LRN and InstanceNormalization through the executor") {
  const Shape xs{2, 5, 3, 4};
  const auto x = random_floats(size_t(fgq::numel(xs)), 15);
  OnnxBuilder b;
  b.input("x", {1, 5, 3, 4}).output("y");
  b.init_f32("s", {5}, {1.f, 2.f, 0.5f, -1.f, 3.f}).init_f32("b", {5}, {0.f, 0.1f, 0.2f, 0.3f, 0.4f});
  b.node("LRN", {"x"}, {"l"}).i("size", 3).f("alpha", 0.5f).f("beta", 0.6f).f("bias", 2.f);
  b.node("InstanceNormalization", {"l", "s", "b"}, {"y"}).f("epsilon", 1e-4f);
  const std::vector<float> sc{1.f, 2.f, 0.5f, -1.f, 3.f}, sh{0.f, 0.1f, 0.2f, 0.3f, 0.4f};
  std::vector<float> want(x.size());
  for (int n = 0; n < 2; ++n) {
    std::vector<double> l(60);
    for (int c = 0; c < 5; ++c)
      for (int i = 0; i < 12; ++i) {
        double sq = 0;
        for (int j = std::max(0, c - 1); j <= std::min(4, c + 1); ++j) sq += std::pow(x[size_t((n * 5 + j) * 12 + i)], 2);
        l[size_t(c * 12 + i)] = x[size_t((n * 5 + c) * 12 + i)] / std::pow(2 + 0.5 / 3 * sq, 0.6);
      }
    for (int c = 0; c < 5; ++c) {
      double mean = 0, var = 0;
      for (int i = 0; i < 12; ++i) mean += l[size_t(c * 12 + i)] / 12;
      for (int i = 0; i < 12; ++i) var += std::pow(l[size_t(c * 12 + i)] - mean, 2) / 12;
      for (int i = 0; i < 12; ++i)
        want[size_t((n * 5 + c) * 12 + i)] = float(sc[size_t(c)] * (l[size_t(c * 12 + i)] - mean) / std::sqrt(var + 1e-4) + sh[size_t(c)]);
    }
  }
  require_close(run(b, x, 2).y, want, 1e-4);
}

TEST_CASE("widened ops: Resize (opset 13 scales) and Upsample (opset 9) through the executor") {
  const Shape xs{2, 3, 3, 4};
  const auto x = random_floats(size_t(fgq::numel(xs)), 16);
  // Upsample x2 nearest: asymmetric coordinates, rounding down: y[h][w] = x[h / 2][w / 2].
  OnnxBuilder up(9);
  up.input("x", {1, 3, 3, 4}).output("y");
  up.init_f32("sc", {4}, {1.f, 1.f, 2.f, 2.f});
  up.node("Upsample", {"x", "sc"}, {"y"}).s("mode", "nearest");
  std::vector<float> want;
  for (int nc = 0; nc < 6; ++nc)
    for (int h = 0; h < 6; ++h)
      for (int w = 0; w < 8; ++w) want.push_back(x[size_t((nc * 3 + h / 2) * 4 + w / 2)]);
  const Result r = run(up, x, 2);
  REQUIRE(r.shape == Shape{2, 3, 6, 8});
  require_close(r.y, want);
  // Bilinear, align_corners, x2 along W only: y[h][w] interpolates x[h] at w * 3 / 7.
  OnnxBuilder rs;
  rs.input("x", {1, 3, 3, 4}).output("y");
  rs.init_f32("roi", {0}, {}).init_f32("sc", {4}, {1.f, 1.f, 1.f, 2.f});
  rs.node("Resize", {"x", "roi", "sc"}, {"y"}).s("mode", "linear").s("coordinate_transformation_mode", "align_corners");
  want.clear();
  for (int nc = 0; nc < 6; ++nc)
    for (int h = 0; h < 3; ++h)
      for (int w = 0; w < 8; ++w) {
        const double s = w * 3.0 / 7.0;
        const int lo = std::min(int(std::floor(s)), 3), hi = std::min(lo + 1, 3);
        const double f = s - lo;
        const float* row = x.data() + (nc * 3 + h) * 4;
        want.push_back(float(row[lo] * (1 - f) + row[hi] * f));
      }
  require_close(run(rs, x, 2).y, want);
  // sizes that would change the channel count are refused.
  OnnxBuilder bad;
  bad.input("x", {1, 3, 3, 4}).output("y");
  bad.init_f32("roi", {0}, {}).init_f32("sc", {0}, {}).init_i64("sz", {4}, {1, 6, 6, 8});
  bad.node("Resize", {"x", "roi", "sc", "sz"}, {"y"});
  CHECK_THAT(error_of([&] { run(bad, x, 1); }), Contains("resizing the batch or channel axis is not supported"));
}

TEST_CASE("widened ops: ConvTranspose, 2-D with output_shape and 1-D lifted") {
  // 2-D: C=2 -> K=4 (group 2), stride 2, output_shape [8, 9] (pads derived).
  const auto x = random_floats(2 * 2 * 3 * 4, 17);
  const auto w = random_floats(2 * 2 * 3 * 3, 18);
  OnnxBuilder b;
  b.input("x", {1, 2, 3, 4}).output("y");
  b.init_f32("w", {2, 2, 3, 3}, w);
  b.node("ConvTranspose", {"x", "w"}, {"y"}).i("group", 2).ints("strides", {2, 2}).ints("output_shape", {8, 9});
  // Full output 7 x 9; output_shape 8 x 9: total padding -1 along H, 0 along W -> pads end -1.
  std::vector<double> want(size_t(2 * 4 * 8 * 9), 0.0);
  for (int n = 0; n < 2; ++n)
    for (int c = 0; c < 2; ++c)
      for (int h = 0; h < 3; ++h)
        for (int ww = 0; ww < 4; ++ww)
          for (int kk = 0; kk < 2; ++kk)
            for (int i = 0; i < 3; ++i)
              for (int j = 0; j < 3; ++j) {
                const int oh = h * 2 + i, ow = ww * 2 + j, k = c * 2 + kk;
                want[size_t(((n * 4 + k) * 8 + oh) * 9 + ow)] +=
                    double(x[size_t(((n * 2 + c) * 3 + h) * 4 + ww)]) * w[size_t(((c * 2 + kk) * 3 + i) * 3 + j)];
              }
  const Result r = run(b, x, 2);
  REQUIRE(r.shape == Shape{2, 4, 8, 9});
  require_close(r.y, std::vector<float>(want.begin(), want.end()), 1e-4);

  // 1-D: [N, 2, 5] -> [N, 3, L], stride 3, pads [1, 0], output_padding 1.
  const auto x1 = random_floats(2 * 2 * 5, 19);
  const auto w1 = random_floats(2 * 3 * 2, 20);
  OnnxBuilder b1;
  b1.input("x", {1, 2, 5}).output("y");
  b1.init_f32("w", {2, 3, 2}, w1).init_f32("bias", {3}, {0.5f, -0.5f, 1.f});
  b1.node("ConvTranspose", {"x", "w", "bias"}, {"y"}).ints("strides", {3}).ints("pads", {1, 0}).ints("output_padding", {1});
  const int L = 3 * 4 + 1 + 2 - 1;  // 14
  std::vector<double> want1(size_t(2 * 3 * L));
  for (int n = 0; n < 2; ++n)
    for (int k = 0; k < 3; ++k)
      for (int t = 0; t < L; ++t) want1[size_t((n * 3 + k) * L + t)] = k == 0 ? 0.5 : k == 1 ? -0.5 : 1.0;
  for (int n = 0; n < 2; ++n)
    for (int c = 0; c < 2; ++c)
      for (int p = 0; p < 5; ++p)
        for (int k = 0; k < 3; ++k)
          for (int j = 0; j < 2; ++j) {
            const int t = p * 3 - 1 + j;
            if (t >= 0 && t < L) want1[size_t((n * 3 + k) * L + t)] += double(x1[size_t((n * 2 + c) * 5 + p)]) * w1[size_t((c * 3 + k) * 2 + j)];
          }
  const Result r1 = run(b1, x1, 2);
  REQUIRE(r1.shape == Shape{2, 3, L});
  require_close(r1.y, std::vector<float>(want1.begin(), want1.end()), 1e-4);
}

TEST_CASE("widened ops: Split without sizes, and Sum / Mean / Max of three inputs") {
  const Shape xs{2, 6, 5};
  const auto x = random_floats(size_t(fgq::numel(xs)), 21);
  OnnxBuilder b(11);
  b.input("x", {1, 6, 5}).output("y");
  b.node("Split", {"x"}, {"a", "b", "c"}).i("axis", 1);  // three [N, 2, 5] parts
  b.node("Sum", {"a", "b", "c"}, {"s"});
  b.node("Mean", {"a", "b", "c"}, {"m"});
  b.node("Max", {"a", "b", "c"}, {"mx"});
  b.node("Sum", {"s", "m", "mx"}, {"t"});
  b.node("Min", {"t"}, {"y"});  // one input: a copy
  std::vector<float> want;
  for (int n = 0; n < 2; ++n)
    for (int i = 0; i < 10; ++i) {
      const float a = x[size_t(n * 30 + i)], bb = x[size_t(n * 30 + 10 + i)], c = x[size_t(n * 30 + 20 + i)];
      const float s = a + bb + c, m = (a + bb + c) / 3.f, mx = std::max({a, bb, c});
      want.push_back(s + m + mx);
    }
  const Result r = run(b, x, 2);
  REQUIRE(r.shape == Shape{2, 2, 5});
  require_close(r.y, want);
}
