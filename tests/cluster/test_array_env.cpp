// fgq-run --shard auto in a simulated job-array task (the scheduler's variables set on the
// command line): the shard it resolves to is printed and recorded as "i/n" in the report, so
// fgq-merge checks the set; bad shards and counts are one line naming the option. Runs
// everywhere (no scheduler needed); slurm_array_test.sh does the same under a real Slurm.
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

// fgq-run in a clean environment plus `set` ("NAME=value ..."), on the fixture's 5 images.
Result run_in(const Fixture& f, const std::string& set, const std::string& args) {
  const std::string env =
      "env -u SLURM_ARRAY_TASK_ID -u SLURM_ARRAY_TASK_MIN -u SLURM_ARRAY_TASK_MAX -u SLURM_ARRAY_TASK_STEP "
      "-u SLURM_ARRAY_TASK_COUNT -u SLURM_ARRAY_JOB_ID -u SLURM_JOB_ID -u JOB_COMPLETION_INDEX "
      "-u FGQ_SHARD_COUNT " + set + " " + FGQ_RUN_EXE;
  return f.run_program(env, "--model " + f.model() + " --imagenet " + f.val.string() + " " + args);
}

std::string slurm_task(int id, int min, int max) {
  return "SLURM_ARRAY_JOB_ID=41 SLURM_JOB_ID=" + std::to_string(50 + id) + " SLURM_ARRAY_TASK_ID=" +
         std::to_string(id) + " SLURM_ARRAY_TASK_MIN=" + std::to_string(min) + " SLURM_ARRAY_TASK_MAX=" +
         std::to_string(max) + " SLURM_ARRAY_TASK_STEP=1 SLURM_ARRAY_TASK_COUNT=" + std::to_string(max - min + 1);
}

nlohmann::json read(const fs::path& p) { return nlohmann::json::parse(slurp(p)); }

// The merge of `files` (fgq-merge) against the unsharded report: the same numbers and records.
void check_merge_equals_whole(const Fixture& f, const std::string& files) {
  const fs::path whole = f.root / "whole.json", merged = f.root / "merged.json";
  REQUIRE(run_in(f, "", "--quiet --json " + whole.string()).code == 0);
  const Result m = f.run_program(FGQ_MERGE_EXE, files + " --json " + merged.string());
  INFO(m.err);
  REQUIRE(m.code == 0);
  const nlohmann::json a = read(merged), b = read(whole);
  for (const char* key : {"top1", "top5", "counts", "images", "skipped_files", "dataset", "options"})
    CHECK(a[key] == b[key]);
}

}  // namespace

TEST_CASE("fgq-run --shard auto: a Slurm array 4-6 runs shards 0/3..2/3, recorded for fgq-merge") {
  Fixture f;
  std::string files;
  for (int id = 4; id <= 6; ++id) {
    const fs::path json = f.root / ("task-" + std::to_string(id) + ".json");
    const Result r = run_in(f, slurm_task(id, 4, 6), "--shard auto --json " + json.string());
    INFO(r.err);
    REQUIRE(r.code == 0);
    const std::string shard = std::to_string(id - 4) + "/3";
    CHECK(r.err.find("fgq-run: --shard auto: " + shard + " (Slurm array job 41 task " + std::to_string(id) +
                     " of 4-6)\n") != std::string::npos);
    CHECK(read(json)["options"]["shard"] == shard);
    files += " " + json.string();
  }
  check_merge_equals_whole(f, files);

  // --quiet: no info line (task 4 = shard 0/3 has no unreadable image to warn about either).
  const Result quiet = run_in(f, slurm_task(4, 4, 6), "--shard auto --quiet");
  CHECK(quiet.code == 0);
  CHECK(quiet.err.empty());
}

