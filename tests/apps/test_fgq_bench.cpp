// Runs the fgq-bench binary (path compiled in as FGQ_BENCH_EXE) on a tiny generated conv net:
// the table rows, the JSON report (Google Benchmark layout + peaks, memory, per-layer profiles),
// the integer pipeline (fgq-int, fgq-sim, --isa) and usage errors. Structure and sanity only:
// nothing here asserts a speed.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "app_fixture.h"
#include "graph/onnx_proto.h"
#include "ops/cpu_features.h"

namespace {

using fgq::test::Fixture;
using fgq::test::OnnxBuilder;
using fgq::test::random_floats;
using nlohmann::json;

constexpr int kK = 8, kClasses = 10, kSide = 16;
// Multiply-accumulates of one image, by hand: conv1 3x3 3->8 over 16x16 (pads 1), conv2 1x1
// 8->8 over 16x16, fc 8->10.
constexpr int64_t kConv1Macs = int64_t(kSide) * kSide * kK * 3 * 3 * 3;  // 55296
constexpr int64_t kConv2Macs = int64_t(kSide) * kSide * kK * kK;         // 16384
constexpr int64_t kFcMacs = int64_t(kClasses) * kK;                        // 80
constexpr int64_t kMacs = kConv1Macs + kConv2Macs + kFcMacs;

// Conv 3x3 + Relu -> Conv 1x1 + residual Add + Relu -> GlobalAveragePool -> Flatten -> Gemm,
// 16x16 RGB input, 10 classes; the output carries a shape, as OpenCV's importer wants.
void write_conv_model(const std::string& path) {
  const int K = kK, classes = kClasses;
  OnnxBuilder b;
  b.input("input", {-1, 3, kSide, kSide})
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
  std::string json_path = (root / "bench.json").string();
  BenchFixture() { write_conv_model(conv_model); }
  // Short peak trials: the tests check structure, not speed.
  fgq::test::Result bench(const std::string& args) const {
    return run_program(FGQ_BENCH_EXE, "--peak-seconds 0.003 " + args);
  }
  // Quantized run on the fixture's images (calibration too).
  std::string quant_args() const {
    return "--model " + conv_model + " --threads 1 --reps 2 --warmup 0 --quant fgq --calib " +
           val.string() + " --calib-count 3 --images " + val.string() + " --json " + json_path;
  }
  json report() const { return json::parse(fgq::test::slurp(json_path)); }
};

const json* find_row(const json& doc, const std::string& engine, int batch) {
  for (const json& b : doc["benchmarks"])
    if (b["engine"] == engine && b["batch"] == batch) return &b;
  return nullptr;
}

const json* find_profile(const json& doc, const std::string& engine, int batch) {
  for (const json& l : doc["layers"])
    if (l["engine"] == engine && l["batch"] == batch) return &l;
  return nullptr;
}

// A per-layer profile is consistent: node times add up to the whole, MACs are the model's (by
// hand), GMAC/s and shares follow from them, non-MAC ops are summed per op.
void check_profile(const json& p, int batch, int reps, const std::string& int_op) {
  INFO(p["name"].get<std::string>());
  CHECK(p["repetitions"] == reps);
  CHECK(p["samples_ms"].size() == size_t(reps));
  const double total = p["total_ms"].get<double>();
  REQUIRE(total > 0);
  double sum = 0, share = 0;
  int64_t macs = 0;
  std::vector<int64_t> layer_macs;
  for (const json& n : p["nodes"]) {
    INFO(n.dump());
    const double ms = n["ms"].get<double>();
    CHECK(ms >= 0);
    CHECK(n["min_ms"].get<double>() <= ms + 1e-12);
    sum += ms;
    share += n["share"].get<double>();
    const int64_t m = n["macs"].get<int64_t>();
    macs += m;
    CHECK(n["output_shape"][0] == batch);
    if (m > 0) {
      layer_macs.push_back(m);
      CHECK(n["kind"] != "none");
      if (n["op"] == int_op) CHECK(n["kind"] == (int_op == "QConv" ? "int8" : "fp32"));
      if (ms > 0) CHECK(n["gmacs_per_second"].get<double>() == Approx(m * 1e-6 / ms));
    } else {
      CHECK(n["kind"] == "none");
      CHECK(n["gmacs_per_second"].is_null());
    }
  }
  // The node times are the differences of consecutive timestamps of each run: with 2
  // repetitions (median = mean) their medians add up to the median whole exactly.
  CHECK(p["sum_node_ms"].get<double>() == Approx(sum));
  if (reps <= 2) CHECK(sum == Approx(total).epsilon(1e-6));
  CHECK(share == Approx(1.0));
  CHECK(p["whole_network_ms"].get<double>() > 0);
  // conv1, conv2 and the classifier, in graph order.
  CHECK(layer_macs == std::vector<int64_t>{batch * kConv1Macs, batch * kConv2Macs, batch * kFcMacs});
  CHECK(macs == batch * kMacs);
  CHECK(p["macs"] == batch * kMacs);
  CHECK(p["gmacs_per_second"].get<double>() == Approx(batch * kMacs * 1e-6 / total));
  int other = 0;
  for (const json& o : p["other_ops"]) other += o["count"].get<int>();
  CHECK(size_t(other) + layer_macs.size() == p["nodes"].size());
}

}  // namespace

