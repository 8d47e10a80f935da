// The real network end to end, as CI runs it once the models are fetched (.ci/run): ResNet-50
// (pretrained) FP32 and FGQ on the integer pipeline over the first 200 shared validation images,
// Top-1/Top-5 compared with the recorded counts exactly. Skips (printing why) without the model
// or the data, or with FGQ_REAL_MODEL_TESTS=0 (the sanitizer pass: minutes of work at -O1).
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <string>

#include "app_fixture.h"
#include "ops/conv2d_paths.h"

namespace {

using fgq::test::Fixture;

struct Counts {
  int top1, top5;
};

// Correct images out of the first 200 of ../shared/data/imagenet/val (sorted), --plain-resize,
// measured 2026-12-01 with the AVX-512 FP32 convolution path; FGQ: the defaults (N=4, 8-bit,
// GPTQ, 200 calibration images from calib/) on the integer pipeline.
constexpr Counts kFp32{155, 185};
constexpr Counts kFgq{158, 185};

bool enabled() {
  const char* e = std::getenv("FGQ_REAL_MODEL_TESTS");
  if (e && std::string(e) == "0") {
    std::printf("SKIPPED: FGQ_REAL_MODEL_TESTS=0\n");
    return false;
  }
  return true;
}

Counts run_counts(const Fixture& f, const std::string& args) {
  const std::string json = (f.root / "report.json").string();
  const fgq::test::Result r = f.run(args + " --quiet --json " + json);
  INFO(r.err);
  REQUIRE(r.code == 0);
  const nlohmann::json j = nlohmann::json::parse(fgq::test::slurp(json));
  REQUIRE(j["counts"]["scored"] == 200);
  int top1 = 0, top5 = 0;
  for (const auto& img : j["images"]) top1 += img["correct1"].get<bool>(), top5 += img["correct5"].get<bool>();
  return {top1, top5};
}

// Exact wherever the AVX-512 FP32 convolutions run (Eigen's blocking is fixed, see
// use_fixed_eigen_blocking: before it, Zen 4 gave FGQ 159/187 against these Zen 5 counts); one
// image either way elsewhere: without that path the FP32 convolutions (and the calibration
// statistics the integer model comes from) round differently, and an image near a tie may change
// its class.
void check(const Counts& got, const Counts& want) {
  const int slack = fgq::ops::detail::conv2d_avx512_available() ? 0 : 1;
  INFO("top-1 " << got.top1 << "/200 (recorded " << want.top1 << "), top-5 " << got.top5 << "/200 (recorded "
                << want.top5 << "), allowed difference " << slack);
  CHECK(std::abs(got.top1 - want.top1) <= slack);
  CHECK(std::abs(got.top5 - want.top5) <= slack);
}

}  // namespace

TEST_CASE("real model: ResNet-50 FP32 and FGQ integer Top-1/Top-5 on 200 validation images") {
  const auto model = fgq::test::model_file("resnet50");
  const auto val = fgq::test::shared_data("data/imagenet/val");
  const auto calib = fgq::test::shared_data("data/imagenet/calib");
  if (!model || !val || !calib || !enabled()) return;
  Fixture f;
  const std::string base = "--model " + *model + " --imagenet " + *val + " --plain-resize --limit 200";
  check(run_counts(f, base), kFp32);
  check(run_counts(f, base + " --quant fgq --calib " + *calib), kFgq);
}