TEST_CASE("fgq-run --shard auto: Kubernetes with --shard-count or FGQ_SHARD_COUNT") {
  Fixture f;
  const Result flag = run_in(f, "JOB_COMPLETION_INDEX=1", "--shard auto --shard-count 2 --json " +
                                                                (f.root / "k1.json").string());
  INFO(flag.err);
  REQUIRE(flag.code == 0);
  CHECK(flag.err.find("fgq-run: --shard auto: 1/2 (Kubernetes completion index 1, --shard-count 2)\n") !=
        std::string::npos);
  const Result env = run_in(f, "JOB_COMPLETION_INDEX=0 FGQ_SHARD_COUNT=2", "--shard auto --json " +
                                                                             (f.root / "k0.json").string());
  REQUIRE(env.code == 0);
  CHECK(env.err.find("(Kubernetes completion index 0, FGQ_SHARD_COUNT=2)") != std::string::npos);
  check_merge_equals_whole(f, (f.root / "k0.json").string() + " " + (f.root / "k1.json").string());

  const Result no_count = run_in(f, "JOB_COMPLETION_INDEX=1", "--shard auto");
  CHECK(no_count.code == 2);
  CHECK(no_count.err == "fgq-run: --shard auto: Kubernetes completion index 1: the number of shards is not in "
                        "the environment: give --shard-count N or FGQ_SHARD_COUNT=N (the Job's spec.completions)\n");
}

TEST_CASE("fgq-run --shard: bad values are one line naming the option") {
  Fixture f;
  auto err = [&](const std::string& set, const std::string& args) {
    const Result r = run_in(f, set, args);
    CHECK(r.code == 2);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    return r.err;
  };
  CHECK(err("", "--shard 4294967297/4294967298") ==
        "fgq-run: --shard: '4294967297/4294967298' must be i/n with 0 <= i < n (n = 4294967298 is more than "
        "1000000 shards)\n");
  CHECK(err("", "--shard=-1/4") == "fgq-run: --shard: '-1/4' must be i/n with 0 <= i < n (i is negative)\n");
  CHECK(err("", "--shard 0/0") ==
        "fgq-run: --shard: '0/0' must be i/n with 0 <= i < n (n is the number of shards: at least 1)\n");
  CHECK(err("", "--shard x/4") == "fgq-run: --shard: 'x/4' must be i/n with 0 <= i < n (two whole numbers, e.g. 3/16)\n");
  CHECK(err("", "--shard auto") == "fgq-run: --shard auto: not a Slurm job array task (SLURM_ARRAY_TASK_ID) or a "
                                   "Kubernetes Indexed Job (JOB_COMPLETION_INDEX): give --shard i/n\n");
  CHECK(err("SLURM_JOB_ID=3", "--shard auto").find("this Slurm job is not a job array") != std::string::npos);
  CHECK(err("", "--shard 1/4 --shard-count 4") ==
        "fgq-run: --shard-count: goes with --shard auto (--shard i/n gives its own count)\n");
  CHECK(err("JOB_COMPLETION_INDEX=0", "--shard auto --shard-count 4294967297") ==
        "fgq-run: --shard-count: '4294967297' must be a whole number of shards, 1..1000000\n");
  CHECK(err("JOB_COMPLETION_INDEX=4", "--shard auto --shard-count 4") ==
        "fgq-run: --shard auto: Kubernetes completion index 4 is not a shard of 4 (with --shard-count 4 the task "
        "ids are the shard numbers 0..3)\n");
  // A usage error of CLI11's own: --shard-count means nothing without --shard.
  CHECK(run_in(f, "", "--shard-count 4").code == 1);
}

TEST_CASE("fgq-run --shard: more shards than images give empty shards that still merge") {
  Fixture f;  // 5 images
  std::string files;
  for (int i = 0; i < 8; ++i) {
    const fs::path json = f.root / ("s" + std::to_string(i) + ".json");
    const Result r = run_in(f, "", "--shard " + std::to_string(i) + "/8 --quiet --json " + json.string());
    INFO(r.err);
    REQUIRE(r.code == 0);
    if (i >= 5) {
      CHECK(r.err == "fgq-run: warning: shard " + std::to_string(i) + "/8 has no images (5 images in 8 shards)\n");
      CHECK(read(json)["counts"]["selected"] == 0);
    }
    files += " " + json.string();
  }
  check_merge_equals_whole(f, files);

  // A report that says "auto" (not from fgq-run) is refused with the reason.
  nlohmann::json j = read(f.root / "s0.json");
  j["options"]["shard"] = "auto";
  std::ofstream(f.root / "auto.json") << j.dump();
  const Result m = f.run_program(FGQ_MERGE_EXE, (f.root / "auto.json").string());
  CHECK(m.code == 2);
  CHECK(m.err == "fgq-merge: " + (f.root / "auto.json").string() +
                     ": options.shard is 'auto', not the shard it resolved to: run that shard again\n");
}