TEST_CASE("fgq-bench: fgq and OpenCV side by side, table, JSON, peaks and per-layer profile") {
  BenchFixture f;
  const auto r = f.bench("--model " + f.conv_model + " --batch 1,3 --threads 1 --reps 3 " +
                         "--warmup 1 --images " + f.val.string() + " --json " + f.json_path);
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  for (const char* row :
       {"conv/fgq-fp32/batch:1/threads:1_median", "conv/opencv-fp32/batch:1/threads:1_median",
        "conv/fgq-fp32/batch:3/threads:1_median", "conv/opencv-fp32/batch:3/threads:1_median"})
    CHECK(r.out.find(row) != std::string::npos);
  for (const char* col : {"items_per_second", "GMAC/s", "%peak", "Peak, measured now on 1 thread",
                          "Memory", "Layers of conv/fgq-fp32/batch:1/threads:1", "whole network"})
    CHECK(r.out.find(col) != std::string::npos);
  // Per-layer tables by default for batch 1 (and 8), not for 3.
  CHECK(r.out.find("Layers of conv/fgq-fp32/batch:3") == std::string::npos);

  const json doc = f.report();
  const json& ctx = doc["context"];
  CHECK(ctx["threads"] == 1);
  CHECK(ctx["quantization"].is_null());
  // The engines agree on the same input (max|a-b| / max|b|), the profile's executor with its
  // engine too.
  CHECK(ctx["max_rel_error"].contains("fgq-fp32_vs_opencv-fp32/batch:1"));
  CHECK(ctx["max_rel_error"].contains("fgq-fp32-layers_vs_fgq-fp32/batch:1"));
  for (const auto& [key, err] : ctx["max_rel_error"].items()) {
    INFO(key);
    CHECK(err.get<double>() <= 1e-4);
  }
  CHECK(ctx["quantization_error"].empty());
  // Peaks: measured with the benchmark's thread count; whatever this CPU runs.
  const json& peak = ctx["peak"];
  for (const char* which : {"int8", "fp32"}) {
    INFO(which);
    if (peak[which].is_null()) continue;
    CHECK(peak[which]["threads"] == 1);
    CHECK(peak[which]["per_thread"].size() == 1);
    CHECK(peak[which]["gmacs_per_second"].get<double>() > 0);
    CHECK(peak[which]["single_thread_gmacs_per_second"].get<double>() > 0);
    CHECK(peak[which]["macs_per_instruction"].get<int>() >= 8);
  }
  // Measured at the start, before each table (batch 1: rows and layers; batch 3: rows), the end.
  REQUIRE(peak["history"].size() == 5);
  CHECK(peak["history"][0]["when"] == "start");
  CHECK(peak["history"][4]["when"] == "end");
  const json& mem = ctx["memory"]["fgq-fp32"];
  // The model's FP32 weights: (27 + 8 + 64 + 80 + 10) floats, no unreferenced constants.
  CHECK(mem["weight_bytes"].get<int64_t>() >= (27 * 8 + 8 + 64 + 80 + 10) * 4);
  CHECK(mem["activation_bytes"].get<int64_t>() > 0);
  CHECK(mem["activation_max_batch"] == 3);
  CHECK_FALSE(ctx["memory"].contains("opencv-fp32"));

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
    // Every engine runs the model's MACs, all float here.
    CHECK(b["macs"] == b["batch"].get<int>() * kMacs);
    CHECK(b["fp32_macs"] == b["macs"]);
    CHECK(b["int8_macs"] == 0);
    CHECK(b["gmacs_per_second"].get<double>() ==
          Approx(b["macs"].get<double>() * 1e-6 / b["real_time"].get<double>()));
    // % of the FP32 peak the row was printed with: the best measured up to then, at most the
    // best of the whole run.
    if (!peak["fp32"].is_null()) {
      const double row_peak = b["peak_fp32_gmacs_per_second"].get<double>();
      CHECK(row_peak <= peak["fp32"]["gmacs_per_second"].get<double>());
      CHECK(b["percent_of_peak"].get<double>() ==
            Approx(100 * b["gmacs_per_second"].get<double>() / row_peak));
    }
  }
  REQUIRE(doc["layers"].size() == 1);
  const json* p = find_profile(doc, "fgq-fp32", 1);
  REQUIRE(p != nullptr);
  check_profile(*p, 1, 3, "Conv");
}

