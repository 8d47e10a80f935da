// --shard parsing (runtime/dataset.h): "i/n" read as the numbers written (no 32-bit wrap) and
// range-checked, and --shard auto resolved from a Slurm job array's or a Kubernetes Indexed
// Job's environment (set here with setenv/unsetenv, restored after each test).
#include <catch2/catch.hpp>

#include <cstdlib>
#include <map>
#include <string>

#include "graph/error.h"
#include "runtime/dataset.h"

namespace {

const char* const kVars[] = {"SLURM_ARRAY_TASK_ID",  "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_MAX",
                             "SLURM_ARRAY_TASK_STEP", "SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_JOB_ID",
                             "SLURM_JOB_ID",          "JOB_COMPLETION_INDEX", "FGQ_SHARD_COUNT"};

using Vars = std::map<std::string, std::string>;

// Clears every variable resolve_shard reads (this suite may itself run inside a Slurm job),
// sets the given ones, and puts the old values back at the end.
struct Env {
  std::map<std::string, std::string> saved;
  explicit Env(const std::map<std::string, std::string>& set = {}) {
    for (const char* v : kVars) {
      if (const char* old = std::getenv(v)) saved[v] = old;
      unsetenv(v);
    }
    for (const auto& [k, v] : set) setenv(k.c_str(), v.c_str(), 1);
  }
  ~Env() {
    for (const char* v : kVars) unsetenv(v);
    for (const auto& [k, v] : saved) setenv(k.c_str(), v.c_str(), 1);
  }
};

// A Slurm array task as sbatch --array sets it up (checked on Slurm 22.05).
std::map<std::string, std::string> slurm(int id, int min, int max, int step, int count) {
  return {{"SLURM_ARRAY_JOB_ID", "77"},
          {"SLURM_JOB_ID", std::to_string(78 + id)},
          {"SLURM_ARRAY_TASK_ID", std::to_string(id)},
          {"SLURM_ARRAY_TASK_MIN", std::to_string(min)},
          {"SLURM_ARRAY_TASK_MAX", std::to_string(max)},
          {"SLURM_ARRAY_TASK_STEP", std::to_string(step)},
          {"SLURM_ARRAY_TASK_COUNT", std::to_string(count)}};
}

std::string shard(const std::string& text, const std::string& count = "", std::string* how = nullptr) {
  return fgq::shard_text(fgq::resolve_shard(text, count, "--shard", how));
}

std::string error_of(const std::string& text, const std::string& count = "") {
  try {
    shard(text, count);
  } catch (const fgq::Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("shard: i/n is read as written and range-checked") {
  CHECK(fgq::shard_text(fgq::parse_shard("0/1", "--shard")) == "0/1");
  CHECK(fgq::shard_text(fgq::parse_shard("15/16", "--shard")) == "15/16");
  CHECK(fgq::shard_text(fgq::parse_shard(" 1 / 4 ", "--shard")) == "1/4");
  CHECK(fgq::shard_text(fgq::parse_shard("007/010", "--shard")) == "7/10");
  CHECK(fgq::shard_text(fgq::parse_shard("999999/1000000", "--shard")) == "999999/1000000");

  const std::string base = " must be i/n with 0 <= i < n";
  auto err = [](const std::string& text) {
    try {
      fgq::parse_shard(text, "--shard");
    } catch (const fgq::Error& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  CHECK(err("4/4") == "--shard: '4/4'" + base);
  CHECK(err("-1/4") == "--shard: '-1/4'" + base + " (i is negative)");
  CHECK(err("1/-4") == "--shard: '1/-4'" + base + " (n is the number of shards: at least 1)");
  CHECK(err("0/0") == "--shard: '0/0'" + base + " (n is the number of shards: at least 1)");
  CHECK(err("0/1000001") == "--shard: '0/1000001'" + base + " (n = 1000001 is more than 1000000 shards)");
  // What sscanf("%d") would wrap to 1/2 and 0/1: taken as the numbers they are.
  CHECK(err("4294967297/4294967298") ==
        "--shard: '4294967297/4294967298'" + base + " (n = 4294967298 is more than 1000000 shards)");
  CHECK(err("0/4294967297") == "--shard: '0/4294967297'" + base + " (n = 4294967297 is more than 1000000 shards)");
  CHECK(err("4294967296/4") == "--shard: '4294967296/4'" + base);
  CHECK(err("99999999999999999999999999/4") == "--shard: '99999999999999999999999999/4'" + base);
  for (const char* bad : {"", "auto", "1", "1/", "/4", "a/4", "1/b", "1.5/4", "+1/4", "1/2/3", "1 2/4", "0x1/4"})
    CHECK(err(bad) == "--shard: '" + std::string(bad) + "'" + base + " (two whole numbers, e.g. 3/16)");
  // One line each, naming where the text came from.
  CHECK_THROWS_WITH(fgq::parse_shard("9/3", "s.json: options.shard"), "s.json: options.shard: '9/3'" + base);
}

TEST_CASE("shard: more shards than images give empty shards") {
  CHECK(fgq::shard_size(5, fgq::parse_shard("4/8", "x")) == 1);
  CHECK(fgq::shard_size(5, fgq::parse_shard("5/8", "x")) == 0);
  CHECK(fgq::shard_size(0, fgq::parse_shard("0/1", "x")) == 0);
}

TEST_CASE("shard auto: outside a job array is an error that says what to do") {
  Env env;
  CHECK(shard("2/3") == "2/3");
  CHECK(error_of("auto") == "--shard auto: not a Slurm job array task (SLURM_ARRAY_TASK_ID) or a Kubernetes "
                            "Indexed Job (JOB_COMPLETION_INDEX): give --shard i/n");
  setenv("SLURM_JOB_ID", "12", 1);
  CHECK(error_of("auto") == "--shard auto: this Slurm job is not a job array (no SLURM_ARRAY_TASK_ID): "
                            "submit it with sbatch --array=0-N, or give --shard i/n");
  // --shard-count belongs to auto; i/n gives its own.
  CHECK(error_of("1/4", "4") == "--shard-count: goes with --shard auto (--shard i/n gives its own count)");
}

TEST_CASE("shard auto: a Slurm array numbers the shards (id - min) / step of its task count") {
  std::string how;
  {
    Env env(slurm(2, 0, 3, 1, 4));  // --array=0-3
    CHECK(shard("auto", "", &how) == "2/4");
    CHECK(how == "Slurm array job 77 task 2 of 0-3");
  }
  {
    Env env(slurm(5, 2, 17, 1, 16));  // --array=2-17
    CHECK(shard("auto") == "3/16");
  }
  {
    Env env(slurm(6, 0, 14, 2, 8));  // --array=0-15:2 (Slurm sets MAX to the last id, 14)
    CHECK(shard("auto", "", &how) == "3/8");
    CHECK(how == "Slurm array job 77 task 6 of 0-14:2");
  }
  {
    Env env(slurm(7, 7, 7, 1, 1));  // --array=7: one task, the whole set
    CHECK(shard("auto") == "0/1");
  }
  {
    Env env(slurm(1, 0, 3, 1, 4));  // older Slurm without _COUNT: MAX - MIN + 1
    unsetenv("SLURM_ARRAY_TASK_COUNT");
    unsetenv("SLURM_ARRAY_TASK_STEP");
    CHECK(shard("auto") == "1/4");
  }
}

TEST_CASE("shard auto: a Slurm array that is not evenly spaced needs --shard-count") {
  const std::string hint = ": the array's ids do not number its tasks 0..n-1 as (id - min) / step (not "
                           "evenly spaced, like 1,3,7): submit --array=0-N, or give --shard-count N so "
                           "that the task ids are the shard numbers";
  {
    Env env(slurm(3, 1, 7, 1, 3));  // --array=1,3,7 (Slurm reports step 1)
    CHECK(error_of("auto") == "--shard auto: Slurm array job 77 task 3 of 1-7 (3 tasks)" + hint);
    // With the count the ids are the shard numbers: a rerun of shards 1, 3 and 7 of 8.
    std::string how;
    CHECK(shard("auto", "8", &how) == "3/8");
    CHECK(how == "Slurm array job 77 task 3 of 1-7 (3 tasks), --shard-count 8");
    setenv("FGQ_SHARD_COUNT", "8", 1);
    CHECK(shard("auto", "", &how) == "3/8");
    CHECK(how == "Slurm array job 77 task 3 of 1-7 (3 tasks), FGQ_SHARD_COUNT=8");
    CHECK(error_of("auto", "3") == "--shard auto: Slurm array job 77 task 3 of 1-7 (3 tasks) is not a shard "
                                   "of 3 (with --shard-count 3 the task ids are the shard numbers 0..2)");
  }
  {
    Env env(slurm(8, 0, 11, 1, 8));  // --array=0-3,8-11
    CHECK(error_of("auto") == "--shard auto: Slurm array job 77 task 8 of 0-11 (8 tasks)" + hint);
    CHECK(shard("auto", "12") == "8/12");
  }
  {
    Env env(slurm(1, 0, 14, 2, 8));  // an id that is not on the step: not from this array
    CHECK(error_of("auto").find(hint) != std::string::npos);
  }
}

TEST_CASE("shard auto: numbers from the environment are checked, not wrapped") {
  {
    Env env(slurm(0, 0, 3, 1, 4));
    setenv("SLURM_ARRAY_TASK_ID", "x1", 1);
    CHECK(error_of("auto") == "--shard auto: SLURM_ARRAY_TASK_ID='x1' is not a whole number");
    setenv("SLURM_ARRAY_TASK_ID", "-1", 1);
    CHECK(error_of("auto") == "--shard auto: SLURM_ARRAY_TASK_ID='-1' is not a whole number");
    setenv("SLURM_ARRAY_TASK_ID", "4294967299", 1);  // 3 after a 32-bit wrap
    CHECK(error_of("auto", "16").find("task 4294967299 of 0-3 (4 tasks) is not a shard of 16") !=
          std::string::npos);
  }
  {
    Env env(slurm(0, 0, 1999999, 1, 2000000));
    CHECK(error_of("auto") == "--shard auto: Slurm array job 77 task 0 of 0-1999999: 2000000 tasks are "
                              "more than 1000000 shards");
  }
  Env env(Vars{{"JOB_COMPLETION_INDEX", "1"}});
  for (const char* bad : {"0", "-2", "abc", "2.5", "1000001", "4294967297"})
    CHECK(error_of("auto", bad) == "--shard-count: '" + std::string(bad) +
                                       "' must be a whole number of shards, 1..1000000");
  setenv("FGQ_SHARD_COUNT", "4294967298", 1);
  CHECK(error_of("auto") == "FGQ_SHARD_COUNT: '4294967298' must be a whole number of shards, 1..1000000");
}

TEST_CASE("shard auto: a Kubernetes Indexed Job takes the count from --shard-count or FGQ_SHARD_COUNT") {
  Env env(Vars{{"JOB_COMPLETION_INDEX", "3"}});
  CHECK(error_of("auto") == "--shard auto: Kubernetes completion index 3: the number of shards is not in "
                            "the environment: give --shard-count N or FGQ_SHARD_COUNT=N (the Job's "
                            "spec.completions)");
  std::string how;
  CHECK(shard("auto", "8", &how) == "3/8");
  CHECK(how == "Kubernetes completion index 3, --shard-count 8");
  setenv("FGQ_SHARD_COUNT", "16", 1);
  CHECK(shard("auto", "", &how) == "3/16");
  CHECK(how == "Kubernetes completion index 3, FGQ_SHARD_COUNT=16");
  CHECK(shard("auto", "4") == "3/4");  // the option wins over the environment
  CHECK(error_of("auto", "3") == "--shard auto: Kubernetes completion index 3 is not a shard of 3 (with "
                                 "--shard-count 3 the task ids are the shard numbers 0..2)");
  // Both schedulers at once: which one is meant is not guessed.
  setenv("SLURM_ARRAY_TASK_ID", "1", 1);
  CHECK(error_of("auto") == "--shard auto: both SLURM_ARRAY_TASK_ID and JOB_COMPLETION_INDEX are set: "
                            "give --shard i/n");
}

TEST_CASE("shard auto: array_task reports the raw id and the array's own numbering") {
  {
    Env env(slurm(5, 2, 17, 1, 16));
    const fgq::ArrayTask t = fgq::array_task("x");
    CHECK(t.scheduler == "Slurm");
    CHECK(t.id == 5);
    CHECK(t.index == 3);
    CHECK(t.count == 16);
  }
  {
    Env env(slurm(3, 1, 7, 1, 3));
    const fgq::ArrayTask t = fgq::array_task("x");
    CHECK(t.index == -1);
    CHECK(t.count == 3);
  }
  Env env(Vars{{"JOB_COMPLETION_INDEX", "0"}});
  const fgq::ArrayTask t = fgq::array_task("x");
  CHECK(t.scheduler == "Kubernetes");
  CHECK(t.id == 0);
  CHECK(t.count == 0);
}
