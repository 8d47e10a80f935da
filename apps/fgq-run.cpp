// fgq-run: ImageNet Top-1/Top-5 evaluation of an ONNX classifier, FP32 or FGQ-quantized.
//   fgq-run --model resnet50 --imagenet DIR [--plain-resize] [--limit N] [--json FILE] ...
//   fgq-run --model resnet50 --imagenet DIR --quant fgq --group 4 --act-bits 8 [--save-quant Q.onnx]
//   fgq-run --model Q.onnx --imagenet DIR      (a quantized model saved before: no calibration)
// Summary line on stdout; progress, warnings and errors on stderr.
// Exit codes: 0 done, 1 usage error, 2 bad input (missing folder/labels/model, bad model),
// 128+signal when stopped by SIGINT/SIGTERM (the partial result is still printed and written).
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <csignal>
#include <cstdio>
#include <string>
#include <thread>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <opencv2/core/utility.hpp>
#include <tbb/global_control.h>

#include "eval_pipeline.h"
#include "graph/error.h"
#include "graph/onnx_export.h"
#include "graph/onnx_export_qdq.h"
#include "graph/prepare.h"
#include "ops/cpu_features.h"
#include "model_registry.h"
#include "run_setup.h"
#include "runtime/dataset.h"
#include "runtime/executor.h"
#include "runtime/preprocess.h"
#include "runtime/progress.h"
#include "runtime/quantize_runner.h"
#include "runtime/report.h"

using nlohmann::json;

