// FP32 parity with OpenCV DNN: the same ONNX file through fgq (load_and_prepare + Executor, as
// fgq-run and fgq::Session run it) and through cv::dnn::readNetFromONNX (DNN_BACKEND_OPENCV,
// DNN_TARGET_CPU), on the same input batch.
//
// Error measure: rel_err(a, b) = max_i |a_i - b_i| / max_i |b_i|, with b = OpenCV's output, over
// the whole batch. Checked on the final outputs (the logits: the model files carry no softmax)
// and on their softmax probabilities; when a graph does end in Softmax, also on the softmax's
// input (OpenCV: net.forward(<layer>) of the node feeding it, fgq: an executor observer).
//
// The real models are git-ignored (absent in CI): those cases print "SKIPPED: ..." and pass.
// Inputs are the first real validation images when /work/shared data is present, deterministic
// synthetic images otherwise. A tiny generated model ending in Softmax always runs.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <opencv2/core.hpp>
#include <opencv2/dnn.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <optional>
#include <string>
#include <vector>

#include "graph/onnx_proto.h"
#include "graph/prepare.h"
#include "runtime/dataset.h"
#include "runtime/executor.h"
#include "runtime/preprocess.h"
#include "support/onnx_builder.h"
#include "support/test_util.h"

namespace fs = std::filesystem;

namespace {

constexpr double kMaxRelError = 1e-4;

// max|a - b| / max|b|: the error of `a` relative to the scale of the reference `b`.
double rel_err(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  double diff = 0, scale = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff = std::max(diff, std::abs(double(a[i]) - b[i]));
    scale = std::max(scale, std::abs(double(b[i])));
  }
  return scale > 0 ? diff / scale : diff;
}

std::vector<float> softmax_rows(const std::vector<float>& x, size_t cols) {
  std::vector<float> y(x.size());
  for (size_t r = 0; r < x.size() / cols; ++r) {
    const float* xr = x.data() + r * cols;
    const float m = *std::max_element(xr, xr + cols);
    double sum = 0;
    for (size_t c = 0; c < cols; ++c) sum += std::exp(double(xr[c]) - m);
    for (size_t c = 0; c < cols; ++c) y[r * cols + c] = float(std::exp(double(xr[c]) - m) / sum);
  }
  return y;
}

struct Outputs {
  std::vector<float> out;          // final output, batch x classes
  std::vector<float> pre_softmax;  // the softmax's input, if the graph ends in Softmax
  std::string pre_softmax_node;    // name of the node producing it (fgq graph)
};

Outputs run_fgq(fgq::Executor& ex, const std::vector<float>& input, int batch) {
  const fgq::Graph& g = ex.graph();
  Outputs r;
  const bool softmax_last = !g.nodes.empty() && g.nodes.back().op == "Softmax";
  if (softmax_last) {
    const int feed = g.nodes.back().inputs[0];
    ex.set_observer([&r, feed](const fgq::Node& n, int, float* y, const fgq::Shape& s) {
      if (n.outputs[0] != feed) return;
      r.pre_softmax.assign(y, y + fgq::numel(s));
      r.pre_softmax_node = n.name;
    });
  }
  ex.run(input.data(), batch);
  ex.set_observer(nullptr);
  r.out.assign(ex.output(0), ex.output(0) + fgq::numel(ex.output_shape(0, batch)));
  return r;
}

cv::dnn::Net opencv_net(const std::string& path) {
  cv::dnn::Net net = cv::dnn::readNetFromONNX(path);
  net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
  net.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
  return net;
}

cv::Mat opencv_input(const std::vector<float>& input, int batch, int side) {
  const int dims[4] = {batch, 3, side, side};
  return cv::Mat(4, dims, CV_32F, const_cast<float*>(input.data()));
}

std::vector<float> to_vector(const cv::Mat& m) {
  REQUIRE(m.isContinuous());
  REQUIRE(m.depth() == CV_32F);
  return std::vector<float>(m.ptr<float>(), m.ptr<float>() + m.total());
}

// OpenCV 4.6 names an ONNX node's layer "onnx_node!<node name>"; older ones used the bare name.
std::optional<std::vector<float>> opencv_layer_output(cv::dnn::Net& net, const std::string& node) {
  for (const std::string& name : {"onnx_node!" + node, node}) {
    if (node.empty() || net.getLayerId(name) < 0) continue;
    return to_vector(net.forward(name));
  }
  return std::nullopt;
}

