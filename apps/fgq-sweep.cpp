// fgq-sweep: many fgq-run evaluations of one model in one process, for the paper tables.
// The model is loaded, the validation and calibration images decoded, and the FP32 reference
// statistics measured ONCE; then every configuration is quantized and evaluated, and its JSON
// report (the same as fgq-run --json writes) goes to OUT/NAME.json.
//   fgq-sweep --model resnet50 --imagenet DIR --configs FILE --out DIR [--plain-resize] ...
// FILE: one configuration per line, "NAME [fgq-run quantization options]"; '#' starts a comment.
//   fp32
//   n4_a8_exact --quant fgq --group 4 --act-bits 8 --threshold exact
// A configuration whose report already exists is skipped, so a stopped sweep resumes.
//
// On a cluster (scripts/cluster/): one configuration per job-array task, or one shard of one.
//   --config-index K        only configuration K (0-based, in FILE's order); auto: K = the task
//                           id (SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX)
//   --shard i/n | auto      only shard i of n of the images (as fgq-run --shard); the report goes
//   [--shard-count S]       to OUT/shards/NAME/shard-i-of-n.json. With --config-index auto and
//                           --shard auto, task t runs configuration t / S, shard t % S
//                           (array 0..C*S-1; S from --shard-count or FGQ_SHARD_COUNT)
//   --merge                 afterwards: OUT/shards/NAME/ *.json -> OUT/NAME.json (fgq-merge's
//                           checks: every shard there once, all of one run)
//   --list                  the configuration names, one a line (C = the line count)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <tbb/global_control.h>
#include <tbb/parallel_for.h>

#include "graph/error.h"
#include "graph/prepare.h"
#include "model_registry.h"
#include "run_setup.h"
#include "runtime/dataset.h"
#include "runtime/executor.h"
#include "runtime/quantize_runner.h"
#include "runtime/report.h"
#include "runtime/report_merge.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct Config {
  std::string name, line;
  fgq::app::QuantFlags qf;
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Parses FILE; every line's options go through fgq-run's own quantization flags.
std::vector<Config> read_configs(const std::string& path, const fgq::app::QuantFlags& shared) {
  std::ifstream in(path);
  if (!in) fgq::fail(path, "cannot open the configuration list");
  std::vector<Config> configs;
  std::string line;
  for (int lineno = 1; std::getline(in, line); ++lineno) {
    line = line.substr(0, line.find('#'));
    std::istringstream words(line);
    std::vector<std::string> args;
    for (std::string w; words >> w;) args.push_back(w);
    if (args.empty()) continue;
    const std::string where = path + ":" + std::to_string(lineno);
    Config c;
    c.name = args[0];
    for (const std::string& w : args) c.line += (c.line.empty() ? "" : " ") + w;
    if (c.name.find('/') != std::string::npos || c.name[0] == '-')
      fgq::fail(where, "configuration name '" + c.name + "' must be a plain file name");
    for (const Config& o : configs)
      if (o.name == c.name) fgq::fail(where, "configuration '" + c.name + "' appears twice");
    CLI::App cli{"configuration"};
    fgq::app::add_quant_options(cli, c.qf);
    std::vector<std::string> rest(args.rbegin(), args.rend() - 1);  // CLI11 parses from the back
    try {
      cli.parse(rest);
    } catch (const CLI::ParseError& e) {
      fgq::fail(where, e.what());
    }
    // What the shared FP32 reference depends on is the sweep's, not a configuration's.
    for (const char* shared_flag : {"--calib", "--calib-count", "--gptq-samples"})
      if (cli.count(shared_flag))
        fgq::fail(where, std::string(shared_flag) + " is shared by the sweep: give --calib and "
                         "--calib-count on the fgq-sweep command line");
    c.qf.calib_dir = shared.calib_dir;
    c.qf.calib_count = shared.calib_count;
    fgq::app::finish_quant_flags(c.qf);
    configs.push_back(std::move(c));
  }
  if (configs.empty()) fgq::fail(path, "no configurations");
  return configs;
}

// The selected images decoded once: the readable ones packed densely, in order.
struct DecodedImages {
  std::vector<size_t> index;  // into the image list, per packed image
  std::vector<std::string> unreadable;
  std::vector<float> pixels;
};

