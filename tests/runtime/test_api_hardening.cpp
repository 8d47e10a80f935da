// The public API (include/fgq/fgq.h) against misuse: sizes, null pointers, moved-from objects,
// k outside 1..classes, non-finite inputs, out-of-range options. Each is an fgq::Error with one
// line naming the problem, never undefined behaviour.
#include <catch2/catch.hpp>

#include <climits>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <functional>
#include <cmath>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "fgq/fgq.h"
#include "runtime/report.h"
#include "support/onnx_builder.h"
#include "support/sample_models.h"
#include "support/test_util.h"

using namespace fgq;

namespace {

// x [-1, 3, 4, 4] -> GlobalAveragePool -> Flatten -> Gemm: 6 classes, class c scores the mean of
// channel c % 3 times (c + 1).
std::string tiny_model_bytes() {
  std::vector<float> w(6 * 3, 0.f);
  for (int c = 0; c < 6; ++c) w[c * 3 + c % 3] = float(c + 1);
  test::OnnxBuilder b;
  b.input("x", {-1, 3, 4, 4})
      .init_f32("w", {6, 3}, w)
      .init_f32("b", {6}, std::vector<float>(6, 0.f))
      .metadata("fgq.channel_order", "RGB")
      .metadata("fgq.pixel_scale", "1")
      .metadata("fgq.mean", "0,0,0")
      .metadata("fgq.std", "1,1,1")
      .metadata("fgq.input_size", "4");
  b.node("GlobalAveragePool", {"x"}, {"p"});
  b.node("Flatten", {"p"}, {"f"}).i("axis", 1);
  b.node("Gemm", {"f", "w", "b"}, {"y"}).i("transB", 1);
  b.output("y");
  return b.bytes();
}

Model tiny_model() {
  const std::string bytes = tiny_model_bytes();
  return Model::load_from_memory(bytes.data(), bytes.size(), "tiny");
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("api: Session::run checks the input's size and pointer") {
  Model m = tiny_model();
  Session s(m, 2);
  REQUIRE(s.input_floats() == 48);
  const std::vector<float> x(96, 0.5f);
  CHECK(s.run(x.data(), 96, 2).size() == 12);
  CHECK(s.run(x, 2).size() == 12);
  CHECK(s.run(x.data(), 48, 1).size() == 6);
  CHECK(error_of([&] { s.run(x.data(), 95, 2); }) ==
        "tiny: input has 95 floats, batch 2 needs 2 x 3 x 4 x 4 = 96");
  CHECK(error_of([&] { s.run(x.data(), 96, 1); }) ==
        "tiny: input has 96 floats, batch 1 needs 1 x 3 x 4 x 4 = 48");
  CHECK(error_of([&] { s.run(std::vector<float>(47), 1); }) ==
        "tiny: input has 47 floats, batch 1 needs 1 x 3 x 4 x 4 = 48");
  CHECK(error_of([&] { s.run(nullptr, 48, 1); }) == "tiny: null input");
  CHECK(error_of([&] { s.run(x.data(), 144, 3); }) == "tiny: batch 3 outside 1..2");
  CHECK(error_of([&] { s.run(x.data(), 0, 0); }) == "tiny: batch 0 outside 1..2");
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  // The old overload still builds and runs (it cannot check the size).
  CHECK(s.run(x.data(), 2) == s.run(x, 2));
  CHECK(error_of([&] { s.run(static_cast<const float*>(nullptr), 1); }) == "tiny: null input");
  CHECK(error_of([&] { s.run(x.data(), INT_MAX); }) == "tiny: batch 2147483647 outside 1..2");
#pragma GCC diagnostic pop
}

TEST_CASE("api: non-finite inputs are an error naming the first bad value") {
  Model m = tiny_model();
  Session s(m, 2);
  std::vector<float> x(96, 0.25f);
  x[48 + 16 * 2 + 4 * 3 + 1] = std::nanf("");  // image 1, channel 2, row 3, column 1
  x[95] = std::numeric_limits<float>::infinity();
  CHECK(error_of([&] { s.run(x, 2); }) == "tiny: input[93] (image 1, channel 2, row 3, column 1) is nan");
  x[93] = 0;
  CHECK(error_of([&] { s.run(x, 2); }) == "tiny: input[95] (image 1, channel 2, row 3, column 3) is infinite");
  x[95] = -std::numeric_limits<float>::infinity();
  CHECK_THROWS_AS(s.run(x, 2), Error);
  x[95] = std::numeric_limits<float>::max();  // finite: runs
  CHECK(s.run(x, 2).size() == 12);
}

TEST_CASE("api: moved-from models and sessions are an fgq::Error, not a crash") {
  Model m = tiny_model();
  Model m2 = std::move(m);
  CHECK(m2.input_size() == 4);
  const std::string moved = "fgq::Model: used after it was moved from";
  CHECK(error_of([&] { (void)m.input_size(); }) == moved);
  CHECK(error_of([&] { (void)m.metadata(); }) == moved);
  CHECK(error_of([&] { (void)m.quantized(); }) == moved);
  CHECK(error_of([&] { (void)m.integer(); }) == moved);
  CHECK(error_of([&] { (void)m.weight_bytes(); }) == moved);
  CHECK(error_of([&] { m.save(test::temp_path(".onnx")); }) == moved);
  CHECK(error_of([&] { m.quantize(QuantOptions{}, nullptr, 0); }) == moved);
  CHECK(error_of([&] { m.quantize(QuantOptions{}, std::vector<std::string>{}); }) == moved);
  CHECK(error_of([&] { Session s(m); }) == moved);
  m = std::move(m2);  // assignment brings it back
  CHECK(m.input_size() == 4);

  Session s(m, 1);
  Session s2 = std::move(s);
  const std::vector<float> x(48, 0.f);
  CHECK(s2.run(x, 1).size() == 6);
  const std::string gone = "fgq::Session: used after it was moved from";
  CHECK(error_of([&] { s.run(x, 1); }) == gone);
  CHECK(error_of([&] { s.classify({"a.png"}); }) == gone);
  CHECK(error_of([&] { (void)s.preprocess("a.png"); }) == gone);
  CHECK(error_of([&] { (void)s.num_classes(); }) == gone);
  CHECK(error_of([&] { (void)s.max_batch(); }) == gone);
  CHECK(error_of([&] { (void)s.activation_bytes(); }) == gone);
  CHECK(error_of([&] { (void)s.input_floats(); }) == gone);
}

TEST_CASE("api: null data, negative counts and out-of-range sizes are refused") {
  CHECK(error_of([] { Model::load_from_memory(nullptr, 10, "mem"); }) == "mem: null data pointer with size 10");
  CHECK_THROWS_AS(Model::load_from_memory(nullptr, 0, "mem"), Error);  // no model in 0 bytes
  Model m = tiny_model();
  CHECK(error_of([&] { m.quantize(QuantOptions{}, nullptr, 3); }) == "tiny: null calibration data for 3 images");
  const std::vector<float> calib(48, 0.f);
  CHECK(error_of([&] { m.quantize(QuantOptions{}, calib.data(), -1); }) ==
        "tiny: calibration image count -1 is negative");
  CHECK(error_of([&] { Session s(m, 0); }) == "tiny: max_batch 0 is outside 1..65536");
  CHECK(error_of([&] { Session s(m, 1 << 20); }) == "tiny: max_batch 1048576 is outside 1..65536");
  CHECK_FALSE(m.quantized());  // nothing happened to the model
}

TEST_CASE("api: classify wants k in 1..classes and ranks like the reports") {
  Model m = tiny_model();
  Session s(m, 4);
  // A 4x4 image, channels R = 10, G = 20, B = 30 (BMP written by hand: no OpenCV here).
  const std::string path = test::temp_path(".bmp");
  {
    std::vector<uint8_t> f(54 + 4 * 4 * 3, 0);
    auto u32 = [&](size_t at, uint32_t v) {
      for (int i = 0; i < 4; ++i) f[at + i] = uint8_t(v >> (8 * i));
    };
    f[0] = 'B', f[1] = 'M';
    u32(2, uint32_t(f.size())), u32(10, 54), u32(14, 40), u32(18, 4), u32(22, 4);
    f[26] = 1, f[28] = 24;
    for (size_t p = 54; p < f.size(); p += 3) f[p] = 30, f[p + 1] = 20, f[p + 2] = 10;  // B, G, R
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(f.data()), f.size());
  }
  CHECK(error_of([&] { s.classify({path}, 0); }) == "tiny: k 0 is outside 1..6 (the model's classes)");
  CHECK(error_of([&] { s.classify({path}, 7); }) == "tiny: k 7 is outside 1..6 (the model's classes)");
  CHECK(error_of([&] { s.classify({path}, -5); }) == "tiny: k -5 is outside 1..6 (the model's classes)");
  CHECK(s.classify({}, 3).empty());
  const auto all = s.classify({path, path, path, path, path}, 6);  // more images than max_batch
  REQUIRE(all.size() == 5);
  // Logits: class c = (c + 1) * channel mean: 10, 40, 90, 40, 100, 180.
  const std::vector<float> logits = {10, 40, 90, 40, 100, 180};
  const TopK want = rank_row(logits.data(), 6, 6, false);
  REQUIRE(all[0].size() == 6);
  for (size_t j = 0; j < 6; ++j) {
    CHECK(all[0][j].class_index == want.classes[j]);
    CHECK(all[0][j].score == want.scores[j]);
  }
  CHECK(all[0][0].class_index == 5);
  CHECK(all[0][3].class_index == 1);  // 40 twice: the lower class first
  CHECK(all[0][4].class_index == 3);
  std::remove(path.c_str());
}

TEST_CASE("api: QuantOptions::group is range-checked; a group wider than a layer spans it") {
  const std::string bytes = test::mini_resnet_model().bytes();
  const auto calib = test::random_floats(size_t(4) * 3 * 13 * 13, 3, -2.f, 2.f);
  QuantOptions opt;
  opt.gptq = false;
  for (int bad : {0, -4, 65537, INT_MAX}) {
    Model m = Model::load_from_memory(bytes.data(), bytes.size(), "mini");
    opt.group = bad;
    CHECK(error_of([&] { m.quantize(opt, calib.data(), 4); }) ==
          "quantize: group size must be from 1 to 65536, got " + std::to_string(bad));
    CHECK_FALSE(m.quantized());
  }
  // 65536 >> every layer's 3..17 input channels: one group per kernel position, quickly (it used
  // to allocate group floats per output channel: 15 GB for INT_MAX).
  Model m = Model::load_from_memory(bytes.data(), bytes.size(), "mini");
  opt.group = 65536;
  const QuantSummary wide = m.quantize(opt, calib.data(), 4);
  Model m17 = Model::load_from_memory(bytes.data(), bytes.size(), "mini");
  opt.group = 17;
  m17.quantize(opt, calib.data(), 4);
  CHECK(wide.ternary_layers > 0);
  const std::vector<float> x = test::random_floats(size_t(3) * 13 * 13, 9, -2.f, 2.f);
  CHECK(Session(m).run(x, 1) == Session(m17).run(x, 1));  // 17 >= every layer's channels
}
