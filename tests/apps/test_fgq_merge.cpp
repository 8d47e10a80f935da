// fgq-merge (path compiled in as FGQ_MERGE_EXE) on real fgq-run shard reports: the merge of
// shards 0/3, 1/3, 2/3 is the unsharded report, and shards of no single run are refused.
#include <catch2/catch.hpp>

#include <algorithm>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "app_fixture.h"

using fgq::test::Fixture;
using fgq::test::Result;
using fgq::test::slurp;

namespace {

// fgq-run on the fixture's folder with `extra` options; returns the JSON report's path.
std::string run_json(const Fixture& f, const std::string& name, const std::string& extra) {
  const std::string path = (f.root / name).string();
  const Result r = f.run("--model " + f.model() + " --imagenet " + f.val.string() +
                         " --quiet --batch 2 --threads 1 --json " + path + extra);
  INFO(r.err);
  REQUIRE(r.code == 0);
  return path;
}

std::string summary_counts(const std::string& line) { return line.substr(0, line.find(" in ")); }

}  // namespace

TEST_CASE("fgq-merge: shards 0/3, 1/3, 2/3 merge into exactly the unsharded report") {
  Fixture f;
  const std::string full = run_json(f, "full.json", "");
  const std::string s0 = run_json(f, "s0.json", " --shard 0/3");
  const std::string s1 = run_json(f, "s1.json", " --shard 1/3");  // holds the corrupt img_5
  const std::string s2 = run_json(f, "s2.json", " --shard 2/3");
  const std::string merged = (f.root / "merged.json").string();
  // Out of order on purpose: the merge restores the dataset order.
  const Result m = f.run_program(FGQ_MERGE_EXE, s2 + " " + s0 + " " + s1 + " --json " + merged);
  INFO(m.err);
  REQUIRE(m.code == 0);
  CHECK(m.err.empty());
  CHECK(summary_counts(m.out) ==
        "Top-1 75.00 % (3/4)  Top-5 100.00 % (4/4)  skipped 1  4 images");

  nlohmann::json want = nlohmann::json::parse(slurp(full));
  nlohmann::json got = nlohmann::json::parse(slurp(merged));
  REQUIRE(got["images"].size() == 4);
  CHECK(got["skipped_files"] == want["skipped_files"]);
  CHECK(got["skipped_images"] == want["skipped_images"]);
  CHECK(got["skipped_images"][0]["reason"] == "cannot decode image");
  // Everything but the timings is the same, to the last digit of every score.
  want.erase("timing");
  got.erase("timing");
  CHECK(got.dump(1) == want.dump(1));
}

TEST_CASE("fgq-merge: shards of no single run are refused with one line") {
  Fixture f;
  const std::string s0 = run_json(f, "s0.json", " --shard 0/2");
  const std::string s1 = run_json(f, "s1.json", " --shard 1/2");
  auto merge = [&](const std::string& args) { return f.run_program(FGQ_MERGE_EXE, args); };

  const Result twice = merge(s0 + " " + s0 + " " + s1);
  CHECK(twice.code == 2);
  CHECK(twice.err == "fgq-merge: " + s0 + ": shard 0/2 is given twice (also " + s0 + ")\n");

  const Result missing = merge(s1);
  CHECK(missing.code == 2);
  CHECK(missing.err == "fgq-merge: shard 0/2 is missing\n");

  const std::string limited = run_json(f, "l1.json", " --shard 1/2 --limit 3");
  const Result other_run = merge(s0 + " " + limited);
  CHECK(other_run.code == 2);
  CHECK(other_run.err == "fgq-merge: " + limited + ": options.limit differs from " + s0 +
                             " (not shards of one run)\n");

  const std::string sharded3 = run_json(f, "t2.json", " --shard 2/3");
  const Result other_n = merge(s0 + " " + s1 + " " + sharded3);
  CHECK(other_n.code == 2);
  CHECK(other_n.err == "fgq-merge: " + sharded3 + ": shard 2/3 is not one of 2 like " + s0 + "\n");

  CHECK(merge("").code == 1);  // no reports: usage error
  const Result unreadable = merge((f.root / "nope.json").string());
  CHECK(unreadable.code == 2);
  CHECK(unreadable.err == "fgq-merge: " + (f.root / "nope.json").string() + ": cannot open\n");
}

TEST_CASE("fgq-merge: file names that are not UTF-8 and skip reasons merge byte for byte") {
  Fixture f;
  // Latin-1 names (0xE9 = e acute): not UTF-8, which JSON strings must be.
  f.image("img_caf\xe9.png", {0, 255, 0});
  fgq::test::write_truncated_jpeg(f.val / "img_\xff.JPEG", {0, 0, 255}, 0.5);
  std::ofstream(f.val / "val_labels.txt", std::ios::app) << "img_caf\xe9.png 1\nimg_\xff.JPEG 0\n";
  const std::string full = run_json(f, "full.json", "");
  std::vector<std::string> parts;
  for (int i = 0; i < 3; ++i) parts.push_back(run_json(f, "s" + std::to_string(i) + ".json", " --shard " + std::to_string(i) + "/3"));
  const std::string merged = (f.root / "merged.json").string();
  const Result m = f.run_program(FGQ_MERGE_EXE, parts[2] + " " + parts[1] + " " + parts[0] + " --json " + merged);
  INFO(m.err);
  REQUIRE(m.code == 0);
  CHECK(summary_counts(m.out) == "Top-1 80.00 % (4/5)  Top-5 100.00 % (5/5)  skipped 2  5 images");
  // Strict parses: every string in both files is UTF-8.
  nlohmann::json want = nlohmann::json::parse(slurp(full));
  nlohmann::json got = nlohmann::json::parse(slurp(merged));
  CHECK(want["images"][4]["file"] == "img_caf\xef\xbf\xbd.png");
  CHECK(want["images"][4]["file_hex"] == "696d675f636166e92e706e67");
  CHECK(want["skipped_images"][1]["file_hex"] == "696d675fff2e4a504547");
  CHECK(want["skipped_images"][1]["reason"].get<std::string>().rfind("truncated JPEG (", 0) == 0);
  want.erase("timing");
  got.erase("timing");
  CHECK(got.dump(1) == want.dump(1));
}

TEST_CASE("fgq-merge: a shard with a label that does not fit an int is refused, naming the record") {
  Fixture f;
  const std::string s0 = run_json(f, "s0.json", " --shard 0/2");
  const std::string s1 = run_json(f, "s1.json", " --shard 1/2");
  std::string text = slurp(s1);
  // img_2's label 1 -> 2^32 + 1, which used to wrap back to 1 (and still count as correct).
  const std::string from = "\"label\": 1,";
  REQUIRE(text.find(from) != std::string::npos);
  text.replace(text.find(from), from.size(), "\"label\": 4294967297,");
  std::ofstream(s1) << text;
  const Result r = f.run_program(FGQ_MERGE_EXE, s0 + " " + s1);
  CHECK(r.code == 2);
  CHECK(r.err == "fgq-merge: " + s1 + ": images[0]: label: must be an integer from 0 to 2147483647, got 4294967297\n");
}