struct Parity {
  double out = -1, probs = -1, pre_softmax = -1;  // -1: not compared
};

// `input`: batch x 3 x side x side, through both engines.
Parity check_parity(fgq::Executor& ex, cv::dnn::Net& net, const std::vector<float>& input,
                    int batch, int side, const std::string& label) {
  const Outputs f = run_fgq(ex, input, batch);
  net.setInput(opencv_input(input, batch, side));
  const std::vector<float> ref = to_vector(net.forward());
  REQUIRE(ref.size() == f.out.size());
  const size_t classes = ref.size() / batch;

  Parity p;
  p.out = rel_err(f.out, ref);
  p.probs = rel_err(softmax_rows(f.out, classes), softmax_rows(ref, classes));
  if (!f.pre_softmax.empty()) {
    net.setInput(opencv_input(input, batch, side));
    const auto ref_pre = opencv_layer_output(net, f.pre_softmax_node);
    if (ref_pre) {
      p.pre_softmax = rel_err(f.pre_softmax, *ref_pre);
    } else {
      std::printf("NOTE: %s: OpenCV has no layer for node '%s', pre-softmax not compared\n",
                  label.c_str(), f.pre_softmax_node.c_str());
    }
  }
  std::printf("%s: batch %d, max|a-b|/max|b| output %.3g, probabilities %.3g, pre-softmax %s\n",
              label.c_str(), batch, p.out, p.probs,
              p.pre_softmax < 0 ? "n/a" : std::to_string(p.pre_softmax).c_str());
  return p;
}

// `n` preprocessed validation images for the model (its metadata says how), or synthetic ones.
std::vector<float> model_inputs(const fgq::Graph& g, int n, int& side) {
  const fgq::Preprocess pre = fgq::Preprocess::from_metadata(g.metadata, g.source);
  side = pre.input_size;
  const size_t per_image = size_t(3) * side * side;
  if (const auto dir = fgq::test::shared_data("data/imagenet/val")) {
    const std::vector<std::string> files = fgq::list_image_files(*dir);
    if (files.size() >= size_t(n)) {
      std::vector<float> x(per_image * n);
      for (int i = 0; i < n; ++i) fgq::load_image(files[i], pre, x.data() + i * per_image);
      return x;
    }
  }
  // No real images: smooth random pictures (8x8 random colours, upscaled), through the same
  // preprocessing. Pixel noise would not do: this far off natural images, a random-weight
  // ResNet-101's logits come out of cancellations that amplify any FP32 rounding difference.
  std::printf("NOTE: %s: no validation images, using synthetic smooth images\n", g.source.c_str());
  std::vector<float> x(per_image * n);
  cv::RNG rng(2024);
  for (int i = 0; i < n; ++i) {
    cv::Mat small(8, 8, CV_8UC3), img;
    rng.fill(small, cv::RNG::UNIFORM, 0, 256);
    cv::resize(small, img, cv::Size(320, 280), 0, 0, cv::INTER_CUBIC);
    const std::string file = fgq::test::temp_path(".png");
    REQUIRE(cv::imwrite(file, img));
    fgq::load_image(file, pre, x.data() + i * per_image);
    fs::remove(file);
  }
  return x;
}

void check_model(const std::string& name) {
  const auto path = fgq::test::model_file(name);
  if (!path) return;  // skipped: the model is not fetched (always in CI)
  const int batch = 3;
  fgq::Executor ex(fgq::load_and_prepare(*path), batch);
  cv::dnn::Net net = opencv_net(*path);
  int side = 0;
  const std::vector<float> x = model_inputs(ex.graph(), batch, side);
  const Parity p = check_parity(ex, net, x, batch, side, name);
  CHECK(p.out <= kMaxRelError);
  CHECK(p.probs <= kMaxRelError);
  if (p.pre_softmax >= 0) CHECK(p.pre_softmax <= kMaxRelError);
  // Batch 1 takes other kernel paths (other task splits): the first image alone.
  const std::vector<float> x1(x.begin(), x.begin() + x.size() / batch);
  const Parity p1 = check_parity(ex, net, x1, 1, side, name);
  CHECK(p1.out <= kMaxRelError);
  CHECK(p1.probs <= kMaxRelError);
}

}  // namespace