DecodedImages decode_all(const std::vector<fgq::LabeledImage>& images, const fgq::Preprocess& pre) {
  const size_t per_image = size_t(3) * pre.input_size * pre.input_size;
  std::vector<float> all(per_image * images.size());
  std::vector<std::string> errors(images.size());
  tbb::parallel_for(size_t(0), images.size(), [&](size_t i) {
    try {
      fgq::load_image(images[i].path, pre, all.data() + i * per_image);
    } catch (const fgq::Error& e) {
      errors[i] = e.what();
    }
  });
  DecodedImages d;
  for (size_t i = 0; i < images.size(); ++i) {
    if (!errors[i].empty()) {
      std::fprintf(stderr, "fgq-sweep: warning: %s, skipped\n", errors[i].c_str());
      d.unreadable.push_back(images[i].name);
      continue;
    }
    if (d.index.size() != i)
      std::copy_n(all.data() + i * per_image, per_image, all.data() + d.index.size() * per_image);
    d.index.push_back(i);
  }
  all.resize(d.index.size() * per_image);
  d.pixels = std::move(all);
  return d;
}

fgq::Accuracy evaluate(fgq::Executor& exec, const DecodedImages& d,
                       const std::vector<fgq::LabeledImage>& images, size_t per_image) {
  fgq::Accuracy acc;
  const fgq::Graph& eg = exec.graph();
  const bool probabilities = !eg.nodes.empty() && eg.nodes.back().op == "Softmax";
  const int classes = static_cast<int>(fgq::numel(exec.output_shape(0, 1)));
  for (size_t first = 0; first < d.index.size(); first += exec.max_batch()) {
    const int n = static_cast<int>(std::min<size_t>(exec.max_batch(), d.index.size() - first));
    exec.run(d.pixels.data() + first * per_image, n);
    for (int k = 0; k < n; ++k) {
      const fgq::LabeledImage& img = images[d.index[first + k]];
      acc.add(fgq::score_image(img.name, img.label, exec.output(0) + size_t(k) * classes, classes,
                               probabilities));
    }
  }
  for (const std::string& name : d.unreadable) acc.add_skipped(name);
  return acc;
}

struct SweepOptions {
  std::string model, imagenet, labels, synsets, configs, out;
  std::string config_index, shard, shard_count;  // one configuration and/or one shard
  bool list = false, merge = false;
  int limit = 0, batch = 16, threads = 0;
  fgq::app::PreprocessFlags pf;
  fgq::app::QuantFlags shared;  // --calib, --calib-count
};

// What this process evaluates: some configurations, all images or one shard of them.
struct Selection {
  std::vector<const Config*> configs;
  std::string shard;  // "" (all images) or the resolved "i/n"
  fgq::Shard s;
};

// --config-index K: a configuration number of the list, read as what it is (no wrap).
size_t config_number(const std::string& text, const std::vector<Config>& configs, const std::string& file) {
  const std::string range = "0.." + std::to_string(configs.size() - 1);
  if (text.empty() || text.size() > 9 ||
      !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
      std::stoul(text) >= configs.size())
    fgq::fail("--config-index", "'" + text + "' must be auto or a configuration number " + range +
                                    " (" + std::to_string(configs.size()) + " in " + file + ")");
  return std::stoul(text);
}

