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

namespace {

// The environment of a job-array task for a command line: the scheduler variables this process
// may have (a CI inside Slurm) removed, then `set` ("NAME=value ...").
std::string array_env(const std::string& set) {
  return "env -u SLURM_ARRAY_TASK_ID -u SLURM_ARRAY_TASK_MIN -u SLURM_ARRAY_TASK_MAX "
         "-u SLURM_ARRAY_TASK_STEP -u SLURM_ARRAY_TASK_COUNT -u SLURM_ARRAY_JOB_ID -u SLURM_JOB_ID "
         "-u JOB_COMPLETION_INDEX -u FGQ_SHARD_COUNT " +
         set + " " + FGQ_SWEEP_EXE;
}

const char* const kTwoConfigs = "fp32\nq2 --quant fgq --group 2 --act-bits 4\n";

Result sweep_in(const Fixture& f, const std::string& env, const std::string& out, const std::string& more) {
  return f.run_program(array_env(env), "--model " + f.model() + " --imagenet " + f.val.string() + " --calib " +
                                           f.val.string() + " --calib-count 3 --configs " +
                                           (f.root / "configs.txt").string() + " --out " +
                                           (f.root / out).string() + " " + more);
}

nlohmann::json read(const fs::path& p) { return nlohmann::json::parse(slurp(p)); }

}  // namespace

TEST_CASE("fgq-sweep: --list, and --config-index K runs only configuration K") {
  Fixture f;
  std::ofstream(f.root / "configs.txt") << "# the list\nfp32\n\nq2 --quant fgq --group 2 --act-bits 4\n";
  const Result list = f.run_program(FGQ_SWEEP_EXE, "--configs " + (f.root / "configs.txt").string() + " --list");
  CHECK(list.code == 0);
  CHECK(list.out == "fp32\nq2\n");

  const Result one = sweep_in(f, "", "runs", "--config-index 1");
  INFO(one.err);
  REQUIRE(one.code == 0);
  CHECK(one.err.find("fgq-sweep: configuration 1 (q2)\n") != std::string::npos);
  CHECK(fs::exists(f.root / "runs/q2.json"));
  CHECK_FALSE(fs::exists(f.root / "runs/fp32.json"));
  CHECK(read(f.root / "runs/q2.json")["options"]["shard"] == "");

  // Out of range, negative, not a number, or past 32 bits: one line naming the option.
  for (const char* bad : {"2", "-1", "x", "4294967296", "1.0"}) {
    const Result r = sweep_in(f, "", "runs", std::string("--config-index=") + bad);
    CHECK(r.code == 2);
    CHECK(r.err == "fgq-sweep: --config-index: '" + std::string(bad) +
                       "' must be auto or a configuration number 0..1 (2 in " + (f.root / "configs.txt").string() +
                       ")\n");
  }
}

TEST_CASE("fgq-sweep: --config-index auto takes the configuration from the array task id") {
  Fixture f;
  std::ofstream(f.root / "configs.txt") << kTwoConfigs;
  const Result k8s = sweep_in(f, "JOB_COMPLETION_INDEX=1", "runs", "--config-index auto");
  INFO(k8s.err);
  REQUIRE(k8s.code == 0);
  CHECK(k8s.err.find("fgq-sweep: configuration 1 (q2); Kubernetes completion index 1\n") != std::string::npos);
  CHECK(fs::exists(f.root / "runs/q2.json"));
  CHECK_FALSE(fs::exists(f.root / "runs/fp32.json"));

  // Task ids are configuration numbers: a Slurm array 1-2 has no configuration 2.
  const Result past = sweep_in(f, "SLURM_ARRAY_JOB_ID=9 SLURM_ARRAY_TASK_ID=2 SLURM_ARRAY_TASK_MIN=1 "
                                  "SLURM_ARRAY_TASK_MAX=2 SLURM_ARRAY_TASK_COUNT=2", "runs", "--config-index auto");
  CHECK(past.code == 2);
  CHECK(past.err == "fgq-sweep: --config-index auto: Slurm array job 9 task 2 of 1-2 is not a configuration: "
                    "the task ids are the configuration numbers 0..1 of " + (f.root / "configs.txt").string() + "\n");
  const Result nowhere = sweep_in(f, "", "runs", "--config-index auto");
  CHECK(nowhere.code == 2);
  CHECK(nowhere.err.find("--config-index auto: not a Slurm job array task") != std::string::npos);
}

