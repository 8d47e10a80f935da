// Runs the fgq-run binary (path compiled in as FGQ_RUN_EXE) on a tiny model whose answer is
// the image's dominant colour: GlobalAveragePool -> Flatten -> Gemm with class 0 = R, 1 = G,
// 2 = B, 3..5 = nothing. Checks exit codes, the summary line, skipping and the JSON report.
#include <catch2/catch.hpp>

#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "support/onnx_builder.h"
#include "support/test_util.h"

namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct Result {
  int code = -1;
  std::string out, err;
};

// A folder with the model, the images and the run outputs; removed at the end.
struct Fixture {
  fs::path root = fgq::test::temp_path("_fgq_run");
  fs::path val = root / "val";

  Fixture() {
    fs::create_directories(val);
    write_model(root / "colour.onnx", false);
    write_model(root / "colour_softmax.onnx", true);
    image("img_1.png", {0, 0, 255});  // BGR: red
    image("img_2.png", {0, 255, 0});  // green
    image("img_3.JPEG", {255, 0, 0});  // blue, lossy
    image("img_4.png", {0, 0, 255});  // red, but labelled green: wrong top-1, right top-5
    std::ofstream(val / "img_5.JPEG") << "not a JPEG at all";
    std::ofstream(val / "val_labels.txt") << "img_1.png 0\nimg_2.png 1\nimg_3.JPEG 2\nimg_4.png 1\n"
                                             "img_5.JPEG 0\n";
  }
  ~Fixture() { fs::remove_all(root); }

  void image(const std::string& name, cv::Scalar bgr) {
    cv::Mat m(10, 12, CV_8UC3, bgr);
    REQUIRE(cv::imwrite((val / name).string(), m));
  }

  static void write_model(const fs::path& path, bool softmax) {
    std::vector<float> w(6 * 3, 0.f);
    w[0 * 3 + 0] = w[1 * 3 + 1] = w[2 * 3 + 2] = 1.f;
    fgq::test::OnnxBuilder b;
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

  Result run(const std::string& args) const {
    const fs::path out = root / "stdout.txt", err = root / "stderr.txt";
    const std::string cmd = std::string(FGQ_RUN_EXE) + " " + args + " >" + out.string() + " 2>" +
                            err.string();
    const int status = std::system(cmd.c_str());
    Result r;
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = slurp(out);
    r.err = slurp(err);
    return r;
  }
  std::string model(bool softmax = false) const {
    return (root / (softmax ? "colour_softmax.onnx" : "colour.onnx")).string();
  }
};

}  // namespace

TEST_CASE("fgq-run: scores a folder, skips the corrupt JPEG and prints Top-1/Top-5") {
  Fixture f;
  const Result r = f.run("--model " + f.model() + " --imagenet " + f.val.string() + " --batch 3");
  INFO(r.err);
  CHECK(r.code == 0);
  CHECK(r.out.rfind("Top-1 75.00 % (3/4)  Top-5 100.00 % (4/4)  skipped 1  4 images in ", 0) == 0);
  CHECK(r.err.find("warning: " + (f.val / "img_5.JPEG").string() +
                   ": cannot decode image, skipped\n") != std::string::npos);
}

TEST_CASE("fgq-run: JSON report with per-image records") {
  Fixture f;
  const fs::path json = f.root / "report.json";
  const Result r = f.run("--model " + f.model() + " --imagenet " + f.val.string() +
                         " --quiet --threads 1 --json " + json.string());
  INFO(r.err);
  REQUIRE(r.code == 0);
  const nlohmann::json j = nlohmann::json::parse(slurp(json));
  CHECK(j["counts"]["skipped"] == 1);
  CHECK(j["counts"]["scored"] == 4);
  CHECK(j["counts"]["top1_correct"] == 3);
  CHECK(j["top1"].get<double>() == 0.75);
  CHECK(j["interrupted"] == false);
  CHECK(j["skipped_files"] == std::vector<std::string>{"img_5.JPEG"});
  CHECK(j["model"]["metadata"]["fgq.input_size"] == "8");
  CHECK(j["options"]["preprocess"]["input_size"] == 8);
  REQUIRE(j["images"].size() == 4);
  const auto& red = j["images"][0];
  CHECK(red["file"] == "img_1.png");
  CHECK(red["top5"] == std::vector<int>{0, 1, 2, 3, 4});
  // Logits (1, 0, 0, 0, 0, 0) -> softmax probability of class 0.
  const double e = std::exp(1.0);
  CHECK(red["top5_scores"][0].get<double>() == Approx(e / (e + 5)).epsilon(1e-4));
  CHECK(j["images"][3]["correct1"] == false);
  CHECK(j["images"][3]["correct5"] == true);
  // --quiet: only the skip warning on stderr.
  CHECK(r.err.find("fgq-run:") == std::string::npos);
}

