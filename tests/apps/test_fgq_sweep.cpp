// Runs the fgq-sweep binary (FGQ_SWEEP_EXE) on the colour model of app_fixture.h: one report per
// configuration, the same numbers as fgq-run, resumption, and bad configuration lists.
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "app_fixture.h"

namespace fs = std::filesystem;
using fgq::test::Fixture;
using fgq::test::Result;
using fgq::test::slurp;

namespace {

Result sweep(const Fixture& f, const std::string& configs) {
  const fs::path list = f.root / "configs.txt";
  std::ofstream(list) << configs;
  return f.run_program(FGQ_SWEEP_EXE, "--model " + f.model() + " --imagenet " + f.val.string() +
                                          " --calib " + f.val.string() + " --calib-count 3 --configs " +
                                          list.string() + " --out " + (f.root / "runs").string());
}

}  // namespace

TEST_CASE("fgq-sweep: one fgq-run report per configuration, kept on a second run") {
  Fixture f;
  const Result r = sweep(f, "# the table\nfp32\n\nq2 --quant fgq --group 2 --act-bits 4  # 4-bit\n");
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("fp32                         Top-1 75.00 % (3/4)") != std::string::npos);
  CHECK(r.err.find("warning: " + (f.val / "img_5.JPEG").string()) != std::string::npos);
  const nlohmann::json fp32 = nlohmann::json::parse(slurp(f.root / "runs/fp32.json"));
  CHECK(fp32["top1"].get<double>() == 0.75);
  CHECK(fp32["counts"]["skipped"] == 1);
  CHECK(fp32["quantization"].is_null());
  const nlohmann::json q2 = nlohmann::json::parse(slurp(f.root / "runs/q2.json"));
  CHECK(q2["quantization"]["group"] == 2);
  CHECK(q2["quantization"]["act_bits"] == 4);
  CHECK(q2["quantization"]["calib_images"] == 3);
  CHECK(q2["options"]["config"] == "q2 --quant fgq --group 2 --act-bits 4");

  // fgq-run on the same configuration gives the same scores.
  const fs::path run_json = f.root / "run.json";
  const Result run = f.run("--model " + f.model() + " --imagenet " + f.val.string() + " --calib " +
                           f.val.string() + " --calib-count 3 --quant fgq --group 2 --act-bits 4 --quiet --json " +
                           run_json.string());
  REQUIRE(run.code == 0);
  const nlohmann::json jr = nlohmann::json::parse(slurp(run_json));
  for (size_t i = 0; i < jr["images"].size(); ++i)
    CHECK(jr["images"][i]["top5_scores"] == q2["images"][i]["top5_scores"]);

  const Result again = sweep(f, "fp32\nq2 --quant fgq --group 2 --act-bits 4\n");
  CHECK(again.code == 0);
  CHECK(again.err.find("fgq-sweep: q2: report exists, kept") != std::string::npos);
}

TEST_CASE("fgq-sweep: a bad configuration list is one line naming the line") {
  Fixture f;
  const Result bad_flag = sweep(f, "fp32\nq --quant fgq --group 0\n");
  CHECK(bad_flag.code == 2);
  CHECK(bad_flag.err.rfind("fgq-sweep: " + (f.root / "configs.txt").string() + ":2: ", 0) == 0);
  CHECK(std::count(bad_flag.err.begin(), bad_flag.err.end(), '\n') == 1);
  const Result shared = sweep(f, "q --quant fgq --calib-count 5\n");
  CHECK(shared.code == 2);
  CHECK(shared.err.find("--calib-count is shared by the sweep") != std::string::npos);
  CHECK(sweep(f, "a\na --quant fgq\n").err.find("appears twice") != std::string::npos);
  CHECK(sweep(f, "# nothing\n").err.find("no configurations") != std::string::npos);
  CHECK_FALSE(fs::exists(f.root / "runs"));
}