TEST_CASE("fgq-sweep: configurations x shards as one array, merged, equal the one-process sweep") {
  Fixture f;
  std::ofstream(f.root / "configs.txt") << kTwoConfigs;
  const Result whole = sweep_in(f, "", "whole", "");
  INFO(whole.err);
  REQUIRE(whole.code == 0);

  // Tasks 0..5 of a Slurm array 0-5: configuration t / 3, shard t % 3 (img_5 is unreadable).
  for (int t = 0; t < 6; ++t) {
    const std::string env = "SLURM_ARRAY_JOB_ID=7 SLURM_ARRAY_TASK_ID=" + std::to_string(t) +
                            " SLURM_ARRAY_TASK_MIN=0 SLURM_ARRAY_TASK_MAX=5 SLURM_ARRAY_TASK_COUNT=6";
    const Result r = sweep_in(f, env, "array", "--config-index auto --shard auto --shard-count 3");
    INFO(r.err);
    REQUIRE(r.code == 0);
    const std::string name = t < 3 ? "fp32" : "q2", shard = std::to_string(t % 3) + "/3";
    CHECK(r.err.find("fgq-sweep: configuration " + std::to_string(t / 3) + " (" + name + "), shard " + shard +
                     "; Slurm array job 7 task " + std::to_string(t) + " of 0-5, --shard-count 3\n") !=
          std::string::npos);
    CHECK(r.out.rfind(name + " [" + shard + "]", 0) == 0);
    const fs::path report = f.root / "array/shards" / name / ("shard-" + std::to_string(t % 3) + "-of-3.json");
    REQUIRE(fs::exists(report));
    CHECK(read(report)["options"]["shard"] == shard);
  }
  CHECK_FALSE(fs::exists(f.root / "array/fp32.json"));
  // A task whose report exists is kept (a resubmitted array only does what is missing).
  const Result again = sweep_in(f, "JOB_COMPLETION_INDEX=4 FGQ_SHARD_COUNT=3", "array", "--config-index auto --shard auto");
  CHECK(again.code == 0);
  CHECK(again.err.find("fgq-sweep: q2 shard 1/3: report exists, kept\n") != std::string::npos);
  // The last task is 5: 2 configurations x 3 shards.
  const Result past = sweep_in(f, "JOB_COMPLETION_INDEX=6 FGQ_SHARD_COUNT=3", "array", "--config-index auto --shard auto");
  CHECK(past.code == 2);
  CHECK(past.err == "fgq-sweep: --config-index auto: Kubernetes completion index 6 is past the last task: 2 "
                    "configurations x 3 shards (FGQ_SHARD_COUNT=3) are tasks 0..5\n");
  const Result no_count = sweep_in(f, "JOB_COMPLETION_INDEX=1", "array", "--config-index auto --shard auto");
  CHECK(no_count.code == 2);
  CHECK(no_count.err.find("give the shards per configuration, --shard-count S") != std::string::npos);

  const Result merged = f.run_program(FGQ_SWEEP_EXE, "--configs " + (f.root / "configs.txt").string() + " --out " +
                                                         (f.root / "array").string() + " --merge");
  INFO(merged.err);
  REQUIRE(merged.code == 0);
  CHECK(merged.out.find("(3 shards merged)") != std::string::npos);
  for (const char* name : {"fp32", "q2"}) {
    INFO(name);
    const nlohmann::json m = read(f.root / "array" / (std::string(name) + ".json"));
    const nlohmann::json w = read(f.root / "whole" / (std::string(name) + ".json"));
    for (const char* key : {"top1", "top5", "counts", "images", "skipped_files", "dataset"}) CHECK(m[key] == w[key]);
    CHECK(m["options"] == w["options"]);
  }
  // Merged once: kept afterwards.
  const Result twice = f.run_program(FGQ_SWEEP_EXE, "--configs " + (f.root / "configs.txt").string() + " --out " +
                                                        (f.root / "array").string() + " --merge");
  CHECK(twice.code == 0);
  CHECK(twice.err.find("fgq-sweep: q2: report exists, kept") != std::string::npos);
}

TEST_CASE("fgq-sweep: --merge names each configuration whose shards are incomplete") {
  Fixture f;
  std::ofstream(f.root / "configs.txt") << kTwoConfigs;
  REQUIRE(sweep_in(f, "", "runs", "--config-index 0 --shard 0/2").code == 0);
  REQUIRE(sweep_in(f, "", "runs", "--config-index 0 --shard 1/2").code == 0);
  REQUIRE(sweep_in(f, "", "runs", "--config-index 1 --shard 1/2").code == 0);
  const Result r = f.run_program(FGQ_SWEEP_EXE, "--configs " + (f.root / "configs.txt").string() + " --out " +
                                                    (f.root / "runs").string() + " --merge");
  CHECK(r.code == 2);
  CHECK(r.err == "fgq-sweep: q2: shard 0/2 is missing\n");
  CHECK(fs::exists(f.root / "runs/fp32.json"));
  CHECK_FALSE(fs::exists(f.root / "runs/q2.json"));

  // Usage: --shard-count without --shard, --merge with --shard, a bad --shard.
  CHECK(sweep_in(f, "", "runs", "--shard-count 2").code == 1);
  CHECK(sweep_in(f, "", "runs", "--merge --shard 0/2").code == 1);
  const Result bad = sweep_in(f, "", "runs", "--shard 0/4294967297");
  CHECK(bad.code == 2);
  CHECK(bad.err == "fgq-sweep: --shard: '0/4294967297' must be i/n with 0 <= i < n (n = 4294967297 is more "
                   "than 1000000 shards)\n");
  CHECK(f.run_program(FGQ_SWEEP_EXE, "--configs x --out y").err == "fgq-sweep: --model is required\n");
}
