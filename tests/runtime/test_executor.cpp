// The executor on small ONNX models with known weights: hand-computed outputs, an independent
// plain-loop evaluation, batching, observers, repeatability and errors.
#include <catch2/catch.hpp>

#include <cmath>
#include <memory>

#include "graph/error.h"
#include "graph/onnx_import.h"
#include "graph/prepare.h"
#include "runtime/executor.h"
#include "support/onnx_builder.h"
#include "support/test_util.h"
#include "test_executor_reference.h"

namespace {

using fgq::test::OnnxBuilder;
namespace ref = fgq::test::ref;

fgq::Graph prepared(const OnnxBuilder& b) {
  const std::string path = fgq::test::temp_path(".onnx");
  b.save(path);
  return fgq::load_and_prepare(path);
}

fgq::Graph imported(const OnnxBuilder& b) {
  const std::string bytes = b.bytes();
  return fgq::import_onnx_bytes(bytes.data(), bytes.size(), "test.onnx");
}

std::vector<float> output_vec(const fgq::Executor& ex, int batch, int i = 0) {
  const float* p = ex.output(i);
  return std::vector<float>(p, p + fgq::numel(ex.output_shape(i, batch)));
}

void require_close(const std::vector<float>& got, const std::vector<float>& want, float tol) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i);
    REQUIRE(got[i] == Approx(want[i]).margin(tol).epsilon(tol));
  }
}

ref::Image image(int C, int H, int W, const float* data) {
  return ref::Image{C, H, W, std::vector<float>(data, data + size_t(C) * H * W)};
}

// --- 1-channel 3x3 convolution on a 4x4 ramp x[r][c] = 4r + c + 1, computed by hand ----------

// Returned by pointer: OnnxBuilder is neither copyable nor movable.
std::unique_ptr<OnnxBuilder> hand_conv_model(int stride, int pad, bool relu) {
  auto owned = std::make_unique<OnnxBuilder>();
  OnnxBuilder& b = *owned;
  b.input("x", {1, 1, 4, 4}).output("y");
  // Kernel [[1,2,0],[0,0,0],[0,0,-1]]: y = x[r][c] + 2 x[r][c+1] - x[r+2][c+2] at the window
  // origin.
  b.init_f32("w", {1, 1, 3, 3}, {1, 2, 0, 0, 0, 0, 0, 0, -1}).init_f32("b", {1}, {0.5f});
  b.node("Conv", {"x", "w", "b"}, {relu ? "c" : "y"}, "conv")
      .ints("kernel_shape", {3, 3})
      .ints("strides", {stride, stride})
      .ints("pads", {pad, pad, pad, pad});
  if (relu) b.node("Relu", {"c"}, {"y"}, "relu");
  return owned;
}

std::vector<float> ramp16() {
  std::vector<float> x(16);
  for (int i = 0; i < 16; ++i) x[i] = float(i + 1);
  return x;
}

}  // namespace

TEST_CASE("executor: 3x3 conv on a 4x4 input matches the hand computation") {
  const std::vector<float> x = ramp16();
  SECTION("no padding, stride 1: y = 8r + 2c - 6 + 0.5") {
    fgq::Executor ex(imported(*hand_conv_model(1, 0, false)), 1);
    ex.run(x.data(), 1);
    CHECK(ex.output_shape(0, 1) == fgq::Shape{1, 1, 2, 2});
    require_close(output_vec(ex, 1), {-5.5f, -3.5f, 2.5f, 4.5f}, 1e-6f);
  }
  SECTION("fused ReLU after preparation") {
    const fgq::Graph g = prepared(*hand_conv_model(1, 0, true));
    REQUIRE(g.nodes.size() == 1);  // Conv+Relu fused
    fgq::Executor ex(g, 1);
    ex.run(x.data(), 1);
    require_close(output_vec(ex, 1), {0.f, 0.f, 2.5f, 4.5f}, 1e-6f);
  }
  SECTION("pads 1, stride 2: windows start at (-1,-1), (-1,1), (1,-1), (1,1)") {
    fgq::Executor ex(imported(*hand_conv_model(2, 1, false)), 1);
    ex.run(x.data(), 1);
    // (-1,-1): -x[1][1] = -6; (-1,1): -x[1][3] = -8; (1,-1): 2*x[1][0] - x[3][1] = 10 - 14;
    // (1,1): x[1][1] + 2*x[1][2] - x[3][3] = 6 + 14 - 16.
    require_close(output_vec(ex, 1), {-5.5f, -7.5f, -3.5f, 4.5f}, 1e-6f);
  }
}