TEST_CASE("fgq-bench: --quant fgq adds the integer pipeline, profiled per layer") {
  BenchFixture f;
  const auto r = f.bench(f.quant_args() + " --batch 2 --no-opencv --group 4 --act-bits 8 --layers");
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("conv/fgq-fp32/batch:2/threads:1_median") != std::string::npos);
  CHECK(r.out.find("conv/fgq-int/batch:2/threads:1_median") != std::string::npos);
  CHECK(r.out.find("opencv-fp32") == std::string::npos);
  CHECK(r.out.find("Layers of conv/fgq-int/batch:2/threads:1") != std::string::npos);
  CHECK(r.out.find("Layers of conv/fgq-fp32/batch:2/threads:1") != std::string::npos);
  CHECK(r.err.find("quantization error") != std::string::npos);

  const json doc = f.report();
  const json& ctx = doc["context"];
  const json& q = ctx["quantization"];
  CHECK(q["group"] == 4);
  CHECK(q["act_bits"] == 8);
  CHECK(q["fold_levels"] == 127);
  CHECK(q["integer_layers"] == 3);  // conv1, conv2 and the classifier
  CHECK(q["float_layers"].empty());
  CHECK(q["isa"] == ctx["isa"]);
  // Integer vs FP32 is the quantization error, labelled so; finite and not absurd.
  REQUIRE(ctx["quantization_error"].contains("fgq-int_vs_fgq-fp32/batch:2"));
  const double qerr = ctx["quantization_error"]["fgq-int_vs_fgq-fp32/batch:2"].get<double>();
  CHECK(std::isfinite(qerr));
  CHECK(qerr < 1.0);
  CHECK(ctx["top1_agreement"].contains("fgq-int_vs_fgq-fp32/batch:2"));
  // The profiles' executors compute what the engines compute.
  CHECK(ctx["max_rel_error"]["fgq-int-layers_vs_fgq-int/batch:2"].get<double>() == 0.0);
  CHECK(ctx["max_rel_error"]["fgq-fp32-layers_vs_fgq-fp32/batch:2"].get<double>() <= 1e-6);

  // Memory of both engines.
  for (const char* e : {"fgq-fp32", "fgq-int"}) {
    INFO(e);
    REQUIRE(ctx["memory"].contains(e));
    CHECK(ctx["memory"][e]["weight_bytes"].get<int64_t>() > 0);
    CHECK(ctx["memory"][e]["activation_bytes"].get<int64_t>() > 0);
  }
  // The integer model holds ternary codes (2 bits) and kernel-packed int8 weights.
  CHECK(ctx["memory"]["fgq-int"]["weight_const_bytes"].contains("t2"));
  CHECK(ctx["memory"]["fgq-int"]["weight_packed_bytes"].get<int64_t>() > 0);

  REQUIRE(doc["benchmarks"].size() == 2);
  const json* int_row = find_row(doc, "fgq-int", 2);
  REQUIRE(int_row != nullptr);
  CHECK((*int_row)["macs"] == 2 * kMacs);
  CHECK((*int_row)["int8_macs"] == 2 * kMacs);
  CHECK((*int_row)["fp32_macs"] == 0);
  if (!ctx["peak"]["int8"].is_null())
    CHECK((*int_row)["percent_of_peak"].get<double>() > 0);

  REQUIRE(doc["layers"].size() == 2);
  const json* pi = find_profile(doc, "fgq-int", 2);
  const json* pf = find_profile(doc, "fgq-fp32", 2);
  REQUIRE(pi != nullptr);
  REQUIRE(pf != nullptr);
  check_profile(*pi, 2, 2, "QConv");
  check_profile(*pf, 2, 2, "Conv");
  // The integer graph's ops: the image quantized, then three QConv; no float conv left.
  std::set<std::string> ops;
  for (const json& n : (*pi)["nodes"]) ops.insert(n["op"].get<std::string>());
  CHECK(ops.count("Quantize") == 1);
  CHECK(ops.count("QConv") == 1);
  CHECK(ops.count("Conv") == 0);
  CHECK(ops.count("Gemm") == 0);
  for (const json& n : (*pi)["nodes"])
    if (n["op"] == "QConv") CHECK(n["kind"] == "int8");
}