Selection select_work(const SweepOptions& o, const std::vector<Config>& configs) {
  Selection sel;
  const size_t n_configs = configs.size();
  std::string how;  // where an auto choice came from
  size_t k = n_configs;  // all
  if (o.config_index == "auto" && o.shard == "auto") {
    // The 2-D layout: task t = configuration * S + shard.
    std::string count_source;
    const int shards = fgq::explicit_shard_count(o.shard_count, &count_source);
    if (shards == 0)
      fgq::fail("--config-index auto --shard auto", "give the shards per configuration, --shard-count S "
                "or FGQ_SHARD_COUNT=S (task t runs configuration t / S, shard t % S)");
    const fgq::ArrayTask t = fgq::array_task("--config-index auto");
    const long long tasks = static_cast<long long>(n_configs) * shards;
    if (t.id >= tasks)
      fgq::fail("--config-index auto", t.name + " is past the last task: " + std::to_string(n_configs) +
                " configurations x " + std::to_string(shards) + " shards (" + count_source +
                ") are tasks 0.." + std::to_string(tasks - 1));
    k = static_cast<size_t>(t.id / shards);
    sel.s = {static_cast<int>(t.id % shards), shards};
    sel.shard = fgq::shard_text(sel.s);
    how = t.name + ", " + count_source;
  } else {
    if (o.config_index == "auto") {
      const fgq::ArrayTask t = fgq::array_task("--config-index auto");
      if (t.id >= static_cast<long long>(n_configs))
        fgq::fail("--config-index auto", t.name + " is not a configuration: the task ids are the "
                  "configuration numbers 0.." + std::to_string(n_configs - 1) + " of " + o.configs);
      k = static_cast<size_t>(t.id);
      how = t.name;
    } else if (!o.config_index.empty()) {
      k = config_number(o.config_index, configs, o.configs);
    }
    if (!o.shard.empty()) {
      std::string shard_how;
      sel.s = fgq::resolve_shard(o.shard, o.shard_count, "--shard", &shard_how);
      sel.shard = fgq::shard_text(sel.s);
      if (!shard_how.empty()) how = shard_how;
    }
  }
  if (k < n_configs)
    sel.configs.push_back(&configs[k]);
  else
    for (const Config& c : configs) sel.configs.push_back(&c);
  if (k < n_configs || !sel.shard.empty())
    std::fprintf(stderr, "fgq-sweep: %s%s%s%s%s\n",
                 k < n_configs ? ("configuration " + std::to_string(k) + " (" + configs[k].name + ")").c_str()
                               : "all configurations",
                 sel.shard.empty() ? "" : ", shard ", sel.shard.c_str(), how.empty() ? "" : "; ",
                 how.c_str());
  return sel;
}

// OUT/NAME.json (what make_tables.py reads), or one shard's OUT/shards/NAME/shard-i-of-n.json.
fs::path report_path(const SweepOptions& o, const Config& c, const Selection& sel) {
  if (sel.shard.empty()) return fs::path(o.out) / (c.name + ".json");
  return fs::path(o.out) / "shards" / c.name /
         ("shard-" + std::to_string(sel.s.index) + "-of-" + std::to_string(sel.s.count) + ".json");
}

// --merge: every configuration's shard reports into OUT/NAME.json. Exit code 2 if any is
// incomplete or inconsistent (each named on its own line), 0 otherwise.
int merge(const SweepOptions& o) {
  const std::vector<Config> configs = read_configs(o.configs, o.shared);
  int failed = 0;
  for (const Config& c : configs) {
    const fs::path merged = fs::path(o.out) / (c.name + ".json"), dir = fs::path(o.out) / "shards" / c.name;
    if (fs::exists(merged)) {
      std::fprintf(stderr, "fgq-sweep: %s: report exists, kept\n", c.name.c_str());
      continue;
    }
    try {
      std::vector<std::string> files;
      if (fs::is_directory(dir))
        for (const auto& e : fs::directory_iterator(dir))
          if (e.path().extension() == ".json") files.push_back(e.path().string());
      if (files.empty()) fgq::fail(dir.string(), "no shard reports (and no " + merged.string() + ")");
      std::sort(files.begin(), files.end());
      std::vector<fgq::ShardReport> shards;
      for (const std::string& f : files) shards.push_back(fgq::read_shard_report(f));
      const fgq::MergedRun m = fgq::merge_shards(shards);
      fgq::write_json_atomic(merged.string(), fgq::report_json(m.info, m.acc));
      std::printf("%-28s %s  (%zu shards merged)\n", c.name.c_str(),
                  fgq::summary_line(m.acc, m.info.eval_seconds).c_str(), files.size());
      std::fflush(stdout);
    } catch (const fgq::Error& e) {
      std::fprintf(stderr, "fgq-sweep: %s: %s\n", c.name.c_str(), e.what());
      ++failed;
    }
  }
  return failed ? 2 : 0;
}

