// fgq-run: ImageNet Top-1/Top-5 evaluation of an ONNX classifier, FP32 or FGQ-quantized.
//   fgq-run --model resnet50 --imagenet DIR [--plain-resize] [--limit N] [--json FILE] ...
//   fgq-run --model resnet50 --imagenet DIR --quant fgq --group 4 --act-bits 8
// Summary line on stdout; progress, warnings and errors on stderr.
// Exit codes: 0 done, 1 usage error, 2 bad input (missing folder/labels/model, bad model),
// 128+signal when stopped by SIGINT/SIGTERM (the partial result is still printed and written).
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <tbb/global_control.h>
#include <tbb/parallel_for.h>

#include "eval_pipeline.h"
#include "graph/error.h"
#include "graph/passes.h"
#include "graph/prepare.h"
#include "model_registry.h"
#include "quant/quantize.h"
#include "runtime/dataset.h"
#include "runtime/executor.h"
#include "runtime/preprocess.h"
#include "runtime/progress.h"
#include "runtime/report.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct Options {
  std::string model, imagenet, labels, synsets, json_path, shard;
  int resize = 256, crop = 0, limit = 0, batch = 8, threads = 0;
  bool plain_resize = false, quiet = false;
  // Quantization.
  std::string quant = "none", calib_dir;
  int calib_count = 200;
  fgq::QuantOptions q;
  bool no_stats_correction = false;
  bool no_gptq = false;
};

// Set from the signal handler (lock-free atomics are async-signal-safe).
std::atomic<bool> g_stop{false};
std::atomic<int> g_signal{0};

extern "C" void on_signal(int sig) {
  g_signal.store(sig);
  g_stop.store(true);
}

// First SIGINT/SIGTERM: finish the batches in flight and report; SA_RESETHAND makes a second one
// kill the process as usual.
void install_stop_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESETHAND;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// --limit first, then --shard: the shards of one limited run partition the same images.
std::vector<fgq::LabeledImage> select_images(std::vector<fgq::LabeledImage> all, const Options& o) {
  if (o.limit > 0 && size_t(o.limit) < all.size()) all.resize(o.limit);
  if (o.shard.empty()) return all;
  const fgq::Shard shard = fgq::parse_shard(o.shard, "--shard");
  std::vector<fgq::LabeledImage> part;
  for (size_t k = shard.index; k < all.size(); k += shard.count) part.push_back(std::move(all[k]));
  return part;
}

std::string default_calib_dir() {
  if (const char* env = std::getenv("FGQ_DATA"); env && *env)
    return (fs::path(env) / "data/imagenet/calib").string();
  // Executables live in <repo>/build*/apps/; the shared data sits next to the repo.
  const std::string exe = fgq::app::executable_dir();
  return (fs::path(exe) / "../../../shared/data/imagenet/calib").lexically_normal().string();
}

// calib_count images spread evenly over the calibration folder (sorted), preprocessed like
// inference. Evenly, not the first ones: the folder is sorted by class, and statistics taken
// from the first 200 classes (all animals) bias the correction.
std::vector<float> load_calibration(const Options& o, const fgq::Preprocess& pre, int& n) {
  std::vector<std::string> files = fgq::list_image_files(o.calib_dir);
  if (files.empty()) fgq::fail(o.calib_dir, "no calibration images");
  if (files.size() > size_t(o.calib_count)) {
    std::vector<std::string> spread(o.calib_count);
    for (size_t i = 0; i < spread.size(); ++i) spread[i] = files[i * files.size() / spread.size()];
    files = std::move(spread);
  }
  n = static_cast<int>(files.size());
  const size_t per_image = size_t(3) * pre.input_size * pre.input_size;
  std::vector<float> data(per_image * n);
  tbb::parallel_for(0, n, [&](int i) { fgq::load_image(files[i], pre, data.data() + i * per_image); });
  return data;
}

json quant_json(const fgq::QuantReport& r, const Options& o, int n_calib) {
  json layers = json::array();
  for (const auto& l : r.layers)
    layers.push_back({{"name", l.name}, {"kind", l.kind}, {"groups", l.groups},
                      {"sparsity", l.sparsity}, {"rel_error", l.rel_error}});
  return {{"method", "fgq"},
          {"group", o.q.group},
          {"act_bits", o.q.act_bits},
          {"threshold", o.q.threshold},
          {"act_calib", o.q.act_calib},
          {"stats_correction", o.q.stats_correction},
          {"correction", o.q.correction},
          {"gptq", o.q.gptq},
          {"ternarize_first", o.q.ternarize_first},
          {"ternarize_last", o.q.ternarize_last},
          {"calib_dir", o.calib_dir},
          {"calib_images", n_calib},
          {"weight_sparsity", r.weight_sparsity},
          {"mults_removed", r.mults_removed},
          {"corrected_layers", r.corrected_layers},
          {"seconds", r.seconds},
          {"layers", std::move(layers)}};
}