TEST_CASE("fgq-bench: --timeline splits the threads' time in the integer convolutions") {
  BenchFixture f;
  std::string args = f.quant_args();
  args.replace(args.find("--threads 1"), 11, "--threads 2");
  const auto r = f.bench(args + " --batch 2 --no-opencv --no-layers --timeline");
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("Threads in the integer convolutions of fgq-int, batch 2, 2 threads") != std::string::npos);
  CHECK(r.out.find("all convolutions") != std::string::npos);
  const json doc = f.report();
  REQUIRE(doc["timeline"].size() == 1);
  const json& t = doc["timeline"][0];
  CHECK(t["engine"] == "fgq-int");
  CHECK(t["batch"] == 2);
  CHECK(t["threads"] == 2);
  CHECK(t["runs"] == 2);  // --reps
  CHECK(t["run_ms"].get<double>() >= t["convolutions_ms"].get<double>());
  auto check_shares = [](const json& x) {
    double sum = 0;
    for (const char* k : {"computing_pct", "before_first_task_pct", "after_last_task_pct", "between_tasks_pct"}) {
      INFO(k);
      CHECK(x[k].get<double>() >= 0);
      CHECK(x[k].get<double>() <= 100.0001);
      sum += x[k].get<double>();
    }
    CHECK(sum == Approx(100).margin(1e-6));
  };
  check_shares(t);
  CHECK(t["computing_pct"].get<double>() > 0);
  // One row per QConv node, named after it: the fixture's conv1, conv2 and classifier.
  REQUIRE(t["layers"].size() == 3);
  std::set<std::string> names;
  for (const json& l : t["layers"]) {
    check_shares(l);
    CHECK(l["wall_us"].get<double>() > 0);
    names.insert(l["name"].get<std::string>());
  }
  CHECK(names.size() == 3);
  CHECK(names.count("#1") == 0);
}

TEST_CASE("fgq-bench: --isa scalar, --simulate, 4-bit activations") {
  BenchFixture f;
  const auto r = f.bench(f.quant_args() + " --batch 1 --no-opencv --isa scalar --simulate " +
                         "--act-bits 4 --group 2 --fold-levels 63 --top 1");
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("conv/fgq-int/batch:1/threads:1_median") != std::string::npos);
  CHECK(r.out.find("conv/fgq-sim/batch:1/threads:1_median") != std::string::npos);
  CHECK(r.out.find("int8   n/a") != std::string::npos);  // no SIMD dot product on scalar
  CHECK(r.out.find("(2 more MAC layers)") != std::string::npos);  // --top 1

  const json doc = f.report();
  const json& ctx = doc["context"];
  CHECK(ctx["isa"] == "scalar");
  CHECK(ctx["quantization"]["isa"] == "scalar");
  CHECK(ctx["quantization"]["act_bits"] == 4);
  CHECK(ctx["quantization"]["group"] == 2);
  CHECK(ctx["quantization"]["fold_levels"] == 63);
  CHECK(ctx["peak"]["int8"].is_null());
  // The simulation runs the integer graph on float kernels: its MACs count as FP32.
  const json* sim = find_row(doc, "fgq-sim", 1);
  const json* in = find_row(doc, "fgq-int", 1);
  REQUIRE(sim != nullptr);
  REQUIRE(in != nullptr);
  CHECK((*sim)["fp32_macs"] == kMacs);
  CHECK((*in)["int8_macs"] == kMacs);
  CHECK((*in)["percent_of_peak"].is_null());  // no int8 peak to compare with
  // Integer-exact simulation: the same logits up to float rounding at requantization ties.
  REQUIRE(ctx["max_rel_error"].contains("fgq-sim_vs_fgq-int/batch:1"));
  CHECK(ctx["max_rel_error"]["fgq-sim_vs_fgq-int/batch:1"].get<double>() <= 0.05);
  CHECK(ctx["memory"].contains("fgq-sim"));
  const json* pi = find_profile(doc, "fgq-int", 1);
  REQUIRE(pi != nullptr);
  check_profile(*pi, 1, 2, "QConv");
  for (const json& n : (*pi)["nodes"])
    if (n["op"] == "QConv") CHECK(n["percent_of_peak"].is_null());
}

