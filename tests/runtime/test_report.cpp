// Scoring (top-k, softmax, accuracy counts), the summary line and the JSON report file.
#include <catch2/catch.hpp>

#include <climits>
#include <cstdint>
#include <cstring>
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

TEST_CASE("report: top_k ranks NaN last, no undefined ordering") {
  const float nan = std::nanf("");
  const float s[] = {nan, 0.5f, nan, 2.f, -INFINITY, 0.5f};
  CHECK(fgq::top_k(s, 6, 6) == std::vector<int>{3, 1, 5, 4, 0, 2});
  CHECK(fgq::top_k(s, 6, 2) == std::vector<int>{3, 1});
  CHECK(fgq::top_k(s, 0, 5).empty());
  CHECK(fgq::top_k(s, 6, -1).empty());
}

TEST_CASE("report: rank_row is score_image's ranking for any k") {
  const std::vector<float> logits = {0.5f, 3.f, -1.f, 3.f, 2.f, 0.f, 1.f};
  const fgq::TopK t = fgq::rank_row(logits.data(), 7, 7, false);
  CHECK(t.classes == std::vector<int>{1, 3, 4, 6, 0, 5, 2});
  const fgq::ImageResult r = fgq::score_image("x", 4, logits.data(), 7, false);
  CHECK(r.top5 == std::vector<int>(t.classes.begin(), t.classes.begin() + 5));
  CHECK(r.top5_scores == std::vector<float>(t.scores.begin(), t.scores.begin() + 5));
  const fgq::TopK p = fgq::rank_row(logits.data(), 7, 2, true);  // already probabilities
  CHECK(p.scores == std::vector<float>{3.f, 3.f});
}

