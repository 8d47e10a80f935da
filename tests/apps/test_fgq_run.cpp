// Runs the fgq-run binary (path compiled in as FGQ_RUN_EXE) on the colour model of
// app_fixture.h. Checks exit codes, the summary line, skipping and the JSON report.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "app_fixture.h"

namespace fs = std::filesystem;
using fgq::test::Fixture;
using fgq::test::Result;
using fgq::test::slurp;

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

TEST_CASE("fgq-run: --save-quant writes a model a later run scores alike without calibrating") {
  Fixture f;
  const fs::path q = f.root / "colour_fgq.onnx", a = f.root / "a.json", b = f.root / "b.json";
  const std::string data = " --imagenet " + f.val.string() + " --quiet --json ";
  const Result save = f.run("--model " + f.model() + data + a.string() + " --quant fgq --group 2 --calib " +
                            f.val.string() + " --calib-count 3 --save-quant " + q.string());
  INFO(save.err);
  REQUIRE(save.code == 0);
  REQUIRE(fs::exists(q));
  const Result load = f.run("--model " + q.string() + data + b.string());
  INFO(load.err);
  REQUIRE(load.code == 0);
  CHECK(load.out.substr(0, 40) == save.out.substr(0, 40));
  const nlohmann::json ja = nlohmann::json::parse(slurp(a)), jb = nlohmann::json::parse(slurp(b));
  CHECK(jb["quantization"]["group"] == 2);  // recorded in the saved model
  CHECK(jb["timing"]["quantize_s"] == 0);
  for (size_t i = 0; i < ja["images"].size(); ++i)
    CHECK(ja["images"][i]["top5_scores"] == jb["images"][i]["top5_scores"]);
  const Result again = f.run("--model " + q.string() + " --imagenet " + f.val.string() + " --quant fgq");
  CHECK(again.code == 2);
  CHECK(again.err.find("already quantized") != std::string::npos);
}