// --- A small residual network against the plain-loop reference ------------------------------

namespace {

struct ResNetWeights {
  std::vector<float> w1, b1, w2, g1, be1, m1, v1, g2, be2, m2, v2, fc_w, fc_b;
};

ResNetWeights resnet_weights() {
  using fgq::test::random_floats;
  ResNetWeights r;
  r.w1 = random_floats(4 * 3 * 9, 1, -0.5f, 0.5f);
  r.b1 = random_floats(4, 2);
  r.w2 = random_floats(4 * 4 * 9, 3, -0.5f, 0.5f);
  r.g1 = random_floats(4, 4, 0.5f, 1.5f);
  r.be1 = random_floats(4, 5);
  r.m1 = random_floats(4, 6);
  r.v1 = random_floats(4, 7, 0.5f, 2.f);
  r.g2 = random_floats(4, 8, 0.5f, 1.5f);
  r.be2 = random_floats(4, 9);
  r.m2 = random_floats(4, 10);
  r.v2 = random_floats(4, 11, 0.5f, 2.f);
  r.fc_w = random_floats(5 * 64, 12, -0.3f, 0.3f);
  r.fc_b = random_floats(5, 13);
  return r;
}

// x[N,3,8,8] -> conv3x3(+bias) -> bn -> relu -> conv3x3 -> bn -> add(relu1) -> relu
//   -> maxpool 2x2/2 -> flatten -> gemm(transB) -> softmax  => [N,5]
std::unique_ptr<OnnxBuilder> resnet_model(const ResNetWeights& r) {
  auto owned = std::make_unique<OnnxBuilder>();
  OnnxBuilder& b = *owned;
  b.input("x", {-1, 3, 8, 8}).output("prob");
  b.init_f32("w1", {4, 3, 3, 3}, r.w1).init_f32("b1", {4}, r.b1).init_f32("w2", {4, 4, 3, 3}, r.w2);
  b.init_f32("g1", {4}, r.g1).init_f32("be1", {4}, r.be1).init_f32("m1", {4}, r.m1);
  b.init_f32("v1", {4}, r.v1).init_f32("g2", {4}, r.g2).init_f32("be2", {4}, r.be2);
  b.init_f32("m2", {4}, r.m2).init_f32("v2", {4}, r.v2);
  b.init_f32("fc_w", {5, 64}, r.fc_w).init_f32("fc_b", {5}, r.fc_b);
  b.node("Conv", {"x", "w1", "b1"}, {"c1"}, "conv1")
      .ints("kernel_shape", {3, 3})
      .ints("pads", {1, 1, 1, 1});
  b.node("BatchNormalization", {"c1", "g1", "be1", "m1", "v1"}, {"n1"}, "bn1").f("epsilon", 1e-5f);
  b.node("Relu", {"n1"}, {"r1"}, "relu1");
  b.node("Conv", {"r1", "w2"}, {"c2"}, "conv2")
      .ints("kernel_shape", {3, 3})
      .ints("pads", {1, 1, 1, 1});
  b.node("BatchNormalization", {"c2", "g2", "be2", "m2", "v2"}, {"n2"}, "bn2").f("epsilon", 1e-5f);
  b.node("Add", {"n2", "r1"}, {"s"}, "add");
  b.node("Relu", {"s"}, {"r2"}, "relu2");
  b.node("MaxPool", {"r2"}, {"p"}, "pool").ints("kernel_shape", {2, 2}).ints("strides", {2, 2});
  b.node("Flatten", {"p"}, {"f"}, "flatten").i("axis", 1);
  b.node("Gemm", {"f", "fc_w", "fc_b"}, {"logits"}, "fc").i("transB", 1);
  b.node("Softmax", {"logits"}, {"prob"}, "softmax").i("axis", -1);
  return owned;
}

std::vector<float> resnet_reference(const ResNetWeights& r, const float* x) {
  const int p1[4] = {1, 1, 1, 1}, p0[4] = {0, 0, 0, 0};
  const ref::Image in = image(3, 8, 8, x);
  const ref::Image r1 = ref::relu(
      ref::batchnorm(ref::conv(in, r.w1, 4, 3, 3, 1, p1, r.b1), r.g1, r.be1, r.m1, r.v1, 1e-5f));
  const ref::Image n2 =
      ref::batchnorm(ref::conv(r1, r.w2, 4, 3, 3, 1, p1, {}), r.g2, r.be2, r.m2, r.v2, 1e-5f);
  const ref::Image p = ref::pool(ref::relu(ref::add(n2, r1)), true, 2, 2, p0, false, false);
  return ref::softmax(ref::gemm(p.v, r.fc_w, 5, true, r.fc_b, 1.f, 1.f));
}

}  // namespace

