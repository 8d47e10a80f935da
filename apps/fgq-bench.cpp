// fgq-bench: inference speed of fgq next to OpenCV DNN on the same ONNX file, in one process.
//   fgq-bench [--model resnet50] [--batch 1,8] [--threads 2] [--reps 10] [--json FILE]
//   fgq-bench --quant fgq --group 4 --act-bits 8     (adds the simulated FGQ graph)
// For every batch size each engine is warmed up, then the engines run alternately (the order
// flips every repetition), so a noisy machine slows them alike; the table reports the median.
// fgq runs through the public API (fgq::Model / fgq::Session); OpenCV DNN uses
// readNetFromONNX + DNN_BACKEND_OPENCV / DNN_TARGET_CPU. Both get the same thread count
// (tbb::global_control for fgq, cv::setNumThreads for OpenCV) and the same input tensor.
// Exit codes: 0 done, 1 usage error, 2 bad input (model, images) or an engine failure.
#include <fmt/format.h>
#include <tbb/global_control.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/core/utility.hpp>
#include <opencv2/dnn.hpp>
#include <random>
#include <string>
#include <vector>

#include "fgq/fgq.h"
#include "model_registry.h"
#include "runtime/dataset.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct Options {
  std::string model = "resnet50", json_path, images_dir, calib_dir;
  std::vector<int> batches{1, 8};
  int threads = 2, reps = 10, warmup = 2, calib_count = 8;
  bool no_opencv = false, no_fp32 = false;
  std::string quant = "none";
  fgq::QuantOptions q;
};

// One engine under test: runs a batch of preprocessed images, returns the first output
// (batch x classes; copying it costs nothing next to the inference).
struct Engine {
  std::string name;  // fgq-fp32 | fgq-fgq | opencv-fp32
  std::function<std::vector<float>(const float* input, int batch)> run;
  std::vector<double> wall_ms, cpu_ms;  // per repetition, for the current batch size
};

double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n == 0 ? 0 : n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// max|a - b| / max|b| over n values: the error of `a` relative to the scale of reference `b`.
double max_rel_error(const float* a, const float* b, size_t n) {
  double diff = 0, scale = 0;
  for (size_t i = 0; i < n; ++i) {
    diff = std::max(diff, std::abs(double(a[i]) - b[i]));
    scale = std::max(scale, std::abs(double(b[i])));
  }
  return scale > 0 ? diff / scale : diff;
}

std::string shared_imagenet_dir(const std::string& sub) {
  if (const char* env = std::getenv("FGQ_DATA"); env && *env)
    return (fs::path(env) / "data/imagenet" / sub).string();
  // Executables live in <repo>/build*/apps/; the shared data sits next to the repo.
  return (fs::path(fgq::app::executable_dir()) / "../../../shared/data/imagenet" / sub)
      .lexically_normal()
      .string();
}

// n preprocessed images from `dir` (cycled if it holds fewer), or deterministic noise in the
// range of mean-subtracted pixels when the folder is missing or empty. `what` says which.
std::vector<float> load_inputs(const fgq::Session& s, int side, int n, const std::string& dir,
                               std::string& what) {
  const size_t per_image = size_t(3) * side * side;
  std::vector<float> data(per_image * n);
  std::vector<std::string> files;
  if (!dir.empty() && fs::is_directory(dir)) files = fgq::list_image_files(dir);
  if (!files.empty()) {
    for (int i = 0; i < n; ++i) {
      const std::vector<float> x = s.preprocess(files[i % files.size()]);
      std::copy(x.begin(), x.end(), data.begin() + i * per_image);
    }
    what = fmt::format("{} images from {}", std::min<size_t>(n, files.size()), dir);
  } else {
    std::mt19937 rng(12345);
    std::uniform_real_distribution<float> d(-120.f, 140.f);
    for (float& v : data) v = d(rng);
    what = "random inputs (" + (dir.empty() ? std::string("no image folder") : dir + " not found") +
           ")";
  }
  return data;
}

std::string fmt_ms(double ms) {
  return ms >= 100 ? fmt::format("{:.1f} ms", ms) : fmt::format("{:.2f} ms", ms);
}