int run(const SweepOptions& o) {
  const auto t_start = std::chrono::steady_clock::now();
  const std::vector<Config> configs = read_configs(o.configs, o.shared);
  const Selection sel = select_work(o, configs);
  std::vector<const Config*> todo;
  for (const Config* c : sel.configs)
    if (fs::exists(fs::path(o.out) / (c->name + ".json")))  // done (or merged) already
      std::fprintf(stderr, "fgq-sweep: %s: report exists, kept\n", c->name.c_str());
    else if (!sel.shard.empty() && fs::exists(report_path(o, *c, sel)))
      std::fprintf(stderr, "fgq-sweep: %s shard %s: report exists, kept\n", c->name.c_str(), sel.shard.c_str());
    else
      todo.push_back(c);
  if (todo.empty()) return 0;
  fs::create_directories(o.out);

  const fgq::Dataset ds = fgq::discover_dataset(o.imagenet, {o.labels, o.synsets});
  std::vector<fgq::LabeledImage> images = ds.images;
  // --limit first, then --shard, as fgq-run: the shards of one limited run partition its images.
  if (o.limit > 0 && size_t(o.limit) < images.size()) images.resize(o.limit);
  if (!sel.shard.empty()) {
    std::vector<fgq::LabeledImage> part;
    for (size_t k = sel.s.index; k < images.size(); k += sel.s.count) part.push_back(std::move(images[k]));
    if (part.empty())
      std::fprintf(stderr, "fgq-sweep: warning: shard %s has no images (%zu images in %d shards)\n",
                   sel.shard.c_str(), images.size(), sel.s.count);
    images = std::move(part);
  }
  const std::string model_path = fgq::app::resolve_model(o.model);
  const fgq::Graph base = fgq::load_and_prepare(model_path, /*fuse=*/false);
  const fgq::Preprocess pre = fgq::app::model_preprocess(base, model_path, o.pf);
  const size_t per_image = size_t(3) * pre.input_size * pre.input_size;
  const DecodedImages decoded = decode_all(images, pre);

  const bool any_quant = std::any_of(todo.begin(), todo.end(), [](const Config* c) { return c->qf.enabled(); });
  int n_calib = 0;
  std::vector<float> calib;
  fgq::Fp32Reference reference;
  if (any_quant) {
    fgq::app::QuantFlags shared = o.shared;
    fgq::app::finish_quant_flags(shared);
    calib = fgq::app::load_calibration(shared, pre, n_calib);
    // GPTQ factors for the configurations' own --gptq-samples would differ: take the default.
    reference = fgq::fp32_reference(base, fgq::QuantOptions{}, calib.data(), n_calib);
  }
  const double setup_s = seconds_since(t_start);
  std::fprintf(stderr, "fgq-sweep: %s, %zu images (%zu unreadable), %d calibration images, "
                       "%zu configurations; setup %.1f s\n",
               model_path.c_str(), images.size(), decoded.unreadable.size(), n_calib, todo.size(), setup_s);

  for (const Config* c : todo) {
    fgq::Graph g = base;
    json quant_info;
    double quant_s = 0;
    if (c->qf.enabled()) {
      const auto t_q = std::chrono::steady_clock::now();
      const fgq::QuantReport r = fgq::quantize_graph(g, c->qf.q, calib.data(), n_calib, &reference);
      quant_s = seconds_since(t_q);
      quant_info = fgq::app::quant_json(r, c->qf, n_calib);
    }
    // Quantized configurations run where users run them: the integer pipeline (unless the
    // configuration says --simulate, or its scales are not folded: then the lowering leaves
    // those layers on float kernels and the report says so).
    const fgq::RunGraph run = fgq::make_run_graph(g, c->qf.mode());
    if (c->qf.enabled()) quant_info["pipeline"] = fgq::app::pipeline_json(run, c->qf.mode(), true);
    fgq::Executor exec(run.graph, o.batch);
    fgq::app::check_model_fits(exec, pre, images, model_path);
    const auto t_eval = std::chrono::steady_clock::now();
    const fgq::Accuracy acc = evaluate(exec, decoded, images, per_image);
    const double eval_s = seconds_since(t_eval);
    const std::string label = c->name + (sel.shard.empty() ? "" : " [" + sel.shard + "]");
    std::printf("%-28s %s  (quantize %.1f s)\n", label.c_str(), fgq::summary_line(acc, eval_s).c_str(),
                quant_s);
    std::fflush(stdout);

    fgq::RunInfo info;
    info.model_path = model_path;
    info.model_metadata = g.metadata;
    info.options = {{"tool", "fgq-sweep"},   {"config", c->line},     {"resize", o.pf.resize},
                    {"crop", pre.input_size}, {"plain_resize", o.pf.plain_resize},
                    {"limit", o.limit},        {"shard", sel.shard},   {"batch", o.batch},
                    {"threads", o.threads},
                    {"quant", c->qf.quant},    {"preprocess", fgq::app::preprocess_json(pre)}};
    info.dataset = {{"dir", ds.dir}, {"layout", ds.layout}, {"labels_file", ds.labels_file},
                    {"images_found", ds.images.size()}};
    info.quantization = quant_info;
    info.images_selected = static_cast<int64_t>(images.size());
    info.load_seconds = setup_s;  // shared by the whole sweep
    info.quantize_seconds = quant_s;
    info.eval_seconds = eval_s;
    const fs::path path = report_path(o, *c, sel);
    fs::create_directories(path.parent_path());
    fgq::write_json_atomic(path.string(), fgq::report_json(info, acc));
  }
  std::fprintf(stderr, "fgq-sweep: %zu configurations in %.1f s\n", todo.size(), seconds_since(t_start));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  SweepOptions o;
  o.threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  CLI::App cli{"fgq-sweep: evaluate many FGQ configurations of one model in one process"};
  cli.add_option("--model", o.model, "resnet50 | resnet101 | alexnet (models/NAME.onnx) or a path "
                 "(required unless --list or --merge)");
  cli.add_option("--imagenet", o.imagenet, "validation images (as fgq-run --imagenet; required unless "
                 "--list or --merge)");
  cli.add_option("--labels", o.labels, "labels file, 'NAME INDEX' per line (flat layout)");
  cli.add_option("--synsets", o.synsets, "synset_words.txt: line i = class i (ImageFolder layout)");
  cli.add_option("--configs", o.configs, "configuration list: 'NAME [fgq-run quantization options]' per line")
      ->required();
  cli.add_option("--out", o.out, "folder for the NAME.json reports (required unless --list)");
  cli.add_option("--config-index", o.config_index,
                 "K: only configuration K (0-based, in the list's order); auto: K = this Slurm "
                 "array task's or Kubernetes Indexed Job's id");
  CLI::Option* shard = cli.add_option("--shard", o.shard,
                 "i/n | auto: only shard i of n of the images (as fgq-run --shard); the report goes "
                 "to OUT/shards/NAME/shard-i-of-n.json. With --config-index auto too: task t runs "
                 "configuration t / S, shard t % S of S (--shard-count)");
  cli.add_option("--shard-count", o.shard_count,
                 "N: shards for --shard auto (default $FGQ_SHARD_COUNT; else a Slurm array's size)")
      ->type_name("N")
      ->needs(shard);
  CLI::Option* list = cli.add_flag("--list", o.list, "print the configuration names, one a line, and exit");
  cli.add_flag("--merge", o.merge, "merge each configuration's OUT/shards/NAME/*.json into OUT/NAME.json "
               "(missing, overlapping or inconsistent shards: exit code 2)")
      ->excludes(list)
      ->excludes(shard);
  fgq::app::add_preprocess_options(cli, o.pf);
  cli.add_option("--limit", o.limit, "evaluate only the first N images")->check(CLI::PositiveNumber);
  cli.add_option("--batch", o.batch, "images per inference batch")->check(CLI::Range(1, 1024));
  cli.add_option("--threads", o.threads, "worker threads (default: all cores)")->check(CLI::PositiveNumber);
  cli.add_option("--calib", o.shared.calib_dir,
                 "calibration images (default ${FGQ_DATA:-<repo>/../shared}/data/imagenet/calib)");
  cli.add_option("--calib-count", o.shared.calib_count, "calibration images used, evenly spread")
      ->check(CLI::PositiveNumber);
  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return cli.exit(e) == 0 ? 0 : 1;
  }
  const char* missing = o.list ? nullptr
                        : o.out.empty()                      ? "--out"
                        : o.merge                            ? nullptr
                        : o.model.empty()                    ? "--model"
                        : o.imagenet.empty()                 ? "--imagenet"
                                                             : nullptr;
  if (missing) {
    std::fprintf(stderr, "fgq-sweep: %s is required\n", missing);
    return 1;
  }
  tbb::global_control threads(tbb::global_control::max_allowed_parallelism, o.threads);
  try {
    if (o.list) {
      for (const Config& c : read_configs(o.configs, o.shared)) std::printf("%s\n", c.name.c_str());
      return 0;
    }
    if (o.merge) return merge(o);
    return run(o);
  } catch (const std::exception& e) {  // fgq::Error and std::bad_alloc alike: one line
    std::fprintf(stderr, "fgq-sweep: %s\n", e.what());
    return 2;
  }
}