TEST_CASE("executor: residual net matches an independent evaluation at batch 1 and 3") {
  const ResNetWeights w = resnet_weights();
  const fgq::Graph g = prepared(*resnet_model(w));
  const int per_image = 3 * 8 * 8;
  const std::vector<float> x = fgq::test::random_floats(3 * per_image, 99, -2.f, 2.f);
  fgq::Executor ex(g, 3);
  CHECK(ex.input_shape() == fgq::Shape{3, 3, 8, 8});
  REQUIRE(ex.num_outputs() == 1);

  std::vector<float> want;
  for (int i = 0; i < 3; ++i) {
    const std::vector<float> r = resnet_reference(w, x.data() + i * per_image);
    want.insert(want.end(), r.begin(), r.end());
  }

  ex.run(x.data(), 3);
  CHECK(ex.output_shape(0, 3) == fgq::Shape{3, 5});
  const std::vector<float> batched = output_vec(ex, 3);
  require_close(batched, want, 1e-5f);

  SECTION("batch results equal per-image results") {
    for (int i = 0; i < 3; ++i) {
      ex.run(x.data() + i * per_image, 1);
      CHECK(ex.output_shape(0, 1) == fgq::Shape{1, 5});
      require_close(output_vec(ex, 1),
                    std::vector<float>(batched.begin() + 5 * i, batched.begin() + 5 * i + 5),
                    1e-6f);
    }
  }
  SECTION("running twice gives identical results") {
    ex.run(x.data(), 3);
    CHECK(output_vec(ex, 3) == batched);
  }
  SECTION("the arena is smaller than one buffer per activation") {
    size_t naive = 0;
    for (const fgq::Value& v : ex.graph().values)
      if (!v.is_const()) naive += sizeof(float) * size_t(fgq::numel(v.shape));
    CHECK(ex.arena_bytes() > 0);
    CHECK(ex.arena_bytes() < naive);
  }
  SECTION("unfused graph (standalone Relu/Add) gives the same result") {
    fgq::Executor unfused(fgq::load_and_prepare(
                              [&] {
                                const std::string path = fgq::test::temp_path(".onnx");
                                resnet_model(w)->save(path);
                                return path;
                              }(),
                              /*fuse=*/false),
                          3);
    unfused.run(x.data(), 3);
    require_close(output_vec(unfused, 3), want, 1e-5f);
  }
}