json options_json(const Options& o, const fgq::Preprocess& pre) {
  auto triple = [](const std::array<float, 3>& a) {
    return json::array({fgq::json_float(a[0]), fgq::json_float(a[1]), fgq::json_float(a[2])});
  };
  return {{"resize", o.resize},
          {"crop", pre.input_size},
          {"plain_resize", o.plain_resize},
          {"limit", o.limit},
          {"shard", o.shard},
          {"batch", o.batch},
          {"threads", o.threads},
          {"quant", o.quant},
          {"preprocess",
           {{"channel_order", pre.channel_order},
            {"pixel_scale", fgq::json_float(pre.pixel_scale)},
            {"mean", triple(pre.mean)},
            {"std", triple(pre.std)},
            {"input_size", pre.input_size}}}};
}

// Checks the network input against the crop and the labels against the classes.
void check_model_fits(const fgq::Executor& ex, const fgq::Preprocess& pre,
                      const std::vector<fgq::LabeledImage>& images, const std::string& model) {
  const fgq::Shape& in = ex.input_shape();
  if (in.size() != 4 || in[1] != 3 || in[2] != pre.input_size || in[3] != pre.input_size)
    fgq::fail(model, "input is " + fgq::shape_str(in) + ", but images are preprocessed to 3x" +
                         std::to_string(pre.input_size) + "x" + std::to_string(pre.input_size) +
                         " (see --crop)");
  const int64_t classes = fgq::numel(ex.output_shape(0, 1));
  for (const auto& img : images)
    if (img.label >= classes)
      fgq::fail(img.name, "label " + std::to_string(img.label) + " is outside the model's " +
                              std::to_string(classes) + " classes");
}

