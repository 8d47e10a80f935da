// ResNet-50 (real weights) quantized and run on real ImageNet images through every integer
// kernel path this CPU has: the logits must be bit-identical to the scalar reference path and to
// the integer-exact simulation on FP32 kernels. Skips (printing why) without the model or data.
#include <catch2/catch.hpp>

#include <filesystem>

#include "fgq/fgq.h"
#include "ops/cpu_features.h"
#include "runtime/dataset.h"
#include "support/test_util.h"

using namespace fgq;

TEST_CASE("integer pipeline on ResNet-50: every kernel path gives the same logits on 16 real images",
          "[model]") {
  const auto model = test::model_file("resnet50");
  const auto val = test::shared_data("data/imagenet/val");
  const auto calib_dir = test::shared_data("data/imagenet/calib");
  if (!model || !val || !calib_dir) return;

  std::vector<std::string> calib = list_image_files(*calib_dir);
  std::vector<std::string> spread;  // 16 classes spread over the sorted folder
  for (size_t i = 0; i < 16; ++i) spread.push_back(calib[i * calib.size() / 16]);
  std::vector<std::string> images = list_image_files(*val);
  images.resize(16);

  Model m = Model::load(*model);
  QuantOptions opt;  // N=4, 8-bit, as fgq-run; a short GPTQ keeps the test quick
  opt.gptq_samples = 1024;
  m.quantize(opt, spread);
  REQUIRE(m.integer());

  Session pre(m, 1);
  std::vector<float> x;
  for (const std::string& f : images) {
    const std::vector<float> one = pre.preprocess(f);
    x.insert(x.end(), one.begin(), one.end());
  }
  std::vector<float> reference;
  for (ops::Isa isa : ops::supported_isas()) {
    ops::set_forced_isa(ops::isa_name(isa));
    Session s(m, 16);
    const std::vector<float> logits = s.run(x, 16);
    if (reference.empty()) reference = logits;  // scalar first
    INFO("kernel path " << ops::isa_name(isa));
    CHECK(logits == reference);
  }
  ops::set_forced_isa("");
  for (ops::Isa isa : {ops::Isa::Avx2, ops::Isa::Avx512Vnni})
    if (!ops::cpu_supports(isa)) WARN("kernel path " << ops::isa_name(isa) << " skipped: this CPU lacks it");

  // The integer-exact simulation (convolutions on the FP32 kernels) computes the same bits.
  Model sim = Model::load(*model);
  opt.simulate = true;
  sim.quantize(opt, spread);
  CHECK(Session(sim, 16).run(x, 16) == reference);
}