TEST_CASE("executor: the observer sees every node in order with its batch output") {
  const ResNetWeights w = resnet_weights();
  fgq::Executor ex(prepared(*resnet_model(w)), 4);
  const std::vector<float> x = fgq::test::random_floats(2 * 3 * 8 * 8, 5);
  std::vector<int> seen;
  const float* last_out = nullptr;
  ex.set_observer([&](const fgq::Node& node, int index, float* out, const fgq::Shape& shape) {
    REQUIRE(index < int(ex.graph().nodes.size()));
    CHECK(&node == &ex.graph().nodes[index]);
    CHECK(shape.at(0) == 2);
    CHECK(out != nullptr);
    seen.push_back(index);
    last_out = out;
  });
  ex.run(x.data(), 2);
  REQUIRE(seen.size() == ex.graph().nodes.size());
  for (size_t i = 0; i < seen.size(); ++i) CHECK(seen[i] == int(i));
  CHECK(last_out == ex.output(0));
}

TEST_CASE("executor: an observer can rewrite a node's output before later nodes read it") {
  OnnxBuilder b;
  b.input("x", {-1, 2}).output("y");
  b.node("Relu", {"x"}, {"r"}, "relu");
  b.node("Softmax", {"r"}, {"y"}, "softmax").i("axis", -1);
  fgq::Executor ex(imported(b), 1);
  ex.set_observer([](const fgq::Node& node, int, float* out, const fgq::Shape&) {
    if (node.op == "Relu") out[0] = out[1] = 0.f;  // equal logits -> uniform softmax
  });
  const float x[2] = {3.f, -1.f};
  ex.run(x, 1);
  require_close(output_vec(ex, 1), {0.5f, 0.5f}, 1e-6f);
}

// --- Pooling, padding, affine, broadcasting and FC variants ---------------------------------

TEST_CASE("executor: pad, channel affine, pools, broadcast add, reshape, matmul, gemm") {
  using fgq::test::random_floats;
  const auto g = random_floats(2, 21, 0.5f, 1.5f), be = random_floats(2, 22),
             m = random_floats(2, 23);
  const auto v = random_floats(2, 24, 0.5f, 2.f), bias_c = random_floats(2, 25);
  const auto mm = random_floats(18 * 6, 26), gw = random_floats(6 * 3, 27),
             gc = random_floats(3, 28);
  OnnxBuilder b;
  b.input("x", {-1, 2, 5, 5}).output("y");
  b.init_i64("pads", {8}, {0, 0, 1, 0, 0, 0, 0, 1}).init_f32("padv", {}, {0.25f});
  b.init_f32("g", {2}, g).init_f32("be", {2}, be).init_f32("m", {2}, m).init_f32("v", {2}, v);
  b.init_f32("cb", {2, 1, 1}, bias_c).init_i64("shape", {2}, {-1, 18});
  b.init_f32("mm", {18, 6}, mm).init_f32("gw", {6, 3}, gw).init_f32("gc", {3}, gc);
  b.node("Pad", {"x", "pads", "padv"}, {"xp"}, "pad").s("mode", "constant");  // [2,6,6]
  b.node("BatchNormalization", {"xp", "g", "be", "m", "v"}, {"bn"}, "bn");    // affine
  b.node("MaxPool", {"bn"}, {"mp"}, "maxpool")
      .ints("kernel_shape", {3, 3})
      .ints("strides", {2, 2})
      .i("ceil_mode", 1);  // [2,3,3]
  b.node("Add", {"mp", "cb"}, {"ab"}, "add_bias");
  b.node("Relu", {"ab"}, {"r"}, "relu");
  b.node("AveragePool", {"r"}, {"ap"}, "avgpool")
      .ints("kernel_shape", {2, 2})
      .ints("pads", {1, 1, 0, 0})
      .i("count_include_pad", 0);                                                    // [2,3,3]
  b.node("Reshape", {"ap", "shape"}, {"flat"}, "reshape");                           // [18]
  b.node("MatMul", {"flat", "mm"}, {"h"}, "matmul");                                 // [6]
  b.node("Gemm", {"h", "gw", "gc"}, {"y"}, "gemm").f("alpha", 0.5f).f("beta", 2.f);  // [3]

  auto reference = [&](const float* x) {
    const int pad_tlbr[4] = {1, 0, 0, 1}, none[4] = {0, 0, 0, 0}, avg_pads[4] = {1, 1, 0, 0};
    ref::Image t = ref::pad(image(2, 5, 5, x), pad_tlbr, 0.25f);
    t = ref::batchnorm(t, g, be, m, v, 1e-5f);
    t = ref::pool(t, true, 3, 2, none, true, false);
    for (int c = 0; c < 2; ++c)
      for (int i = 0; i < 9; ++i) t.v[c * 9 + i] += bias_c[c];
    t = ref::pool(ref::relu(t), false, 2, 1, avg_pads, false, false);
    return ref::gemm(ref::gemm(t.v, mm, 6, false, {}, 1.f, 0.f), gw, 3, false, gc, 0.5f, 2.f);
  };

  const std::vector<float> x = random_floats(2 * 50, 30, -2.f, 2.f);
  for (bool prepare : {false, true}) {
    INFO("prepared graph: " << prepare);
    fgq::Executor ex(prepare ? prepared(b) : imported(b), 2);
    ex.run(x.data(), 2);
    CHECK(ex.output_shape(0, 2) == fgq::Shape{2, 3});
    std::vector<float> want = reference(x.data()), second = reference(x.data() + 50);
    want.insert(want.end(), second.begin(), second.end());
    require_close(output_vec(ex, 2), want, 1e-5f);
  }
}

