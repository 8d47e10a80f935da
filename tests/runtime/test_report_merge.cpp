// Merging shard reports (runtime/report_merge.h) on synthetic reports built with report_json:
// exactness, dataset order across ImageFolder sub-folders, and each refusal's one-line message.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "graph/error.h"
#include "runtime/dataset.h"
#include "runtime/report.h"
#include "runtime/report_merge.h"

using nlohmann::json;

namespace {

// ImageFolder names in dataset order: "a/..." before "a-b/..." although '-' < '/'.
const std::vector<std::string> kNames = {"a/1.JPEG", "a/2.JPEG", "a-b/1.JPEG", "a-b/3.JPEG",
                                         "b/1.JPEG", "b/2.JPEG", "c/9.JPEG"};
const std::string kBroken = "a-b/3.JPEG";

// The report fgq-run writes for `shard` ("" = unsharded) of kNames: image k has label k % 3
// and a score row that puts class k % 2 first.
json report(const std::string& shard) {
  const fgq::Shard s = shard.empty() ? fgq::Shard{} : fgq::parse_shard(shard, "test");
  fgq::Accuracy acc;
  int64_t selected = 0;
  for (size_t k = s.index; k < kNames.size(); k += s.count, ++selected) {
    if (kNames[k] == kBroken) {
      acc.add_skipped(kNames[k]);
      continue;
    }
    std::vector<float> row = {0.1f * k, 0.3f, 0.2f, -1.f};
    row[k % 2] += 1.f;
    acc.add(fgq::score_image(kNames[k], static_cast<int>(k % 3), row.data(), 4, false));
  }
  fgq::RunInfo info;
  info.model_path = "m.onnx";
  info.model_metadata = {{"fgq.input_size", "8"}};
  info.options = {{"shard", shard}, {"limit", 0}, {"batch", 8}, {"threads", 2}};
  info.dataset = {{"dir", "val"}, {"layout", "imagefolder"}, {"images_found", kNames.size()}};
  info.images_selected = selected;
  info.eval_seconds = 1.5;
  return fgq::report_json(info, acc);
}

std::vector<fgq::ShardReport> shards(int n) {
  std::vector<fgq::ShardReport> v;
  for (int i = n - 1; i >= 0; --i) {  // reversed: order must not matter
    const std::string s = std::to_string(i) + "/" + std::to_string(n);
    v.push_back({"s" + std::to_string(i) + ".json", report(s)});
  }
  return v;
}

// The report as fgq-run writes it to a file.
std::string report_json_text(const json& j) {
  return j.dump(2, ' ', false, json::error_handler_t::replace);
}

std::string merge_error(const std::vector<fgq::ShardReport>& v) {
  try {
    fgq::merge_shards(v);
  } catch (const fgq::Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("report merge: shard arithmetic and dataset order") {
  CHECK(fgq::dataset_order("a/x.JPEG", "a-b/y.JPEG"));
  CHECK_FALSE(fgq::dataset_order("a-b/y.JPEG", "a/x.JPEG"));
  CHECK(fgq::dataset_order("ILSVRC2012_val_00000009.JPEG", "ILSVRC2012_val_00000010.JPEG"));
  CHECK(fgq::shard_size(7, {0, 3}) == 3);
  CHECK(fgq::shard_size(7, {2, 3}) == 2);
  CHECK(fgq::shard_size(1, {2, 3}) == 0);
  CHECK(fgq::parse_shard(" 1 / 4", "x").count == 4);
  CHECK_THROWS_WITH(fgq::parse_shard("3/3", "--shard"), "--shard: '3/3' must be i/n with 0 <= i < n");
  CHECK_THROWS_WITH(fgq::parse_shard("1/2/3", "--shard"), Catch::StartsWith("--shard: '1/2/3'"));
}

TEST_CASE("report merge: 1, 2, 3 and 7 shards give exactly the unsharded report") {
  json want = report("");
  want.erase("timing");
  for (int n : {1, 2, 3, 7}) {
    INFO(n << " shards");
    const fgq::MergedRun m = fgq::merge_shards(shards(n));
    CHECK(m.info.eval_seconds == 1.5 * n);  // timings add up
    json got = fgq::report_json(m.info, m.acc);
    got.erase("timing");
    CHECK(got.dump(1) == want.dump(1));
  }
}

TEST_CASE("report merge: refusals name the file and the problem") {
  auto v = shards(3);  // s2, s1, s0
  CHECK(merge_error({v[0], v[1]}) == "shard 0/3 is missing");
  CHECK(merge_error({v[0], v[1], v[2], v[2]}) == "s0.json: shard 0/3 is given twice (also s0.json)");
  CHECK(merge_error({}) == "no shard reports to merge");

  auto w = v;
  w[1].report["interrupted"] = true;
  CHECK(merge_error(w) == "s1.json: shard 1/3 was interrupted; run it again before merging");

  w = v;
  w[1].report["model"]["metadata"]["fgq.input_size"] = "9";
  CHECK(merge_error(w) == "s1.json: model.metadata differs from s2.json (not shards of one run)");

  w = v;
  w[2].report["options"]["batch"] = 1;  // batch and threads do not change results
  w[2].report["options"]["resize"] = 300;
  CHECK(merge_error(w) == "s0.json: options.resize differs from s2.json (not shards of one run)");

  w = v;
  w[1].report["counts"]["top1_correct"] = 99;
  CHECK(merge_error(w) == "s1.json: counts do not match the image records (edited or truncated report?)");

  w = v;  // s0 lost its last record, its counts were kept consistent
  json& r = w[2].report;
  const json last = r["images"].back();
  r["images"].erase(r["images"].size() - 1);
  for (const char* key : {"selected", "scored"}) r["counts"][key] = r["counts"][key].get<int>() - 1;
  r["counts"]["top1_correct"] = r["counts"]["top1_correct"].get<int>() - last["correct1"].get<bool>();
  r["counts"]["top5_correct"] = r["counts"]["top5_correct"].get<int>() - last["correct5"].get<bool>();
  CHECK(merge_error(w) == "s0.json: has 2 images, but shard 0/3 of 7 has 3");

  w = v;
  w[0].report["options"]["shard"] = "";
  CHECK(merge_error(w) == "s2.json: not a shard report (written without --shard)");
  w[0].report = json::array();
  CHECK_THAT(merge_error(w), Catch::StartsWith("s2.json: not an fgq-run report ("));
}

TEST_CASE("report merge: overlapping records are refused") {
  auto v = shards(2);  // s1, s0
  // s1's first record renamed to one of s0's images; every count stays consistent.
  v[0].report["images"][0]["file"] = v[1].report["images"][0]["file"];
  CHECK(merge_error(v) == "s0.json: image 'a/1.JPEG' is also in s1.json (shards overlap)");
}

namespace {

// A run over names that are not all UTF-8, two of them skipped with a reason; `shard` as above.
json latin1_report(const std::string& shard) {
  // In dataset order (raw bytes: 'x' < 0xFF).
  const std::vector<std::string> names = {"a/caf\xe9.JPEG", "a/plain.JPEG", "b/x.JPEG",
                                          "b/\xff\xfe.JPEG", "c/\x80.JPEG"};
  const fgq::Shard s = shard.empty() ? fgq::Shard{} : fgq::parse_shard(shard, "test");
  fgq::Accuracy acc;
  int64_t selected = 0;
  for (size_t k = s.index; k < names.size(); k += s.count, ++selected) {
    if (k == 1 || k == 4) {
      acc.add_skipped(names[k], k == 1 ? "cannot decode image" : "truncated JPEG (99 bytes)");
      continue;
    }
    // Scores that need all 9 digits of a float: a rounded form would not merge exactly.
    std::vector<float> row = {0.123456789f * k, 1.f / 3, 2.f / 7, -1.f / 11};
    acc.add(fgq::score_image(names[k], static_cast<int>(k % 4), row.data(), 4, false));
  }
  fgq::RunInfo info;
  info.model_path = "m.onnx";
  info.options = {{"shard", shard}, {"limit", 0}, {"batch", 8}, {"threads", 2}};
  info.dataset = {{"dir", "val\xe9"}, {"layout", "imagefolder"}, {"images_found", names.size()}};
  info.images_selected = selected;
  return fgq::report_json(info, acc);
}

// As fgq-merge sees a report: written to text (invalid UTF-8 replaced) and parsed again.
json through_file(const json& j) {
  return json::parse(j.dump(2, ' ', false, json::error_handler_t::replace));
}

}  // namespace

TEST_CASE("report merge: non-UTF-8 names and skip reasons merge byte for byte") {
  const std::string want = report_json_text(latin1_report(""));
  for (int n : {1, 2, 3, 5}) {
    INFO(n << " shards");
    std::vector<fgq::ShardReport> v;
    for (int i = 0; i < n; ++i) {
      const std::string s = std::to_string(i) + "/" + std::to_string(n);
      v.push_back({"s" + std::to_string(i) + ".json", through_file(latin1_report(s))});
    }
    const fgq::MergedRun m = fgq::merge_shards(v);
    REQUIRE(m.acc.skipped_files().size() == 2);
    CHECK(m.acc.skipped_files()[1] == "c/\x80.JPEG");  // restored from its hex form
    CHECK(m.acc.skipped_reasons()[1] == "truncated JPEG (99 bytes)");
    CHECK(m.acc.results()[0].file == "a/caf\xe9.JPEG");
    CHECK(report_json_text(fgq::report_json(m.info, m.acc)) == want);
  }
}

TEST_CASE("report merge: wrapped or fractional numbers in a shard are refused, naming the record") {
  auto v = shards(2);  // s1, s0
  v[1].report["images"][0]["label"] = 4294967296LL;  // would have wrapped to 0
  CHECK(merge_error(v) ==
        "s0.json: images[0]: label: must be an integer from 0 to 2147483647, got 4294967296");
  v = shards(2);
  v[1].report["counts"]["selected"] = 3.0;
  CHECK(merge_error(v) == "s0.json: counts.selected: must be an integer from 0 to 9223372036854775807, got 3.0");
  v = shards(2);
  v[0].report["dataset"]["images_found"] = -7;
  v[1].report["dataset"]["images_found"] = -7;
  CHECK(merge_error(v) == "s1.json: dataset.images_found: must be an integer from 0 to 9223372036854775807, got -7");
  v = shards(2);
  v[0].report["skipped_images"] = json::array();
  CHECK(merge_error(v) == "s1.json: skipped_images does not match skipped_files (edited or truncated report?)");
  v = shards(2);
  v[1].report["images"][1]["file_hex"] = "00";
  CHECK_THAT(merge_error(v), Catch::StartsWith("s0.json: images[1]: file_hex: does not spell"));
}

TEST_CASE("report merge: reports written before skip reasons still merge") {
  auto v = shards(3);
  for (auto& s : v) s.report.erase("skipped_images");
  const fgq::MergedRun m = fgq::merge_shards(v);
  CHECK(m.acc.skipped_files() == std::vector<std::string>{kBroken});
  CHECK(m.acc.skipped_reasons() == std::vector<std::string>{""});
}