TEST_CASE("fgq-bench: an --isa this CPU cannot run is a one-line error, exit 2") {
  BenchFixture f;
  // Which paths this CPU has is its business: each either runs (and is reported) or is refused
  // cleanly, naming the path.
  for (const std::string isa : {"avx2", "avx512vnni"}) {
    INFO(isa);
    const auto r = f.bench("--model " + f.conv_model + " --batch 1 --threads 1 --reps 1 " +
                           "--warmup 0 --no-opencv --no-layers --isa " + isa + " --json " + f.json_path);
    INFO(r.out << r.err);
    if (r.code == 0) {
      CHECK(f.report()["context"]["isa"] == isa);
    } else {
      CHECK(r.code == 2);
      CHECK(r.err.rfind("fgq-bench: ", 0) == 0);
      CHECK(r.err.find("cannot run the " + isa) != std::string::npos);
      CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    }
  }
}

TEST_CASE("fgq-bench: --no-layers, random inputs when there are no images") {
  BenchFixture f;
  const auto r = f.bench("--model " + f.conv_model + " --batch 1 --threads 1 --reps 1 " +
                         "--warmup 0 --no-opencv --no-layers --images " + (f.root / "missing").string() +
                         " --json " + f.json_path);
  INFO(r.out << r.err);
  CHECK(r.code == 0);
  CHECK(r.err.find("random inputs") != std::string::npos);
  CHECK(r.out.find("Layers of") == std::string::npos);
  CHECK(f.report()["layers"].empty());
}

TEST_CASE("fgq-bench: usage errors exit 1, bad models exit 2 with one line") {
  BenchFixture f;
  CHECK(f.bench("--quant int4").code == 1);
  CHECK(f.bench("--batch 0").code == 1);
  CHECK(f.bench("--isa sse9").code == 1);
  CHECK(f.bench("--act-bits 3").code == 1);
  CHECK(f.bench("--layers --no-layers").code == 1);
  const auto r = f.bench("--model " + (f.root / "nope.onnx").string());
  CHECK(r.code == 2);
  CHECK(r.err.rfind("fgq-bench: ", 0) == 0);
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
}

TEST_CASE("fgq-bench: --fold-levels 0 leaves the ternary layers on float kernels") {
  BenchFixture f;
  const auto r = f.bench(f.quant_args() + " --batch 1 --no-opencv --no-fp32 --fold-levels 0");
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  const json doc = f.report();
  const json& q = doc["context"]["quantization"];
  CHECK(q["fold_levels"] == 0);
  CHECK_FALSE(q["float_layers"].empty());
  // Whatever stays float counts against the FP32 peak, the rest against the int8 one.
  const json* in = find_row(doc, "fgq-int", 1);
  REQUIRE(in != nullptr);
  CHECK((*in)["fp32_macs"].get<int64_t>() > 0);
  CHECK((*in)["int8_macs"].get<int64_t>() + (*in)["fp32_macs"].get<int64_t>() == kMacs);
  const json* pi = find_profile(doc, "fgq-int", 1);
  REQUIRE(pi != nullptr);
  int64_t fp32 = 0;
  for (const json& n : (*pi)["nodes"])
    if (n["kind"] == "fp32") fp32 += n["macs"].get<int64_t>();
  CHECK(fp32 == (*in)["fp32_macs"]);
}