TEST_CASE("executor: grouped, strided, dilated conv with asymmetric pads") {
  using fgq::test::random_floats;
  const auto w = random_floats(6 * 2 * 3 * 3, 40), bias = random_floats(6, 41);
  OnnxBuilder b;
  b.input("x", {-1, 4, 9, 8}).output("y");
  b.init_f32("w", {6, 2, 3, 3}, w).init_f32("b", {6}, bias);
  b.node("Conv", {"x", "w", "b"}, {"y"}, "conv")
      .ints("kernel_shape", {3, 3})
      .ints("strides", {2, 2})
      .ints("dilations", {2, 2})
      .ints("pads", {2, 1, 0, 3})
      .i("group", 2);
  fgq::Executor ex(imported(b), 2);
  const std::vector<float> x = random_floats(2 * 4 * 9 * 8, 42);
  ex.run(x.data(), 2);
  const int pads[4] = {2, 1, 0, 3};
  std::vector<float> want;
  for (int i = 0; i < 2; ++i) {
    const ref::Image y =
        ref::conv(image(4, 9, 8, x.data() + i * 288), w, 6, 3, 3, 2, pads, bias, 2, 2);
    CHECK(ex.output_shape(0, 2) == fgq::Shape{2, 6, y.H, y.W});
    want.insert(want.end(), y.v.begin(), y.v.end());
  }
  require_close(output_vec(ex, 2), want, 1e-5f);
}

// --- Graphs built directly in the IR (ops the importer does not produce) --------------------

namespace {

fgq::Node node(std::string op, std::string name, std::vector<int> in, std::vector<int> out) {
  fgq::Node n;
  n.op = std::move(op);
  n.name = std::move(name);
  n.inputs = std::move(in);
  n.outputs = std::move(out);
  return n;
}

}  // namespace