TEST_CASE("OpenCV parity: rel_err is max|a-b| / max|b|") {
  CHECK(rel_err({1, 2, -4}, {1, 2, -4}) == 0);
  CHECK(rel_err({1.5f, 2, -4}, {1, 2, -4}) == Approx(0.125));
  CHECK(rel_err({0, 0}, {0, 0}) == 0);
}

TEST_CASE("OpenCV parity: generated conv net ending in Softmax", "[opencv]") {
  // Conv(3x3, pad 1) + Relu -> Conv(1x1) + Add(residual) + Relu -> MaxPool -> GAP -> Flatten
  // -> Gemm -> Softmax, batch-dynamic: exercises fusion, residual, FC and the pre-softmax hook.
  const int C = 3, H = 13, W = 11, K = 8, classes = 10;
  fgq::test::OnnxBuilder b;
  b.input("x", {-1, C, H, W});
  b.init_f32("w1", {K, C, 3, 3}, fgq::test::random_floats(K * C * 9, 1));
  b.init_f32("b1", {K}, fgq::test::random_floats(K, 2));
  b.init_f32("w2", {K, K, 1, 1}, fgq::test::random_floats(K * K, 3));
  b.init_f32("b2", {K}, fgq::test::random_floats(K, 4));
  b.init_f32("fc_w", {classes, K}, fgq::test::random_floats(classes * K, 5));
  b.init_f32("fc_b", {classes}, fgq::test::random_floats(classes, 6));
  b.node("Conv", {"x", "w1", "b1"}, {"c1"}, "conv1")
      .ints("kernel_shape", {3, 3})  // optional in ONNX, required by OpenCV
      .ints("pads", {1, 1, 1, 1});
  b.node("Relu", {"c1"}, {"r1"}, "relu1");
  b.node("Conv", {"r1", "w2", "b2"}, {"c2"}, "conv2").ints("kernel_shape", {1, 1});
  b.node("Add", {"c2", "r1"}, {"a2"}, "add2");
  b.node("Relu", {"a2"}, {"r2"}, "relu2");
  b.node("MaxPool", {"r2"}, {"p"}, "pool").ints("kernel_shape", {2, 2}).ints("strides", {2, 2});
  b.node("GlobalAveragePool", {"p"}, {"g"}, "gap");
  b.node("Flatten", {"g"}, {"f"}, "flatten").i("axis", 1);
  b.node("Gemm", {"f", "fc_w", "fc_b"}, {"logits"}, "fc").i("transB", 1);
  b.node("Softmax", {"logits"}, {"prob"}, "softmax").i("axis", 1);
  b.output("prob");
  // OpenCV's importer wants a shape on graph outputs: [N, classes].
  auto* out_shape = b.proto()
                        .mutable_graph()
                        ->mutable_output(0)
                        ->mutable_type()
                        ->mutable_tensor_type()
                        ->mutable_shape();
  out_shape->add_dim()->set_dim_param("N");
  out_shape->add_dim()->set_dim_value(classes);
  const std::string path = fgq::test::temp_path(".onnx");
  b.save(path);

  // Non-square input, so this runs both engines directly rather than through check_parity.
  const int batch = 2;
  const std::vector<float> x = fgq::test::random_floats(size_t(batch) * C * H * W, 7, -2, 2);
  fgq::Executor ex(fgq::load_and_prepare(path), batch);
  const Outputs f = run_fgq(ex, x, batch);
  cv::dnn::Net net = opencv_net(path);
  const int dims[4] = {batch, C, H, W};
  const cv::Mat in(4, dims, CV_32F, const_cast<float*>(x.data()));
  net.setInput(in);
  const std::vector<float> ref = to_vector(net.forward());
  CHECK(rel_err(f.out, ref) <= kMaxRelError);
  REQUIRE(f.pre_softmax_node == "fc");
  net.setInput(in);
  const auto ref_pre = opencv_layer_output(net, f.pre_softmax_node);
  REQUIRE(ref_pre);
  CHECK(rel_err(f.pre_softmax, *ref_pre) <= kMaxRelError);
  fs::remove(path);
}

TEST_CASE("OpenCV parity: resnet50 FP32 logits", "[opencv][model]") { check_model("resnet50"); }
TEST_CASE("OpenCV parity: resnet101 FP32 logits", "[opencv][model]") { check_model("resnet101"); }
TEST_CASE("OpenCV parity: alexnet FP32 logits", "[opencv][model]") { check_model("alexnet"); }