TEST_CASE("fgq-run: a graph ending in Softmax is not softmaxed again") {
  Fixture f;
  const fs::path json = f.root / "report.json";
  const Result r = f.run("--model " + f.model(true) + " --imagenet " + f.val.string() +
                         " --quiet --json " + json.string());
  INFO(r.err);
  REQUIRE(r.code == 0);
  const nlohmann::json j = nlohmann::json::parse(slurp(json));
  const double e = std::exp(1.0);
  CHECK(j["images"][0]["top5_scores"][0].get<double>() == Approx(e / (e + 5)).epsilon(1e-4));
  CHECK(j["top1"].get<double>() == 0.75);
}

TEST_CASE("fgq-run: --limit then --shard select a deterministic slice") {
  Fixture f;
  // First 4 images (img_1..img_4), shard 1 of 2 -> img_2 (right) and img_4 (wrong).
  const Result r = f.run("--model " + f.model() + " --imagenet " + f.val.string() +
                         " --limit 4 --shard 1/2 --quiet");
  INFO(r.err);
  CHECK(r.code == 0);
  CHECK(r.out.rfind("Top-1 50.00 % (1/2)  Top-5 100.00 % (2/2)  skipped 0  2 images", 0) == 0);
  const Result bad = f.run("--model " + f.model() + " --imagenet " + f.val.string() + " --shard 2/2");
  CHECK(bad.code == 2);
  CHECK(bad.err.find("--shard: '2/2' must be i/n") != std::string::npos);
}

TEST_CASE("fgq-run: a missing folder is one line and exit code 2") {
  Fixture f;
  const std::string dir = (f.root / "nope").string();
  const Result r = f.run("--model " + f.model() + " --imagenet " + dir);
  CHECK(r.code == 2);
  CHECK(r.err == "fgq-run: " + dir + ": no such directory\n");
  CHECK(r.out.empty());
}

TEST_CASE("fgq-run: a bad model file is the loader's one-line error and exit code 2") {
  Fixture f;
  const fs::path bad = f.root / "bad.onnx";
  std::ofstream(bad) << "garbage";
  const Result r = f.run("--model " + bad.string() + " --imagenet " + f.val.string());
  CHECK(r.code == 2);
  CHECK(r.err.rfind("fgq-run: " + bad.string() + ": ", 0) == 0);
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
}

TEST_CASE("fgq-run: a crop that does not match the network input is refused") {
  Fixture f;
  const Result r = f.run("--model " + f.model() + " --imagenet " + f.val.string() + " --crop 16");
  CHECK(r.code == 2);
  CHECK(r.err.find("see --crop") != std::string::npos);
}

TEST_CASE("fgq-run: --quant fgq calibrates on the first --calib-count images and still scores") {
  Fixture f;
  const fs::path json = f.root / "report.json";
  // The first 3 sorted images of the folder are readable; img_5.JPEG is not.
  const Result r = f.run("--model " + f.model() + " --imagenet " + f.val.string() +
                         " --quant fgq --calib " + f.val.string() + " --calib-count 3 --quiet --json " +
                         json.string());
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(r.out.rfind("Top-1 75.00 % (3/4)", 0) == 0);
  const nlohmann::json j = nlohmann::json::parse(slurp(json));
  CHECK(j["quantization"]["method"] == "fgq");
  CHECK(j["quantization"]["calib_images"] == 3);
  CHECK(j["quantization"]["group"] == 4);
  // An unreadable calibration image is an error, not a silently smaller calibration set.
  const Result bad = f.run("--model " + f.model() + " --imagenet " + f.val.string() +
                           " --quant fgq --calib " + f.val.string());
  CHECK(bad.code == 2);
  CHECK(bad.err.find("img_5.JPEG: cannot decode image") != std::string::npos);
}

TEST_CASE("fgq-run: usage errors exit with 1") {
  Fixture f;
  CHECK(f.run("--model " + f.model() + " --imagenet " + f.val.string() + " --batch 0").code == 1);
  CHECK(f.run("--imagenet " + f.val.string()).code == 1);  // --model is required
  CHECK(f.run("--help").code == 0);
}