TEST_CASE("executor: FakeQuant rounds onto the grid and clamps") {
  fgq::Graph g;
  g.source = "fq.onnx";
  const int x = g.add_value("x", {1, 6}), q = g.add_value("q"), y = g.add_value("y");
  g.inputs = {x};
  g.outputs = {y};
  fgq::Node fq = node("FakeQuant", "fq", {x}, {q});
  fq.attrs.set_f("scale", 0.5f);
  fq.attrs.set_i("qmin", -4);
  fq.attrs.set_i("qmax", 3);
  g.nodes.push_back(fq);
  g.nodes.push_back(node("Relu", "relu", {q}, {y}));
  fgq::Executor ex(g, 2);
  // 0.25/0.5 = 0.5 -> 0 (half to even); 0.8 -> 2 -> 1.0; 9 -> clamp 3 -> 1.5; -9 -> -4 -> -2 ->
  // relu 0
  const float in[12] = {0.25f, 0.8f, 9.f, -9.f, 0.75f, 1.2f, -0.3f, 0.3f, 1.25f, 1.3f, -1.f, 0.f};
  ex.run(in, 2);
  require_close(output_vec(ex, 2), {0.f, 1.f, 1.5f, 0.f, 1.f, 1.f, 0.f, 0.5f, 1.f, 1.5f, 0.f, 0.f},
                1e-7f);
}

TEST_CASE("executor: a FakeQuant without parameters passes through, partial parameters are an error") {
  // Quantization inserts them uncalibrated and quantizes their output from the observer. The
  // input also feeds a Relu after the FakeQuant, so the FakeQuant may not run in place over it.
  fgq::Graph g;
  g.source = "fq.onnx";
  const int x = g.add_value("x", {1, 5}), q = g.add_value("q"), r = g.add_value("r"),
            y = g.add_value("y");
  g.inputs = {x};
  g.outputs = {y};
  g.nodes.push_back(node("FakeQuant", "fq", {x}, {q}));
  g.nodes.push_back(node("Relu", "relu", {x}, {r}));
  g.nodes.push_back(node("Add", "add", {q, r}, {y}));
  std::vector<float> seen;
  {
    fgq::Executor ex(g, 1);
    ex.set_observer([&](const fgq::Node& n, int, float* out, const fgq::Shape& shape) {
      if (n.name != "fq") return;
      seen.assign(out, out + fgq::numel(shape));
      for (int64_t i = 0; i < fgq::numel(shape); ++i) out[i] = 10.f;  // what calibration would do
    });
    const float in[5] = {0.3f, -1.f, 2.5f, 0.f, -0.7f};
    ex.run(in, 1);
    CHECK(seen == std::vector<float>(in, in + 5));
    require_close(output_vec(ex, 1), {10.3f, 10.f, 12.5f, 10.f, 10.f}, 1e-6f);
  }
  g.nodes[0].attrs.set_f("scale", 0.5f);  // no qmin / qmax
  CHECK_THROWS_WITH(fgq::Executor(g, 1), Catch::Contains("fq.onnx") && Catch::Contains("scale, qmin, qmax"));
}

TEST_CASE("executor: an unsupported op is an error naming the op and the node") {
  fgq::Graph g;
  g.source = "lstm.onnx";
  const int x = g.add_value("x", {1, 4}), y = g.add_value("y");
  g.inputs = {x};
  g.outputs = {y};
  g.nodes.push_back(node("LSTM", "lstm_1", {x}, {y}));
  try {
    fgq::Executor ex(g, 1);
    FAIL("no error");
  } catch (const fgq::Error& e) {
    CHECK(std::string(e.what()) == "lstm.onnx: executor: unsupported op 'LSTM' (node 'lstm_1')");
  }
}

TEST_CASE("executor: batch outside 1..max_batch and bad max_batch are errors") {
  fgq::Executor ex(imported(*hand_conv_model(1, 0, false)), 2);
  const std::vector<float> x(3 * 16, 1.f);
  CHECK_THROWS_AS(ex.run(x.data(), 3), fgq::Error);
  CHECK_THROWS_AS(ex.run(x.data(), 0), fgq::Error);
  CHECK_THROWS_AS(fgq::Executor(imported(*hand_conv_model(1, 0, false)), 0), fgq::Error);
}