int run(const Options& o) {
  const std::string model_path = fgq::app::resolve_model(o.model);
  const std::string model_name = fs::path(model_path).stem().string();
  const int max_batch = *std::max_element(o.batches.begin(), o.batches.end());

  fgq::Model fp32_model = fgq::Model::load(model_path);
  const int side = fp32_model.input_size();
  auto fp32_session = std::make_unique<fgq::Session>(fp32_model, max_batch);
  const int classes = fp32_session->num_classes();

  std::string input_what;
  const std::string images_dir = o.images_dir.empty() ? shared_imagenet_dir("val") : o.images_dir;
  const std::vector<float> input =
      load_inputs(*fp32_session, side, max_batch, images_dir, input_what);

  std::vector<Engine> engines;
  if (!o.no_fp32)
    engines.push_back(
        {"fgq-fp32", [&](const float* x, int b) { return fp32_session->run(x, b); }, {}, {}});

  // FGQ: quantize a second copy of the model, calibrated on real images when available.
  std::unique_ptr<fgq::Model> q_model;
  std::unique_ptr<fgq::Session> q_session;
  json quant_info = nullptr;
  if (o.quant == "fgq") {
    q_model = std::make_unique<fgq::Model>(fgq::Model::load(model_path));
    std::string calib_what;
    const std::string calib_dir = o.calib_dir.empty() ? shared_imagenet_dir("calib") : o.calib_dir;
    const std::vector<float> calib =
        load_inputs(*fp32_session, side, o.calib_count, calib_dir, calib_what);
    const auto t0 = std::chrono::steady_clock::now();
    const fgq::QuantSummary qs = q_model->quantize(o.q, calib.data(), o.calib_count);
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(stderr, "fgq-bench: FGQ N=%d, %d-bit activations, calibrated on %s in %.1f s\n",
                 o.q.group, o.q.act_bits, calib_what.c_str(), secs);
    q_session = std::make_unique<fgq::Session>(*q_model, max_batch);
    quant_info = {{"method", "fgq"},
                  {"group", o.q.group},
                  {"act_bits", o.q.act_bits},
                  {"calibration", calib_what},
                  {"ternary_layers", qs.ternary_layers},
                  {"int8_layers", qs.int8_layers},
                  {"weight_sparsity", qs.weight_sparsity}};
    engines.push_back(
        {"fgq-fgq", [&](const float* x, int b) { return q_session->run(x, b); }, {}, {}});
  }

  cv::dnn::Net net;
  if (!o.no_opencv) {
    try {
      net = cv::dnn::readNetFromONNX(model_path);
    } catch (const cv::Exception& e) {
      fgq::fail(model_path, std::string("OpenCV DNN cannot import it: ") + e.what());
    }
    net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
    net.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
    engines.push_back({"opencv-fp32",
                       [&](const float* x, int b) {
                         const int dims[4] = {b, 3, side, side};
                         net.setInput(cv::Mat(4, dims, CV_32F, const_cast<float*>(x)));
                         const cv::Mat out = net.forward();
                         if (!out.isContinuous() || out.total() != size_t(b) * classes)
                           fgq::fail(model_path, "OpenCV DNN output has " +
                                                     std::to_string(out.total()) + " values");
                         return std::vector<float>(out.ptr<float>(),
                                                   out.ptr<float>() + out.total());
                       },
                       {},
                       {}});
  }
  if (engines.empty()) fgq::fail("fgq-bench", "nothing to benchmark");

  std::fprintf(stderr, "fgq-bench: %s, threads %d, %s\n", model_path.c_str(), o.threads,
               input_what.c_str());

  // Google-Benchmark-style table: one row per engine and batch size.
  const std::string rule(116, '-');
  std::printf("%s\n%-48s %12s %12s %10s %16s %12s\n%s\n", rule.c_str(), "Benchmark", "Time", "CPU",
              "Iterations", "items_per_second", "vs_opencv", rule.c_str());
  json rows = json::array();
  json agreement = json::object();
  for (const int batch : o.batches) {
    // Warm-up: first runs allocate and plan (OpenCV re-plans on a new input shape).
    std::vector<std::vector<float>> first(engines.size());
    for (size_t e = 0; e < engines.size(); ++e)
      for (int w = 0; w < std::max(1, o.warmup); ++w)
        first[e] = engines[e].run(input.data(), batch);
    // Sanity: every engine against OpenCV (or else the first engine) on the same input.
    size_t ref = 0;
    for (size_t e = 0; e < engines.size(); ++e)
      if (engines[e].name == "opencv-fp32") ref = e;
    for (size_t e = 0; e < engines.size(); ++e) {
      if (e == ref) continue;
      const double err = max_rel_error(first[e].data(), first[ref].data(), first[e].size());
      agreement[fmt::format("{}_vs_{}/batch:{}", engines[e].name, engines[ref].name, batch)] = err;
      std::fprintf(stderr, "fgq-bench: batch %d: %s vs %s max|a-b|/max|b| = %.3g\n", batch,
                   engines[e].name.c_str(), engines[ref].name.c_str(), err);
    }
    for (Engine& e : engines) e.wall_ms.clear(), e.cpu_ms.clear();
    for (int r = 0; r < o.reps; ++r)
      for (size_t k = 0; k < engines.size(); ++k) {
        Engine& e = engines[r % 2 ? engines.size() - 1 - k : k];  // alternate the order
        const double c0 = cpu_seconds();
        const auto t0 = std::chrono::steady_clock::now();
        e.run(input.data(), batch);
        const auto t1 = std::chrono::steady_clock::now();
        e.wall_ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
        e.cpu_ms.push_back((cpu_seconds() - c0) * 1e3);
      }
    double opencv_ips = 0;
    for (const Engine& e : engines)
      if (e.name == "opencv-fp32") opencv_ips = batch * 1e3 / median(e.wall_ms);
    for (const Engine& e : engines) {
      const double wall = median(e.wall_ms), cpu = median(e.cpu_ms);
      const double ips = batch * 1e3 / wall;
      const std::string name =
          fmt::format("{}/{}/batch:{}/threads:{}_median", model_name, e.name, batch, o.threads);
      const std::string ratio = opencv_ips > 0 ? fmt::format("{:.3f}x", ips / opencv_ips) : "-";
      std::printf("%-48s %12s %12s %10d %14.2f/s %12s\n", name.c_str(), fmt_ms(wall).c_str(),
                  fmt_ms(cpu).c_str(), o.reps, ips, ratio.c_str());
      json row = {{"name", name},
                  {"run_name",
                   fmt::format("{}/{}/batch:{}/threads:{}", model_name, e.name, batch, o.threads)},
                  {"run_type", "aggregate"},
                  {"aggregate_name", "median"},
                  {"engine", e.name},
                  {"batch", batch},
                  {"threads", o.threads},
                  {"iterations", o.reps},
                  {"real_time", wall},
                  {"cpu_time", cpu},
                  {"time_unit", "ms"},
                  {"min_real_time", *std::min_element(e.wall_ms.begin(), e.wall_ms.end())},
                  {"items_per_second", ips},
                  {"samples_ms", e.wall_ms}};
      if (opencv_ips > 0) row["ratio_vs_opencv"] = ips / opencv_ips;
      rows.push_back(std::move(row));
    }
    std::fflush(stdout);
  }
  std::printf("%s\n", rule.c_str());

  if (!o.json_path.empty()) {
    json doc = {{"context",
                 {{"executable", "fgq-bench"},
                  {"model", model_path},
                  {"threads", o.threads},
                  {"warmup", o.warmup},
                  {"input", input_what},
                  {"opencv_version", CV_VERSION},
                  {"quantization", quant_info},
                  {"max_rel_error", agreement}}},
                {"benchmarks", rows}};
    std::ofstream out(o.json_path);
    out << doc.dump(2) << "\n";
    if (!out) fgq::fail(o.json_path, "cannot write the JSON report");
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App cli{"fgq-bench: fgq vs OpenCV DNN inference speed on one ONNX classifier"};
  cli.add_option("--model", o.model, "resnet50 | resnet101 | alexnet (models/NAME.onnx) or a path")
      ->capture_default_str();
  cli.add_option("--batch", o.batches, "batch sizes, comma separated")
      ->capture_default_str()
      ->delimiter(',')
      ->check(CLI::Range(1, 1024));
  cli.add_option("--threads", o.threads, "threads for fgq (TBB) and OpenCV (cv::setNumThreads)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cli.add_option("--reps", o.reps, "timed repetitions per engine and batch size")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cli.add_option("--warmup", o.warmup, "untimed runs per engine and batch size first")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cli.add_option("--images", o.images_dir,
                 "images to feed (default ${FGQ_DATA:-<repo>/../shared}/data/imagenet/val; "
                 "random inputs if missing)");
  cli.add_option("--json", o.json_path, "write the results as JSON (Google Benchmark layout)");
  cli.add_flag("--no-opencv", o.no_opencv, "benchmark fgq only");
  cli.add_flag("--no-fp32", o.no_fp32, "with --quant: skip the fgq FP32 engine");
  cli.add_option("--quant", o.quant, "none | fgq: also benchmark the FGQ-quantized graph")
      ->capture_default_str()
      ->check(CLI::IsMember({"none", "fgq"}));
  cli.add_option("--group", o.q.group, "FGQ group size N")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cli.add_option("--act-bits", o.q.act_bits, "activation bits: 8 | 4 | 0 (FP32)")
      ->capture_default_str()
      ->check(CLI::IsMember({0, 4, 8}));
  cli.add_option("--calib", o.calib_dir,
                 "calibration images (default ${FGQ_DATA:-<repo>/../shared}/data/imagenet/calib)");
  cli.add_option("--calib-count", o.calib_count, "calibration images to use")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return cli.exit(e) == 0 ? 0 : 1;
  }
  if (o.batches.empty()) o.batches = {1, 8};

  tbb::global_control threads(tbb::global_control::max_allowed_parallelism, o.threads);
  cv::setNumThreads(o.threads);
  try {
    return run(o);
  } catch (const std::exception& e) {  // fgq::Error, cv::Exception, std::bad_alloc: one line
    std::string msg = e.what();
    while (!msg.empty() && msg.back() == '\n') msg.pop_back();
    std::replace(msg.begin(), msg.end(), '\n', ' ');  // OpenCV's messages span lines
    std::fprintf(stderr, "fgq-bench: %s\n", msg.c_str());
    return 2;
  }
}
