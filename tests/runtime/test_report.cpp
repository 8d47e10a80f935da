// Scoring (top-k, softmax, accuracy counts), the summary line and the JSON report file.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>

#include "graph/error.h"
#include "runtime/report.h"
#include "support/test_util.h"

namespace fs = std::filesystem;

TEST_CASE("report: top_k returns the largest first, ties to the lower index") {
  const float s[] = {0.1f, 0.7f, 0.3f, 0.7f, -2.f, 0.5f};
  CHECK(fgq::top_k(s, 6, 3) == std::vector<int>{1, 3, 5});
  CHECK(fgq::top_k(s, 6, 1) == std::vector<int>{1});
  CHECK(fgq::top_k(s, 3, 5) == std::vector<int>{1, 2, 0});  // k clamped to n
}

TEST_CASE("report: softmax is stable for large logits and sums to one") {
  const float logits[] = {1000.f, 1001.f, 999.f};
  float p[3];
  fgq::softmax(logits, 3, p);
  CHECK(p[0] + p[1] + p[2] == Approx(1.f));
  CHECK(p[1] == Approx(std::exp(1.f) / (1 + std::exp(1.f) + std::exp(-1.f))));
}

TEST_CASE("report: score_image marks top-1 / top-5 hits and reports probabilities") {
  std::vector<float> logits(10, 0.f);
  logits[3] = 5, logits[7] = 4, logits[1] = 3, logits[0] = 2, logits[9] = 1;
  const fgq::ImageResult hit = fgq::score_image("a", 3, logits.data(), 10, false);
  CHECK(hit.top5 == std::vector<int>{3, 7, 1, 0, 9});
  CHECK(hit.correct1);
  CHECK(hit.correct5);
  std::vector<float> p(10);
  fgq::softmax(logits.data(), 10, p.data());
  CHECK(hit.top5_scores[0] == Approx(p[3]));
  const fgq::ImageResult near = fgq::score_image("b", 9, logits.data(), 10, false);
  CHECK_FALSE(near.correct1);
  CHECK(near.correct5);
  const fgq::ImageResult miss = fgq::score_image("c", 5, logits.data(), 10, false);
  CHECK_FALSE(miss.correct5);
  // A row that already is a probability is reported as is.
  const fgq::ImageResult prob = fgq::score_image("d", 3, logits.data(), 10, true);
  CHECK(prob.top5_scores[0] == 5.f);
}

TEST_CASE("report: Accuracy counts hits over scored images, skipped apart") {
  fgq::Accuracy acc;
  CHECK(acc.top1() == 0);
  fgq::ImageResult r;
  r.correct1 = r.correct5 = true;
  acc.add(r);
  r.correct1 = false;
  acc.add(r);
  r.correct5 = false;
  acc.add(r);
  acc.add(r);
  acc.add_skipped("bad.JPEG");
  CHECK(acc.scored() == 4);
  CHECK(acc.top1_correct() == 1);
  CHECK(acc.top5_correct() == 2);
  CHECK(acc.skipped() == 1);
  CHECK(acc.top1() == 0.25);
  CHECK(acc.top5() == 0.5);
  CHECK(fgq::summary_line(acc, 2.0) ==
        "Top-1 25.00 % (1/4)  Top-5 50.00 % (2/4)  skipped 1  4 images in 2.0 s (2.0 img/s)");
}

TEST_CASE("report: JSON report round-trips through the file, written atomically") {
  fgq::Accuracy acc;
  std::vector<float> row = {0.f, 2.f, 1.f};
  acc.add(fgq::score_image("x/ILSVRC2012_val_00000001.JPEG", 1, row.data(), 3, false));
  acc.add(fgq::score_image("ILSVRC2012_val_00000002.JPEG", 2, row.data(), 3, false));
  acc.add_skipped("broken.JPEG");
  fgq::RunInfo info;
  info.model_path = "models/tiny.onnx";
  info.model_metadata = {{"fgq.channel_order", "BGR"}};
  info.options = {{"batch", 8}};
  info.images_selected = 3;
  info.eval_seconds = 0.5;
  info.interrupted = true;

  const fs::path dir = fgq::test::temp_path("_report");
  fs::create_directories(dir);
  const std::string path = (dir / "r.json").string();
  fgq::write_json_atomic(path, {{"old", true}});
  fgq::write_json_atomic(path, fgq::report_json(info, acc));  // replaces the old file
  const nlohmann::json j = nlohmann::json::parse(std::ifstream(path));
  CHECK(j["model"]["path"] == "models/tiny.onnx");
  CHECK(j["model"]["metadata"]["fgq.channel_order"] == "BGR");
  CHECK(j["options"]["batch"] == 8);
  CHECK(j["counts"]["selected"] == 3);
  CHECK(j["counts"]["scored"] == 2);
  CHECK(j["counts"]["skipped"] == 1);
  CHECK(j["counts"]["top1_correct"] == 1);
  CHECK(j["top1"].get<double>() == 0.5);
  CHECK(j["top5"].get<double>() == 1.0);
  CHECK(j["timing"]["images_per_s"].get<double>() == 4.0);
  CHECK(j["interrupted"] == true);
  CHECK(j["skipped_files"] == std::vector<std::string>{"broken.JPEG"});
  CHECK_FALSE(j.contains("old"));
  REQUIRE(j["images"].size() == 2);
  const auto& first = j["images"][0];
  CHECK(first["file"] == "x/ILSVRC2012_val_00000001.JPEG");
  CHECK(first["label"] == 1);
  CHECK(first["top5"] == std::vector<int>{1, 2, 0});
  CHECK(first["top5_scores"][0].get<double>() == Approx(std::exp(2.0) / (1 + std::exp(1.0) + std::exp(2.0))));
  CHECK(first["correct1"] == true);
  CHECK(j["images"][1]["correct1"] == false);
  CHECK(j["images"][1]["correct5"] == true);
  // Only the report is left behind: the temp file was renamed.
  CHECK(std::distance(fs::directory_iterator(dir), fs::directory_iterator()) == 1);
  fs::remove_all(dir);
}

TEST_CASE("report: an unwritable JSON path is a one-line fgq::Error naming it") {
  const std::string path = fgq::test::temp_path("_nodir") + "/r.json";
  CHECK_THROWS_WITH(fgq::write_json_atomic(path, nlohmann::json::object()),
                    Catch::StartsWith(path + ": cannot write"));
}

TEST_CASE("report: json_float keeps the float's short decimal form") {
  CHECK(fgq::json_float(0.1f) == 0.1);
  CHECK(fgq::json_float(103.939f) == 103.939);
  CHECK(nlohmann::json(fgq::json_float(0.25f)).dump() == "0.25");
}