TEST_CASE("fgq-bench: a model saved by fgq-run --save-quant is the fgq-int engine") {
  BenchFixture f;
  const std::string saved = (f.root / "saved_int.onnx").string();
  const auto q = f.run("--model " + f.conv_model + " --imagenet " + f.val.string() +
                       " --quant fgq --calib " + f.val.string() + " --calib-count 3 --quiet --save-quant " + saved);
  INFO(q.out << q.err);
  REQUIRE(q.code == 0);
  const auto r = f.bench("--model " + saved + " --batch 1 --threads 1 --reps 2 --warmup 0 --no-layers " +
                         "--images " + f.val.string() + " --json " + f.json_path);
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK(r.err.find("OpenCV DNN skipped") != std::string::npos);
  const json doc = f.report();
  REQUIRE(doc["benchmarks"].size() == 1);
  const json* row = find_row(doc, "fgq-int", 1);
  REQUIRE(row != nullptr);
  CHECK((*row)["int8_macs"] == kMacs);  // every layer on the integer kernels
  // Quantizing it again is refused, naming the file.
  const auto again = f.bench("--model " + saved + " --batch 1 --reps 1 --quant fgq");
  CHECK(again.code == 2);
  CHECK(again.err.find(saved) != std::string::npos);
  CHECK(again.err.find("drop --quant fgq") != std::string::npos);
}

TEST_CASE("fgq-layer-bench: one layer on every kernel path this CPU runs, warm and cold") {
  Fixture f;
  for (fgq::ops::Isa isa : fgq::ops::supported_isas()) {
    const auto r = f.run_program(FGQ_LAYER_BENCH_EXE, std::string("--isa ") + fgq::ops::isa_name(isa) +
                                                          " --threads 2 --reps 10 --cold-mb 4 --layer res5b_branch2b");
    INFO(r.out << r.err);
    REQUIRE(r.code == 0);
    CHECK(r.out.find(std::string(fgq::ops::isa_name(isa)) + " kernels, 2 threads") != std::string::npos);
    // One row: the layer, its 115.6 MMAC, then time, % of peak and best % (0 on a path without
    // a peak loop) for the warm, cold weights and cold activations conditions.
    const size_t row = r.out.find("res5b_branch2b (3x3, 512, 7)");
    REQUIRE(row != std::string::npos);
    CHECK(r.out.find("cold act us") != std::string::npos);
    std::istringstream cols(r.out.substr(row + std::strlen("res5b_branch2b (3x3, 512, 7)"),
                                         r.out.find('\n', row) - row));
    std::vector<double> v;
    for (double d; cols >> d;) v.push_back(d);
    REQUIRE(v.size() == 10);
    CHECK(v[0] == 115.6);
    for (int c : {1, 4, 7}) CHECK(v[size_t(c)] > 0);
    for (double d : v) CHECK(d >= 0);
    CHECK(r.out.find("res5b_branch2a") == std::string::npos);
  }
  CHECK(f.run_program(FGQ_LAYER_BENCH_EXE, "--isa avx9").code == 2);
  CHECK(f.run_program(FGQ_LAYER_BENCH_EXE, "--reps 0").code != 0);
}

TEST_CASE("scripts/ab_bench.sh: two benches in interleaved rounds, medians and paired wins") {
  BenchFixture f;
  const char* src = std::getenv("FGQ_SOURCE_DIR");
  const std::string script = std::string(src ? src : ".") + "/scripts/ab_bench.sh";
  const std::string bench = FGQ_BENCH_EXE;
  const auto r = f.run_program(script, "--rounds 2 --reps 2 --model " + f.conv_model + " " + bench + " " + bench);
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK(r.err.find("round 2 of 2 done") != std::string::npos);
  // One line per bench, "<bench>: median M ms, min N ms over 2 rounds", the second one with its
  // ratio to the first's median and in how many of the 2 rounds it was faster.
  std::istringstream lines(r.out);
  std::vector<std::string> rows;
  for (std::string line; std::getline(lines, line);) rows.push_back(line);
  REQUIRE(rows.size() == 2);
  for (const std::string& row : rows) {
    CHECK(row.rfind(bench + ": median ", 0) == 0);
    CHECK(row.find(" ms over 2 rounds") != std::string::npos);
    CHECK(std::stod(row.substr(bench.size() + std::strlen(": median "))) > 0);
  }
  CHECK(rows[0].find("first's median") == std::string::npos);
  CHECK(rows[1].find("x the first's median, faster in ") != std::string::npos);
  CHECK(rows[1].find(" of 2 rounds") != std::string::npos);

  CHECK(f.run_program(script, bench).code == 2);  // one bench: nothing to compare
  CHECK(f.run_program(script, "--model " + f.conv_model + " /nonexistent/fgq-bench " + bench).code == 2);
  CHECK(f.run_program(script, "--model /nonexistent.onnx " + bench + " " + bench).code == 2);
}
