// Runs the fgq-bench binary (path compiled in as FGQ_BENCH_EXE) on a tiny generated conv net:
// the table rows, the JSON report (Google Benchmark layout), the FGQ mode and usage errors.
#include <algorithm>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "app_fixture.h"
#include "graph/onnx_proto.h"

namespace {

using fgq::test::Fixture;
using fgq::test::OnnxBuilder;
using fgq::test::random_floats;
using nlohmann::json;

// Conv 3x3 + Relu -> Conv 1x1 + residual Add + Relu -> GlobalAveragePool -> Flatten -> Gemm,
// 16x16 RGB input, 10 classes; the output carries a shape, as OpenCV's importer wants.
void write_conv_model(const std::string& path) {
  const int K = 8, classes = 10;
  OnnxBuilder b;
  b.input("input", {-1, 3, 16, 16})
      .init_f32("w1", {K, 3, 3, 3}, random_floats(K * 27, 1))
      .init_f32("b1", {K}, random_floats(K, 2))
      .init_f32("w2", {K, K, 1, 1}, random_floats(K * K, 3))
      .init_f32("fc_w", {classes, K}, random_floats(classes * K, 4))
      .init_f32("fc_b", {classes}, random_floats(classes, 5))
      .metadata("fgq.channel_order", "RGB")
      .metadata("fgq.pixel_scale", "0.00392156862745098")
      .metadata("fgq.mean", "0.5,0.5,0.5")
      .metadata("fgq.std", "0.25,0.25,0.25")
      .metadata("fgq.input_size", "16");
  b.node("Conv", {"input", "w1", "b1"}, {"c1"}, "conv1")
      .ints("kernel_shape", {3, 3})
      .ints("pads", {1, 1, 1, 1});
  b.node("Relu", {"c1"}, {"r1"}, "relu1");
  b.node("Conv", {"r1", "w2"}, {"c2"}, "conv2").ints("kernel_shape", {1, 1});
  b.node("Add", {"c2", "r1"}, {"a2"}, "add2");
  b.node("Relu", {"a2"}, {"r2"}, "relu2");
  b.node("GlobalAveragePool", {"r2"}, {"g"}, "gap");
  b.node("Flatten", {"g"}, {"f"}, "flatten").i("axis", 1);
  b.node("Gemm", {"f", "fc_w", "fc_b"}, {"logits"}, "fc").i("transB", 1);
  b.output("logits");
  auto* shape = b.proto()
                    .mutable_graph()
                    ->mutable_output(0)
                    ->mutable_type()
                    ->mutable_tensor_type()
                    ->mutable_shape();
  shape->add_dim()->set_dim_param("N");
  shape->add_dim()->set_dim_value(classes);
  b.save(path);
}

struct BenchFixture : Fixture {
  std::string conv_model = (root / "conv.onnx").string();
  BenchFixture() { write_conv_model(conv_model); }
  fgq::test::Result bench(const std::string& args) const {
    return run_program(FGQ_BENCH_EXE, args);
  }
};

}  // namespace

TEST_CASE("fgq-bench: fgq and OpenCV side by side, table and JSON") {
  BenchFixture f;
  const std::string json_path = (f.root / "bench.json").string();
  const auto r = f.bench("--model " + f.conv_model + " --batch 1,3 --threads 1 --reps 3 " +
                         "--warmup 1 --images " + f.val.string() + " --json " + json_path);
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  for (const char* row :
       {"conv/fgq-fp32/batch:1/threads:1_median", "conv/opencv-fp32/batch:1/threads:1_median",
        "conv/fgq-fp32/batch:3/threads:1_median", "conv/opencv-fp32/batch:3/threads:1_median"})
    CHECK(r.out.find(row) != std::string::npos);
  CHECK(r.out.find("items_per_second") != std::string::npos);

  const json doc = json::parse(fgq::test::slurp(json_path));
  CHECK(doc["context"]["threads"] == 1);
  CHECK(doc["context"]["quantization"].is_null());
  // The engines agree on the same input (max|a-b| / max|b|).
  for (const auto& [key, err] : doc["context"]["max_rel_error"].items()) {
    INFO(key);
    CHECK(err.get<double>() <= 1e-4);
  }
  REQUIRE(doc["benchmarks"].size() == 4);
  for (const json& b : doc["benchmarks"]) {
    INFO(b.dump());
    CHECK(b["iterations"] == 3);
    CHECK(b["samples_ms"].size() == 3);
    CHECK(b["real_time"].get<double>() > 0);
    CHECK(b["time_unit"] == "ms");
    CHECK(b["items_per_second"].get<double>() ==
          Approx(b["batch"].get<int>() * 1e3 / b["real_time"].get<double>()));
    CHECK(b["ratio_vs_opencv"].get<double>() > 0);
    if (b["engine"] == "opencv-fp32") CHECK(b["ratio_vs_opencv"].get<double>() == 1.0);
  }
}

TEST_CASE("fgq-bench: --quant fgq adds the simulated FGQ graph") {
  BenchFixture f;
  const std::string json_path = (f.root / "bench.json").string();
  const auto r = f.bench("--model " + f.conv_model + " --batch 2 --threads 1 --reps 2 " +
                         "--warmup 1 --no-opencv --quant fgq --group 4 --act-bits 8 --calib " +
                         f.val.string() + " --calib-count 3 --images " + f.val.string() +
                         " --json " + json_path);
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("conv/fgq-fp32/batch:2/threads:1_median") != std::string::npos);
  CHECK(r.out.find("conv/fgq-fgq/batch:2/threads:1_median") != std::string::npos);
  CHECK(r.out.find("opencv-fp32") == std::string::npos);
  const json doc = json::parse(fgq::test::slurp(json_path));
  CHECK(doc["context"]["quantization"]["group"] == 4);
  CHECK(doc["context"]["quantization"]["act_bits"] == 8);
  CHECK(doc["benchmarks"].size() == 2);
}

TEST_CASE("fgq-bench: random inputs when there are no images") {
  BenchFixture f;
  const auto r = f.bench("--model " + f.conv_model + " --batch 1 --threads 1 --reps 1 " +
                         "--warmup 0 --no-opencv --images " + (f.root / "missing").string());
  INFO(r.out << r.err);
  CHECK(r.code == 0);
  CHECK(r.err.find("random inputs") != std::string::npos);
}

TEST_CASE("fgq-bench: usage errors exit 1, bad models exit 2 with one line") {
  BenchFixture f;
  CHECK(f.bench("--quant int4").code == 1);
  CHECK(f.bench("--batch 0").code == 1);
  const auto r = f.bench("--model " + (f.root / "nope.onnx").string());
  CHECK(r.code == 2);
  CHECK(r.err.rfind("fgq-bench: ", 0) == 0);
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
}