namespace {

struct Options {
  std::string model, imagenet, labels, synsets, json_path, shard, save_quant, export_qdq, dump_inputs;
  std::string qdq_form = "exact";
  int limit = 0, batch = 8, threads = 0;
  bool quiet = false;
  fgq::app::PreprocessFlags pf;
  fgq::app::QuantFlags qf;
};

// Where --save-quant records how the model was quantized (fgq-run reports it when it loads one).
const char* const kQuantMetadata = "fgq.quantization";

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

// --shard auto is resolved while the options are parsed (the --shard option's transform in
// main), so o.shard and the report hold the resolved "i/n"; a failure is kept here and reported
// by select_images like any other bad --shard (one line, exit code 2).
std::string g_shard_auto_error;

// --limit first, then --shard: the shards of one limited run partition the same images.
std::vector<fgq::LabeledImage> select_images(std::vector<fgq::LabeledImage> all, const Options& o) {
  if (o.limit > 0 && size_t(o.limit) < all.size()) all.resize(o.limit);
  if (!g_shard_auto_error.empty()) throw fgq::Error(g_shard_auto_error);
  if (o.shard.empty()) return all;
  const fgq::Shard shard = fgq::parse_shard(o.shard, "--shard");
  std::vector<fgq::LabeledImage> part;
  for (size_t k = shard.index; k < all.size(); k += shard.count) part.push_back(std::move(all[k]));
  // More shards than images is allowed (a fixed array size for any --limit): an empty report.
  if (part.empty())
    std::fprintf(stderr, "fgq-run: warning: shard %s has no images (%zu images in %d shards)\n",
                 o.shard.c_str(), all.size(), shard.count);
  return part;
}

json options_json(const Options& o, const fgq::Preprocess& pre) {
  return {{"resize", o.pf.resize},
          {"crop", pre.input_size},
          {"plain_resize", o.pf.plain_resize},
          {"limit", o.limit},
          {"shard", o.shard},
          {"batch", o.batch},
          {"threads", o.threads},
          {"quant", o.qf.quant},
          {"preprocess", fgq::app::preprocess_json(pre)}};
}

int run(const Options& o) {
  const auto t_load = std::chrono::steady_clock::now();
  // Where the results go, before any work: a typo in a folder must not cost the evaluation.
  fgq::app::check_output_path("--json", o.json_path);
  fgq::app::check_output_path("--save-quant", o.save_quant);
  fgq::app::check_output_path("--export-qdq", o.export_qdq);
  fgq::app::check_output_path("--dump-inputs", o.dump_inputs);
  if (!o.dump_inputs.empty()) fgq::app::check_output_path("--dump-inputs", o.dump_inputs + ".txt");
  // The dataset first: a wrong folder should not wait for a model load.
  fgq::Dataset ds = fgq::discover_dataset(o.imagenet, {o.labels, o.synsets});
  const std::vector<fgq::LabeledImage> images = select_images(ds.images, o);
  const std::string model_path = fgq::app::resolve_model(o.model);

  const bool quantize = o.qf.enabled();
  // Quantization needs the conv outputs before activation fusion (make_run_graph fuses).
  fgq::Graph g = fgq::load_and_prepare(model_path, /*fuse=*/false);
  const fgq::Preprocess pre = fgq::app::model_preprocess(g, model_path, o.pf);
  const double load_s = seconds_since(t_load);

  json quant_info;  // null unless quantized
  double quant_s = 0;
  if (auto saved = g.metadata.find(kQuantMetadata); saved != g.metadata.end()) {
    if (quantize) fgq::fail(model_path, "is already quantized (written by --save-quant): drop --quant");
    quant_info = json::parse(saved->second, nullptr, /*allow_exceptions=*/false);
  }
  const bool quantized = quantize || fgq::has_fake_quant(g) || fgq::has_integer_ops(g);
  // Options that need a quantized network, refused before quantization or evaluation starts.
  fgq::app::check_run_mode(o.qf, quantized);
  if (!o.export_qdq.empty() && !quantized)
    fgq::fail("--export-qdq", "needs a quantized model (--quant fgq, or a saved one)");
  // Every label a class of the network, also before the long work.
  fgq::app::check_labels(g, images);
  if (quantize) {
    const auto t_q = std::chrono::steady_clock::now();
    int n_calib = 0;
    const std::vector<float> calib = fgq::app::load_calibration(o.qf, pre, n_calib);
    const fgq::QuantReport r = fgq::quantize_graph(g, o.qf.q, calib.data(), n_calib);
    quant_s = seconds_since(t_q);
    quant_info = fgq::app::quant_json(r, o.qf, n_calib);
    // Not UTF-8 (e.g. a --calib folder name) must not throw away the quantization just done.
    g.metadata[kQuantMetadata] = quant_info.dump(-1, ' ', false, json::error_handler_t::replace);
    if (!o.quiet)
      std::fprintf(stderr, "fgq-run: FGQ N=%d, %d-bit activations, %d calibration images: "
                           "weight sparsity %.3f, %lld of %lld groups folded to level 0, %.1f s\n",
                   o.qf.q.group, o.qf.q.act_bits, n_calib, r.weight_sparsity,
                   static_cast<long long>(r.zero_levels), static_cast<long long>(r.nonzero_groups), quant_s);
  }
  const fgq::RunMode mode = o.qf.mode();
  fgq::RunGraph run = fgq::make_run_graph(g, mode);
  if (quantized && !quant_info.is_object()) quant_info = json::object();
  if (quantized) quant_info["pipeline"] = fgq::app::pipeline_json(run, mode, quantized);
  if (quantize && !o.save_quant.empty())  // the integer network, or the calibration graph
    fgq::export_onnx_file(run.integer ? fgq::make_run_graph(g, fgq::RunMode::Integer).graph : g, o.save_quant);
  if (!o.export_qdq.empty()) {
    fgq::export_qdq_onnx_file(fgq::make_run_graph(g, fgq::RunMode::Integer).graph, o.export_qdq,
                              o.qdq_form == "fusable" ? fgq::QdqForm::Fusable : fgq::QdqForm::Exact);
  }
  if (!o.quiet) std::fprintf(stderr, "fgq-run: %s\n", fgq::app::pipeline_line(run, mode, quantized).c_str());

  // Batch buffers (the executor's arena, the decode batches) for the images there are, not for
  // --batch 1024 when 3 images are evaluated.
  const int batch = static_cast<int>(std::clamp<size_t>(images.size(), 1, static_cast<size_t>(o.batch)));
  fgq::Executor exec(run.graph, batch);
  fgq::app::check_model_fits(exec, pre, images, model_path);
  const fgq::Graph& eg = exec.graph();
  const bool ends_in_softmax = !eg.nodes.empty() && eg.nodes.back().op == "Softmax";

  if (!o.quiet)
    std::fprintf(stderr, "fgq-run: %s, %zu images (%s, %s), batch %d, %d threads\n",
                 model_path.c_str(), images.size(), ds.layout.c_str(), ds.labels_file.c_str(),
                 batch, o.threads);

  fgq::Accuracy acc;
  fgq::Progress progress(static_cast<int64_t>(images.size()), isatty(STDERR_FILENO) != 0, o.quiet);
  install_stop_handlers();
  const auto t_eval = std::chrono::steady_clock::now();
  fgq::app::EvalSetup setup{&images, &pre, &exec, ends_in_softmax, 4, {}};
  // --dump-inputs: the preprocessed tensors exactly as fgq ran them (raw float32, image after
  // image) and a list "name label" per line, for another engine to run the same inputs.
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> dump(nullptr, std::fclose), dump_list(nullptr, std::fclose);
  if (!o.dump_inputs.empty()) {
    dump.reset(std::fopen(o.dump_inputs.c_str(), "wb"));
    dump_list.reset(std::fopen((o.dump_inputs + ".txt").c_str(), "w"));
    if (!dump || !dump_list) fgq::fail(o.dump_inputs, "cannot open for writing");
    const size_t floats = size_t(3) * pre.input_size * pre.input_size;
    setup.on_input = [&](const fgq::LabeledImage& img, const float* px) {
      if (std::fwrite(px, sizeof(float), floats, dump.get()) != floats)
        fgq::fail(o.dump_inputs, "write failed");
      std::fprintf(dump_list.get(), "%s %lld\n", img.name.c_str(), static_cast<long long>(img.label));
    };
  }
  const bool interrupted = fgq::app::evaluate(setup, g_stop, acc, progress);
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
  fgq::app::add_preprocess_options(cli, o.pf);
  cli.add_option("--limit", o.limit, "evaluate only the first N images")
      ->check(fgq::app::whole_number(1, INT_MAX));
  CLI::Option* shard_count = nullptr;  // read by --shard's transform, whatever the order
  CLI::Option* shard = cli.add_option("--shard", o.shard,
                 "i/n: evaluate images whose index % n == i (after --limit); fgq-merge combines "
                 "the shards' --json reports. auto: the shard of this Slurm array task or "
                 "Kubernetes Indexed Job (scripts/cluster/README.md)")
      ->transform([&](std::string text) {
        const std::string count = shard_count->count() ? shard_count->results().back() : "";
        if (text != "auto" && count.empty()) return text;  // i/n: checked by select_images
        try {
          std::string how;
          text = fgq::shard_text(fgq::resolve_shard(text, count, "--shard", &how));
          if (!how.empty() && !cli.count("--quiet"))
            std::fprintf(stderr, "fgq-run: --shard auto: %s (%s)\n", text.c_str(), how.c_str());
        } catch (const fgq::Error& e) {
          g_shard_auto_error = e.what();
        }
        return text;
      });
  shard_count = cli.add_option("--shard-count", "N: the number of shards for --shard auto (default "
                               "$FGQ_SHARD_COUNT; a Slurm array's own size otherwise). Then task id "
                               "i runs shard i/N. Kubernetes: spec.completions")
      ->type_name("N")
      ->needs(shard);
  cli.add_option("--batch", o.batch, "images per inference batch")
      ->check(fgq::app::whole_number(1, 1024));
  cli.add_option("--threads", o.threads, "worker threads (default: all cores)")
      ->check(fgq::app::whole_number(1, 1024));
  cli.add_option("--json", o.json_path, "write a JSON report (per-image results) to FILE");
  cli.add_flag("--quiet", o.quiet, "no progress or info lines (warnings and the summary remain)");
  fgq::app::add_quant_options(cli, o.qf);  // FGQ quantization at load time
  cli.add_option("--save-quant", o.save_quant,
                 "write the quantized model to FILE (ONNX with fgq-domain ops: the integer "
                 "pipeline's, or the FakeQuant calibration graph with --fake-quant); a later --model FILE runs it "
                 "without calibrating again");
  cli.add_option("--export-qdq", o.export_qdq,
                 "write the integer network as a standard ONNX QDQ model to FILE (for ONNX "
                 "Runtime: scripts/compare_ort.sh)");
  cli.add_option("--qdq-form", o.qdq_form,
                 "exact: the network fgq runs (ONNX Runtime keeps a residual block's last conv in "
                 "float) | fusable: requantize before each residual Add so ONNX Runtime fuses "
                 "everything (one more rounding per block; for speed comparisons)")
      ->check(CLI::IsMember({"exact", "fusable"}));
  cli.add_option("--dump-inputs", o.dump_inputs,
                 "write the preprocessed images as raw float32 to FILE and 'name label' lines to "
                 "FILE.txt, in evaluation order");
  std::string isa;
  cli.add_option("--isa", isa, "integer kernels: scalar | avx2 | avx512vnni (default: the best this "
                               "CPU runs, or $FGQ_ISA)")
      ->check(CLI::IsMember({"scalar", "avx2", "avx512vnni"}));
  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return cli.exit(e) == 0 ? 0 : 1;  // --help is 0; every usage error is 1
  }
  // Options that would do nothing are an error, not silently ignored.
  if (const std::string unused = fgq::app::unused_quant_options(cli, o.qf); !unused.empty()) {
    std::fprintf(stderr, "fgq-run: %s\n", unused.c_str());
    return 1;
  }
  fgq::app::finish_quant_flags(o.qf);
  tbb::global_control threads(tbb::global_control::max_allowed_parallelism, o.threads);
  // Images are decoded in parallel, one per task of the evaluation pipeline: OpenCV's own
  // parallel loops inside a decode or resize would only compete with the network's tasks.
  cv::setNumThreads(1);
  try {
    if (!isa.empty()) fgq::ops::set_forced_isa(isa);
    return run(o);
  } catch (const fgq::Error& e) {
    std::fprintf(stderr, "fgq-run: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {  // e.g. std::bad_alloc: still one line, not an abort
    std::fprintf(stderr, "fgq-run: %s\n", e.what());
    return 2;
  }
}