namespace {

nlohmann::json record(const std::string& file, int label) {
  const float row[] = {0.f, 3.f, 1.f, 2.f};
  fgq::Accuracy acc;
  acc.add(fgq::score_image(file, label, row, 4, false));
  return fgq::report_json(fgq::RunInfo{}, acc)["images"][0];
}

std::string read_error(const nlohmann::json& j) {
  try {
    fgq::image_result_from_json(j);
  } catch (const fgq::Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("report: records read back range-checked, integers as integers") {
  nlohmann::json r = record("a.JPEG", 1);
  const fgq::ImageResult ok = fgq::image_result_from_json(r);
  CHECK(ok.label == 1);
  CHECK(ok.top5 == std::vector<int>{1, 3, 2, 0});
  CHECK(ok.correct1);

  // 2^32 + 1 used to wrap to 1, the top-1 class: a wrong label scored as correct.
  r["label"] = 4294967297LL;
  CHECK(read_error(r) == "label: must be an integer from 0 to 2147483647, got 4294967297");
  r["label"] = 1e300;  // a double-to-int conversion out of range is undefined behaviour
  CHECK(read_error(r) == "label: must be an integer from 0 to 2147483647, got 1e+300");
  r["label"] = 1.0;
  CHECK(read_error(r) == "label: must be an integer from 0 to 2147483647, got 1.0");
  r["label"] = "1";
  CHECK(read_error(r) == "label: must be an integer from 0 to 2147483647, got \"1\"");
  r["label"] = -1;
  CHECK(read_error(r) == "label: must be an integer from 0 to 2147483647, got -1");

  r = record("a.JPEG", 1);
  r["top5"][1] = 1;
  CHECK(read_error(r) == "top5: lists class 1 twice");
  r = record("a.JPEG", 1);
  r["top5"][2] = 18446744073709551615ULL;
  CHECK(read_error(r) == "top5: must be an integer from 0 to 2147483647, got 18446744073709551615");
  r = record("a.JPEG", 1);
  r["top5_scores"][0] = 1e300;  // not a float
  CHECK(read_error(r) == "top5_scores: must be finite floats");
  r = record("a.JPEG", 1);
  r["top5_scores"].erase(0);
  CHECK(read_error(r) == "top5_scores: must be a list of one score per top5 class");
  r = record("a.JPEG", 1);
  r["correct1"] = false;
  CHECK(read_error(r) == "correct1/correct5: do not match label 1 and top5");
  r = record("a.JPEG", 1);
  r["top5_scores"][3] = nullptr;  // how JSON writes a NaN score
  CHECK(std::isnan(fgq::image_result_from_json(r).top5_scores[3]));
  CHECK_THROWS_AS(fgq::image_result_from_json(nlohmann::json::array()), fgq::Error);
  r.erase("label");
  CHECK_THROWS_AS(fgq::image_result_from_json(r), nlohmann::json::exception);
}

TEST_CASE("report: file names that are not UTF-8 survive the JSON, hex-escaped") {
  const std::string latin1 = "caf\xe9/\xff\xfe.JPEG";  // ISO-8859-1 names, as some archives have
  CHECK_FALSE(fgq::valid_utf8(latin1));
  CHECK(fgq::valid_utf8("caf\xc3\xa9.JPEG"));
  CHECK_FALSE(fgq::valid_utf8("\xc0\xaf"));          // overlong '/'
  CHECK_FALSE(fgq::valid_utf8("\xed\xa0\x80"));      // a UTF-16 surrogate
  CHECK_FALSE(fgq::valid_utf8("\xf4\x90\x80\x80"));  // past U+10FFFF
  CHECK_FALSE(fgq::valid_utf8("\xe2\x82"));          // cut short

  fgq::Accuracy acc;
  const float row[] = {1.f, 0.f};
  acc.add(fgq::score_image(latin1, 0, row, 2, false));
  acc.add(fgq::score_image("plain.JPEG", 0, row, 2, false));
  acc.add_skipped("bad\x80.JPEG", "truncated JPEG (10 bytes)");
  fgq::RunInfo info;
  info.model_path = "m\xff.onnx";
  const nlohmann::json j = fgq::report_json(info, acc);
  const std::string text = j.dump();  // strict: would throw on any invalid UTF-8
  const nlohmann::json back = nlohmann::json::parse(text);
  CHECK(back["images"][0]["file"] == "caf\xef\xbf\xbd/\xef\xbf\xbd\xef\xbf\xbd.JPEG");
  CHECK(back["images"][0]["file_hex"] == "636166e92ffffe2e4a504547");
  CHECK_FALSE(back["images"][1].contains("file_hex"));
  CHECK(fgq::image_result_from_json(back["images"][0]).file == latin1);
  CHECK(fgq::file_name_from_json(back["skipped_images"][0]) == "bad\x80.JPEG");
  CHECK(back["skipped_images"][0]["reason"] == "truncated JPEG (10 bytes)");
  CHECK(back["skipped_files"] == std::vector<std::string>{"bad\xef\xbf\xbd.JPEG"});
  CHECK(back["model"]["path"] == "m\xef\xbf\xbd.onnx");

  nlohmann::json r = back["images"][0];
  r["file_hex"] = "6";
  CHECK_THROWS_WITH(fgq::image_result_from_json(r), "file_hex: must be a string of hex digits");
  r["file_hex"] = "zz";
  CHECK_THROWS_WITH(fgq::image_result_from_json(r), "file_hex: must be a string of hex digits");
  r["file_hex"] = "41";
  CHECK_THROWS_WITH(fgq::image_result_from_json(r), Catch::StartsWith("file_hex: does not spell the file name"));
}

TEST_CASE("report: json_int reads integers only, within the range") {
  using nlohmann::json;
  CHECK(fgq::json_int(json(5), 0, 10, "n") == 5);
  CHECK(fgq::json_int(json(-5), -10, 10, "n") == -5);
  CHECK(fgq::json_int(json(INT64_MAX), 0, INT64_MAX, "n") == INT64_MAX);
  CHECK_THROWS_WITH(fgq::json_int(json(11), 0, 10, "n"), "n: must be an integer from 0 to 10, got 11");
  CHECK_THROWS_WITH(fgq::json_int(json(UINT64_MAX), 0, INT64_MAX, "n"), Catch::StartsWith("n: must be"));
  CHECK_THROWS_WITH(fgq::json_int(json(2.5), 0, 10, "n"), "n: must be an integer from 0 to 10, got 2.5");
  CHECK_THROWS_WITH(fgq::json_int(json(nullptr), 0, 10, "n"), "n: must be an integer from 0 to 10, got null");
}

TEST_CASE("report: scores read back as the same float, so a merge rewrites the same digits") {
  uint32_t state = 12345;
  for (int i = 0; i < 200000; ++i) {
    state = state * 1664525u + 1013904223u;
    float f;
    const uint32_t bits = 0x30000000u + state % 0x0F800000u;  // about 5e-10 .. 1
    std::memcpy(&f, &bits, 4);
    const double written = fgq::json_float(f);
    const double reread = nlohmann::json::parse(nlohmann::json(written).dump()).get<double>();
    REQUIRE(reread == written);
    REQUIRE(fgq::float_from_json(reread) == f);
  }
  CHECK(fgq::float_from_json(0.1) == 0.1f);
}