int run(const Options& o) {
  const auto t_load = std::chrono::steady_clock::now();
  // The dataset first: a wrong folder should not wait for a model load.
  fgq::Dataset ds = fgq::discover_dataset(o.imagenet, {o.labels, o.synsets});
  const std::vector<fgq::LabeledImage> images = select_images(ds.images, o);
  const std::string model_path = fgq::app::resolve_model(o.model);

  const bool quantize = o.quant == "fgq";
  // Quantization needs the conv outputs before activation fusion; fuse afterwards.
  fgq::Graph g = fgq::load_and_prepare(model_path, /*fuse=*/!quantize);
  fgq::Preprocess pre = fgq::Preprocess::from_metadata(g.metadata, model_path);
  if (!g.metadata.count("fgq.input_size") && !g.inputs.empty()) {
    const fgq::Shape& in = g.values[g.inputs[0]].shape;  // no metadata: trust the graph
    if (in.size() == 4 && in[2] > 0 && in[2] == in[3]) pre.input_size = static_cast<int>(in[2]);
  }
  if (o.crop > 0) pre.input_size = o.crop;
  pre.resize_shorter = o.resize;
  pre.plain_resize = o.plain_resize;
  if (!pre.plain_resize && pre.resize_shorter < pre.input_size)
    fgq::fail("--resize", std::to_string(o.resize) + " is smaller than the crop " +
                              std::to_string(pre.input_size));
  const double load_s = seconds_since(t_load);

  json quant_info;  // null unless quantized
  double quant_s = 0;
  if (quantize) {
    const auto t_q = std::chrono::steady_clock::now();
    int n_calib = 0;
    const std::vector<float> calib = load_calibration(o, pre, n_calib);
    const fgq::QuantReport r = fgq::quantize_graph(g, o.q, calib.data(), n_calib);
    fgq::fuse_conv_activation(g);
    quant_s = seconds_since(t_q);
    quant_info = quant_json(r, o, n_calib);
    if (!o.quiet)
      std::fprintf(stderr, "fgq-run: FGQ N=%d, %d-bit activations, %d calibration images: "
                           "weight sparsity %.3f, %.1f s\n",
                   o.q.group, o.q.act_bits, n_calib, r.weight_sparsity, quant_s);
  }

  fgq::Executor exec(g, o.batch);
  check_model_fits(exec, pre, images, model_path);
  const fgq::Graph& eg = exec.graph();
  const bool ends_in_softmax = !eg.nodes.empty() && eg.nodes.back().op == "Softmax";

  if (!o.quiet)
    std::fprintf(stderr, "fgq-run: %s, %zu images (%s, %s), batch %d, %d threads\n",
                 model_path.c_str(), images.size(), ds.layout.c_str(), ds.labels_file.c_str(),
                 o.batch, o.threads);

  fgq::Accuracy acc;
  fgq::Progress progress(static_cast<int64_t>(images.size()), isatty(STDERR_FILENO) != 0, o.quiet);
  install_stop_handlers();
  const auto t_eval = std::chrono::steady_clock::now();
  const bool interrupted =
      fgq::app::evaluate({&images, &pre, &exec, ends_in_softmax, 4}, g_stop, acc, progress);
  const double eval_s = seconds_since(t_eval);
  progress.finish(acc.scored() + acc.skipped(), interrupted);

  std::printf("%s%s\n", fgq::summary_line(acc, eval_s).c_str(), interrupted ? "  (interrupted)" : "");
  std::fflush(stdout);

  if (!o.json_path.empty()) {
    fgq::RunInfo info;
    info.model_path = model_path;
    info.model_metadata = g.metadata;
    info.options = options_json(o, pre);
    info.dataset = {{"dir", ds.dir}, {"layout", ds.layout}, {"labels_file", ds.labels_file},
                    {"images_found", ds.images.size()}};
    info.quantization = quant_info;
    info.images_selected = static_cast<int64_t>(images.size());
    info.load_seconds = load_s;
    info.quantize_seconds = quant_s;
    info.eval_seconds = eval_s;
    info.interrupted = interrupted;
    fgq::write_json_atomic(o.json_path, fgq::report_json(info, acc));
  }
  return interrupted ? 128 + g_signal.load() : 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  o.threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  CLI::App cli{"fgq-run: ImageNet Top-1/Top-5 evaluation of an ONNX classifier (FP32 or FGQ)"};
  cli.add_option("--model", o.model, "resnet50 | resnet101 | alexnet (models/NAME.onnx) or a path")
      ->required();
  cli.add_option("--imagenet", o.imagenet,
                 "flat folder of ILSVRC2012_val_*.JPEG + val_labels.txt, or DIR/<synset>/*.JPEG")
      ->required();
  cli.add_option("--labels", o.labels, "labels file, 'NAME INDEX' per line (flat layout)");
  cli.add_option("--synsets", o.synsets, "synset_words.txt: line i = class i (ImageFolder layout)");
  cli.add_option("--resize", o.resize, "resize the shorter side to N, then centre-crop")
      ->check(CLI::PositiveNumber);
  cli.add_option("--crop", o.crop, "crop size (default: the model's input size)")
      ->check(CLI::PositiveNumber);
  cli.add_flag("--plain-resize", o.plain_resize, "resize straight to crop x crop");
  cli.add_option("--limit", o.limit, "evaluate only the first N images")->check(CLI::PositiveNumber);
  cli.add_option("--shard", o.shard,
                 "i/n: evaluate images whose index % n == i (after --limit); fgq-merge combines "
                 "the shards' --json reports");
  cli.add_option("--batch", o.batch, "images per inference batch")->check(CLI::Range(1, 1024));
  cli.add_option("--threads", o.threads, "worker threads (default: all cores)")
      ->check(CLI::PositiveNumber);
  cli.add_option("--json", o.json_path, "write a JSON report (per-image results) to FILE");
  cli.add_flag("--quiet", o.quiet, "no progress or info lines (warnings and the summary remain)");
  // FGQ quantization at load time.
  cli.add_option("--quant", o.quant, "none | fgq")->check(CLI::IsMember({"none", "fgq"}));
  cli.add_option("--group", o.q.group, "FGQ group size N")->check(CLI::PositiveNumber);
  cli.add_option("--act-bits", o.q.act_bits, "activation bits: 8 | 4 | 0 (FP32)")
      ->check(CLI::IsMember({0, 4, 8}));
  cli.add_option("--threshold", o.q.threshold, "ternary threshold: exact | twn")
      ->check(CLI::IsMember({"exact", "twn"}));
  cli.add_option("--act-calib", o.q.act_calib, "activation range calibration: max | percentile | mse")
      ->check(CLI::IsMember({"max", "percentile", "mse"}));
  cli.add_option("--calib", o.calib_dir,
                 "calibration images (default ${FGQ_DATA:-<repo>/../shared}/data/imagenet/calib)");
  cli.add_option("--calib-count", o.calib_count, "use N calibration images, evenly spread over the sorted folder")
      ->check(CLI::PositiveNumber);
  cli.add_option("--correction", o.q.correction,
                 "statistics correction: fp32 (match the FP32 network's channel mean and "
                 "variance) | mean (its mean only) | bn (re-estimate BatchNorm)")
      ->check(CLI::IsMember({"fp32", "mean", "bn"}));
  cli.add_flag("--ternarize-first", o.q.ternarize_first, "ternarize the first conv too (default: 8-bit)");
  cli.add_flag("--ternarize-last", o.q.ternarize_last, "ternarize the classifier too (default: 8-bit)");
  cli.add_flag("--no-gptq", o.no_gptq, "ternarize by weight error only (no GPTQ compensation)");
  cli.add_flag("--no-stats-correction", o.no_stats_correction,
               "skip the per-channel statistics correction");
  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return cli.exit(e) == 0 ? 0 : 1;  // --help is 0; every usage error is 1
  }
  o.q.stats_correction = !o.no_stats_correction;
  o.q.gptq = !o.no_gptq;
  if (o.calib_dir.empty()) o.calib_dir = default_calib_dir();

  tbb::global_control threads(tbb::global_control::max_allowed_parallelism, o.threads);
  try {
    return run(o);
  } catch (const fgq::Error& e) {
    std::fprintf(stderr, "fgq-run: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {  // e.g. std::bad_alloc: still one line, not an abort
    std::fprintf(stderr, "fgq-run: %s\n", e.what());
    return 2;
  }
}
