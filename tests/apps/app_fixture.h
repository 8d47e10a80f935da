#pragma once
// Shared by the CLI tests: a temp folder with a tiny model whose answer is the image's dominant
// colour (GlobalAveragePool -> Flatten -> Gemm with class 0 = R, 1 = G, 2 = B, 3..5 = nothing),
// an ImageNet-style flat folder of solid-colour images, and a way to run the built programs.
#include <catch2/catch.hpp>

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "support/onnx_builder.h"
#include "support/test_util.h"

namespace fgq::test {

namespace fs = std::filesystem;

inline std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct Result {
  int code = -1;
  std::string out, err;
};

// The model; softmax: the graph ends in Softmax (scores are then not softmaxed again).
inline void write_colour_model(const fs::path& path, bool softmax) {
  std::vector<float> w(6 * 3, 0.f);
  w[0 * 3 + 0] = w[1 * 3 + 1] = w[2 * 3 + 2] = 1.f;
  OnnxBuilder b;
  b.input("x", {-1, 3, 8, 8})
      .init_f32("w", {6, 3}, w)
      .init_f32("b", {6}, std::vector<float>(6, 0.f))
      .metadata("fgq.channel_order", "RGB")
      .metadata("fgq.pixel_scale", "0.00392156862745098")
      .metadata("fgq.mean", "0,0,0")
      .metadata("fgq.std", "1,1,1")
      .metadata("fgq.input_size", "8");
  b.node("GlobalAveragePool", {"x"}, {"p"});
  b.node("Flatten", {"p"}, {"f"}).i("axis", 1);
  b.node("Gemm", {"f", "w", "b"}, {softmax ? "logits" : "y"}).i("transB", 1);
  if (softmax) b.node("Softmax", {"logits"}, {"y"}).i("axis", 1);
  b.output("y");
  b.save(path.string());
}

// A solid 12x10 image; the format follows the extension (.JPEG is lossy but keeps the colour).
inline void write_solid_image(const fs::path& path, cv::Scalar bgr) {
  cv::Mat m(10, 12, CV_8UC3, bgr);
  REQUIRE(cv::imwrite(path.string(), m));
}

// A solid-colour JPEG of w x h cut to `keep` of its bytes (a truncated download).
inline void write_truncated_jpeg(const fs::path& path, cv::Scalar bgr, double keep) {
  std::vector<uint8_t> bytes;
  cv::Mat m(64, 64, CV_8UC3, bgr);
  for (int y = 0; y < m.rows; ++y) m.at<cv::Vec3b>(y, y) = cv::Vec3b(uchar(y), uchar(3 * y), 0);  // some detail
  REQUIRE(cv::imencode(".jpg", m, bytes));
  bytes.resize(static_cast<size_t>(bytes.size() * keep));
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

// A folder with the models, the images and the run outputs; removed at the end.
struct Fixture {
  fs::path root = temp_path("_fgq_run");
  fs::path val = root / "val";

  Fixture() {
    fs::create_directories(val);
    write_colour_model(root / "colour.onnx", false);
    write_colour_model(root / "colour_softmax.onnx", true);
    image("img_1.png", {0, 0, 255});  // BGR: red
    image("img_2.png", {0, 255, 0});  // green
    image("img_3.JPEG", {255, 0, 0});  // blue, lossy
    image("img_4.png", {0, 0, 255});  // red, but labelled green: wrong top-1, right top-5
    std::ofstream(val / "img_5.JPEG") << "not a JPEG at all";
    std::ofstream(val / "val_labels.txt") << "img_1.png 0\nimg_2.png 1\nimg_3.JPEG 2\nimg_4.png 1\n"
                                             "img_5.JPEG 0\n";
  }
  ~Fixture() { fs::remove_all(root); }

  void image(const std::string& name, cv::Scalar bgr) const { write_solid_image(val / name, bgr); }

  // `exe args` through the shell, stdout and stderr captured.
  Result run_program(const std::string& exe, const std::string& args) const {
    const fs::path out = root / "stdout.txt", err = root / "stderr.txt";
    const std::string cmd = exe + " " + args + " >" + out.string() + " 2>" + err.string();
    const int status = std::system(cmd.c_str());
    Result r;
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = slurp(out);
    r.err = slurp(err);
    return r;
  }
  Result run(const std::string& args) const { return run_program(FGQ_RUN_EXE, args); }
  // fgq-run on the model (softmax-free) and the folder, plus `args`.
  Result run_on_val(const std::string& args) const {
    return run("--model " + model() + " --imagenet " + val.string() + " " + args);
  }

  std::string model(bool softmax = false) const {
    return (root / (softmax ? "colour_softmax.onnx" : "colour.onnx")).string();
  }
};

}  // namespace fgq::test
