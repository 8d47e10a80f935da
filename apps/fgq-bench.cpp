// fgq-bench: fgq's integer pipeline against its FP32 engine and OpenCV DNN on the same ONNX
// file, in one process, whole network and per layer, in % of this machine's measured peak.
//   fgq-bench [--model resnet50] [--batch 1,8] [--threads 2] [--reps 10] [--json FILE]
//   fgq-bench --quant fgq [--group 4] [--act-bits 8] [--fold-levels 127] [--isa avx2]
//             [--simulate] [--no-layers | --layers] [--top 10] [--timeline]
//
// Engines: fgq-fp32 (fgq::Model as loaded), fgq-int (--quant fgq: the model FGQ-quantized on
// the calibration images, running the integer pipeline), fgq-sim (--simulate: the same integer
// graph on the FP32 kernels, integer-exact), opencv-fp32 (readNetFromONNX, DNN_BACKEND_OPENCV,
// DNN_TARGET_CPU). A model saved by fgq-run --save-quant is itself the fgq-int engine (OpenCV
// cannot run it); scripts/bench_vs_ort.sh times it that way next to ONNX Runtime. All get the same thread count (tbb::global_control for fgq,
// cv::setNumThreads for OpenCV) and the same input tensor. For every batch size each engine is
// warmed up, then the engines run alternately (the order flips every repetition), so a noisy
// machine slows them alike; the tables report medians.
//
// Peak: the int8 dot-product loop of the integer kernels' path (avx512vnni: vpdpbusd zmm, avx2:
// vpmaddubsw ymm, scalar: none) and the FP32 FMA loop run on --threads threads at once
// (ops/cpu_peak.h), at the start and again before every table; a table uses the best rate
// measured up to it (others' processes on a shared machine only ever lower a measurement).
// "% of peak" is the time the MACs would take at those rates (int8 MACs at the int8 peak, float
// MACs at the FP32 peak) over the measured time.
// MACs are the network's own (batch * OH * OW * K * C/group * KH * KW per conv, M*N*K per
// fully-connected layer), not what the kernels compute with padding.
//
// Per layer (--layers; by default for batches 1 and 8): fgq-fp32 and fgq-int run again through
// an Executor with an observer that only takes a timestamp after each node, repetitions
// interleaved between the two; a node's time is the median over the repetitions of the time
// since the previous node finished (the first node's includes copying the input in).
//
// Threads (--timeline): fgq-int runs --reps more times per batch size with qconv_run's
// measurement hook, and a table splits the threads' time inside the integer convolutions into
// computing, waiting before a thread's first task, idle after its last one and between tasks
// (apps/bench_timeline.h), for the whole run and per layer (--top N: the N losing the most).
//
// Exit codes: 0 done, 1 usage error, 2 bad input (model, images), an --isa this CPU cannot run,
// or an engine failure (when only the integer pipeline cannot take the model, the other engines
// are still measured and reported first).
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
#include <limits>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/core/utility.hpp>
#include <opencv2/dnn.hpp>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "fgq/fgq.h"
#include "graph/onnx_export.h"
#include "graph/prepare.h"
#include "graph/shape_inference.h"
#include "bench_costs.h"
#include "bench_timeline.h"
#include "bench_peaks.h"
#include "bench_stats.h"
#include "model_registry.h"
#include "ops/cpu_features.h"
#include "ops/cpu_peak.h"
#include "runtime/dataset.h"
#include "runtime/executor.h"
#include "runtime/op_registry.h"
#include "runtime/quantize_runner.h"
#include "runtime/run_graph.h"

namespace fs = std::filesystem;
using namespace fgq::bench;
using fgq::numel;
using fgq::Shape;
using nlohmann::json;

namespace {

struct Options {
  std::string model = "resnet50", json_path, images_dir, calib_dir, isa;
  std::vector<int> batches{1, 8};
  int threads = 2, reps = 10, warmup = 2, calib_count = 8, top = 0;
  bool no_opencv = false, no_fp32 = false, simulate = false;
  bool layers_all = false, no_layers = false, timeline = false;
  std::vector<int> layer_batches{1, 8};
  double peak_seconds = 0.05;
  std::string quant = "none";
  fgq::QuantOptions q;
};

double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
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

// Images whose arg-max class is the same in a and b (batch rows of `classes` logits).
int top1_agreement(const std::vector<float>& a, const std::vector<float>& b, int classes) {
  int same = 0;
  for (size_t r = 0; r + classes <= a.size() && r + classes <= b.size(); r += classes)
    same += std::max_element(a.begin() + r, a.begin() + r + classes) - a.begin() ==
            std::max_element(b.begin() + r, b.begin() + r + classes) - b.begin();
  return same;
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
std::string fmt_mb(size_t bytes) { return fmt::format("{:.2f} MB", bytes / 1e6); }
std::string fmt_rate(double g, const char* unit) {
  return std::isfinite(g) ? fmt::format("{:.1f} {}", g, unit) : "n/a";
}
std::string fmt_pct(double p) { return std::isfinite(p) ? fmt::format("{:.1f}%", p) : "-"; }
// JSON has no NaN: a figure that does not exist (no peak on this path) is null.
json num_or_null(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

// ---- Engines -------------------------------------------------------------------------------

// One engine under test: runs a batch of preprocessed images, returns the first output
// (batch x classes; copying it costs nothing next to the inference).
struct Engine {
  using RunFn = std::function<std::vector<float>(const float* input, int batch)>;
  Engine(std::string n, RunFn r, MacTotals m) : name(std::move(n)), run(std::move(r)), macs(m) {}
  std::string name;  // fgq-fp32 | fgq-int | fgq-sim | opencv-fp32
  RunFn run;
  MacTotals macs;                        // per image
  // fgq engines: Model::weight_bytes() (grows as kernels pack weights) and
  // Session::activation_bytes(), or the same counts of an ExecNet.
  std::function<size_t()> weight_bytes, activation_bytes;
  std::map<std::string, size_t> consts;  // constant bytes by type (fgq engines)
  std::vector<double> wall_ms, cpu_ms;   // per repetition, for the current batch size
};

// An Executor on a run graph (fgq-sim, and the per-layer profiles) with its own packed weights.
struct ExecNet {
  std::shared_ptr<fgq::rt::KernelCache> cache = std::make_shared<fgq::rt::KernelCache>();
  std::unique_ptr<fgq::Executor> exec;
  ExecNet(const fgq::Graph& g, int max_batch) : exec(std::make_unique<fgq::Executor>(g, max_batch, cache)) {}
  std::vector<float> run(const float* x, int batch) {
    exec->run(x, batch);
    const float* out = exec->output(0);
    return std::vector<float>(out, out + numel(exec->output_shape(0, batch)));
  }
  // As Model::weight_bytes() and Session::activation_bytes() count them.
  size_t weight_bytes() const {
    size_t b = cache->bytes();
    for (const auto& [type, bytes] : const_bytes(exec->graph())) b += bytes;
    return b;
  }
  size_t activation_bytes() const { return exec->arena_bytes() + exec->scratch_bytes(); }
};

// The per-layer profile of one engine: its graph on an Executor whose observer stamps the time.
struct Profile {
  std::string engine;
  std::unique_ptr<ExecNet> net;
  std::vector<NodeCost> costs;
  std::vector<int64_t> stamps;
  std::vector<std::vector<double>> node_ms;  // [node][repetition]
  std::vector<double> total_ms;              // per repetition

  Profile(std::string name, const fgq::Graph& g, int max_batch)
      : engine(std::move(name)), net(std::make_unique<ExecNet>(g, max_batch)) {
    costs = node_costs(net->exec->graph());
    stamps.assign(costs.size(), 0);
    net->exec->set_observer([this](const fgq::Node&, int i, float*, const Shape&) { stamps[size_t(i)] = now_ns(); });
  }
  void clear() {
    node_ms.assign(costs.size(), {});
    total_ms.clear();
  }
  void timed_run(const float* x, int batch) {
    const int64_t t0 = now_ns();
    net->exec->run(x, batch);
    for (size_t i = 0; i < stamps.size(); ++i)
      node_ms[i].push_back((stamps[i] - (i ? stamps[i - 1] : t0)) * 1e-6);
    total_ms.push_back((stamps.empty() ? 0 : stamps.back() - t0) * 1e-6);
  }
};

// Prints the per-layer table of one profile (after its repetitions) and returns its JSON.
json report_profile(const Profile& p, const std::string& model_name, int batch, int threads,
                    const Peaks& peaks, double whole_network_ms, int top) {
  struct Row {
    size_t index;
    double ms, min_ms;
  };
  std::vector<Row> rows;
  double sum_ms = 0;
  for (size_t i = 0; i < p.costs.size(); ++i) {
    rows.push_back({i, median(p.node_ms[i]), *std::min_element(p.node_ms[i].begin(), p.node_ms[i].end())});
    sum_ms += rows.back().ms;
  }
  const double total_ms = median(p.total_ms);
  MacTotals macs = mac_totals(p.costs);
  macs.int8 *= batch, macs.fp32 *= batch;
  const double total_gmacs = macs.all() * 1e-6 / total_ms;
  const double total_pct = peaks.percent(macs, total_ms * 1e-3);

  const std::string title = fmt::format("{}/{}/batch:{}/threads:{}", model_name, p.engine, batch, threads);
  const std::string rule(124, '-');
  std::printf("\nLayers of %s: median of %zu runs per node; %%peak: int8 MACs vs the int8 peak, "
              "float MACs vs the FP32 peak\n%s\n",
              title.c_str(), p.total_ms.size(), rule.c_str());
  std::printf("%4s  %-36s %-16s %-17s %10s %10s %8s %7s %7s\n", "#", "node", "op", "output", "MMAC",
              "ms", "GMAC/s", "%peak", "share");
  std::printf("%s\n", rule.c_str());

  json nodes = json::array();
  for (const Row& r : rows) {
    const NodeCost& c = p.costs[r.index];
    Shape shape = c.shape1;
    if (!shape.empty()) shape[0] = batch;
    const int64_t m = c.macs1 * batch;
    const double gmacs = m ? m * 1e-6 / r.ms : kNaN;
    const double pct = m ? 100 * gmacs / peaks.rate(c.kind) : kNaN;
    nodes.push_back({{"index", r.index},
                     {"name", c.name},
                     {"op", c.op},
                     {"label", c.label},
                     {"output_shape", shape},
                     {"macs", m},
                     {"kind", kind_name(c.kind)},
                     {"ms", r.ms},
                     {"min_ms", r.min_ms},
                     {"gmacs_per_second", num_or_null(gmacs)},
                     {"percent_of_peak", num_or_null(pct)},
                     {"share", sum_ms > 0 ? r.ms / sum_ms : 0}});
  }
  auto print_row = [&](const std::string& idx, const std::string& name, const std::string& op,
                       const std::string& shape, int64_t m, double ms, double pct) {
    const std::string n = name.size() > 36 ? name.substr(0, 33) + "..." : name;
    std::printf("%4s  %-36s %-16s %-17s %10s %10.3f %8s %7s %6.1f%%\n", idx.c_str(), n.c_str(),
                op.c_str(), shape.c_str(), m ? fmt::format("{:.1f}", m * 1e-6).c_str() : "-", ms,
                m ? fmt::format("{:.1f}", m * 1e-6 / ms).c_str() : "-", fmt_pct(pct).c_str(),
                sum_ms > 0 ? 100 * ms / sum_ms : 0.0);
  };
  // MAC layers one per row (in graph order, or the `top` slowest), the other ops summed per op.
  std::vector<Row> mac_rows;
  for (const Row& r : rows)
    if (p.costs[r.index].macs1) mac_rows.push_back(r);
  size_t shown = mac_rows.size();
  if (top > 0 && size_t(top) < mac_rows.size()) {
    std::stable_sort(mac_rows.begin(), mac_rows.end(), [](const Row& a, const Row& b) { return a.ms > b.ms; });
    shown = size_t(top);
  }
  for (size_t k = 0; k < shown; ++k) {
    const Row& r = mac_rows[k];
    const NodeCost& c = p.costs[r.index];
    Shape shape = c.shape1;
    if (!shape.empty()) shape[0] = batch;
    std::string s = fgq::shape_str(shape);
    s.erase(std::remove_if(s.begin(), s.end(), [](char ch) { return ch == '[' || ch == ']' || ch == ' '; }), s.end());
    std::replace(s.begin(), s.end(), ',', 'x');
    const int64_t m = c.macs1 * batch;
    print_row(std::to_string(r.index), c.name, c.label, s, m, r.ms, 100 * (m * 1e-6 / r.ms) / peaks.rate(c.kind));
  }
  if (shown < mac_rows.size()) {
    double ms = 0;
    MacTotals rest;
    for (size_t k = shown; k < mac_rows.size(); ++k) {
      const NodeCost& c = p.costs[mac_rows[k].index];
      ms += mac_rows[k].ms;
      (c.kind == Kind::Int8 ? rest.int8 : rest.fp32) += c.macs1 * batch;
    }
    print_row("", fmt::format("({} more MAC layers)", mac_rows.size() - shown), "", "", rest.all(), ms,
              peaks.percent(rest, ms * 1e-3));
  }
  json other = json::array();
  {
    std::map<std::string, std::pair<int, double>> by_op;  // op -> (count, ms)
    std::vector<std::string> order;
    for (const Row& r : rows) {
      const NodeCost& c = p.costs[r.index];
      if (c.macs1) continue;
      if (!by_op.count(c.op)) order.push_back(c.op);
      by_op[c.op].first++;
      by_op[c.op].second += r.ms;
    }
    for (const std::string& op : order) {
      const auto& [count, ms] = by_op[op];
      print_row("", fmt::format("({} x{})", op, count), "", "", 0, ms, kNaN);
      other.push_back({{"op", op}, {"count", count}, {"ms", ms}, {"share", sum_ms > 0 ? ms / sum_ms : 0}});
    }
  }
  std::printf("%s\n", rule.c_str());
  std::printf("%4s  %-36s %-16s %-17s %10.1f %10.3f %8.1f %7s %6.1f%%\n", "", "whole network (timed run)",
              fmt::format("{} nodes", p.costs.size()).c_str(), "", macs.all() * 1e-6, total_ms, total_gmacs,
              fmt_pct(total_pct).c_str(), 100.0);
  double sum_min_ms = 0;
  for (const Row& r : rows) sum_min_ms += r.min_ms;
  std::printf("      sum of node medians %.3f ms, of node minimums %.3f ms; whole-network engine (no "
              "observer) %.3f ms\n",
              sum_ms, sum_min_ms, whole_network_ms);
  std::fflush(stdout);
  return {{"name", title},
          {"engine", p.engine},
          {"batch", batch},
          {"threads", threads},
          {"repetitions", p.total_ms.size()},
          {"time_unit", "ms"},
          {"total_ms", total_ms},
          {"sum_node_ms", sum_ms},
          {"sum_node_min_ms", sum_min_ms},
          {"whole_network_ms", whole_network_ms},
          {"macs", macs.all()},
          {"int8_macs", macs.int8},
          {"fp32_macs", macs.fp32},
          {"gmacs_per_second", total_gmacs},
          {"percent_of_peak", num_or_null(total_pct)},
          {"peak_int8_gmacs_per_second", num_or_null(peaks.int8.rate())},
          {"peak_fp32_gmacs_per_second", num_or_null(peaks.fp32.rate())},
          {"samples_ms", p.total_ms},
          {"nodes", nodes},
          {"other_ops", other}};
}

// Every engine runs the batch `reps` times, alternating the order each repetition, so a noisy
// machine slows them alike.
void time_engines(std::vector<Engine>& engines, const float* input, int batch, int reps) {
  for (Engine& e : engines) e.wall_ms.clear(), e.cpu_ms.clear();
  for (int r = 0; r < reps; ++r)
    for (size_t k = 0; k < engines.size(); ++k) {
      Engine& e = engines[r % 2 ? engines.size() - 1 - k : k];
      const double c0 = cpu_seconds();
      const auto t0 = std::chrono::steady_clock::now();
      e.run(input, batch);
      const auto t1 = std::chrono::steady_clock::now();
      e.wall_ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
      e.cpu_ms.push_back((cpu_seconds() - c0) * 1e3);
    }
}

// The Google-Benchmark-style table of one batch size; appends its rows, returns the median wall
// time by engine.
std::map<std::string, double> print_table(const std::vector<Engine>& engines, const Peaks& peaks,
                                          const std::string& model_name, int batch, const Options& o,
                                          json& rows) {
  const std::string rule(136, '-');
  std::printf("%s\n%-48s %12s %12s %10s %16s %9s %7s %10s\n%s\n", rule.c_str(), "Benchmark", "Time",
              "CPU", "Iterations", "items_per_second", "GMAC/s", "%peak", "vs_opencv", rule.c_str());
  double opencv_ips = 0;
  for (const Engine& e : engines)
    if (e.name == "opencv-fp32") opencv_ips = batch * 1e3 / median(e.wall_ms);
  std::map<std::string, double> wall_of;
  for (const Engine& e : engines) {
    const double wall = median(e.wall_ms), cpu = median(e.cpu_ms);
    wall_of[e.name] = wall;
    const double ips = batch * 1e3 / wall;
    MacTotals macs = e.macs;
    macs.int8 *= batch, macs.fp32 *= batch;
    const double gmacs = macs.all() * 1e-6 / wall;
    const double pct = peaks.percent(macs, wall * 1e-3);
    const std::string name =
        fmt::format("{}/{}/batch:{}/threads:{}_median", model_name, e.name, batch, o.threads);
    const std::string ratio = opencv_ips > 0 ? fmt::format("{:.3f}x", ips / opencv_ips) : "-";
    std::printf("%-48s %12s %12s %10d %14.2f/s %9.1f %7s %10s\n", name.c_str(), fmt_ms(wall).c_str(),
                fmt_ms(cpu).c_str(), o.reps, ips, gmacs, fmt_pct(pct).c_str(), ratio.c_str());
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
                {"macs", macs.all()},
                {"int8_macs", macs.int8},
                {"fp32_macs", macs.fp32},
                {"gmacs_per_second", gmacs},
                {"percent_of_peak", num_or_null(pct)},
                {"peak_int8_gmacs_per_second", num_or_null(peaks.int8.rate())},
                {"peak_fp32_gmacs_per_second", num_or_null(peaks.fp32.rate())},
                {"samples_ms", e.wall_ms}};
    if (opencv_ips > 0) row["ratio_vs_opencv"] = ips / opencv_ips;
    rows.push_back(std::move(row));
  }
  std::printf("%s\n", rule.c_str());
  std::fflush(stdout);
  return wall_of;
}

// Resident memory after the runs: weights as the model keeps them for its sessions (constants
// + packed kernel weights), activations as a session plans them for the largest batch.
json report_memory(const std::vector<Engine>& engines, int max_batch) {
  std::printf("Memory (weights: constants + kernel-packed, shared by sessions; activations: "
              "arena + scratch for batch %d)\n",
              max_batch);
  json memory = json::object();
  for (const Engine& e : engines) {
    if (!e.weight_bytes) continue;
    size_t consts = 0;
    std::string parts;
    for (const auto& [type, bytes] : e.consts) {
      consts += bytes;
      if (type != "unreferenced") parts += fmt::format("{}{} {}", parts.empty() ? "" : ", ", type, fmt_mb(bytes));
    }
    const size_t packed = e.weight_bytes() > consts ? e.weight_bytes() - consts : 0;
    const size_t unreferenced = e.consts.count("unreferenced") ? e.consts.at("unreferenced") : 0;
    std::printf("  %-12s weights %10s   activations %10s\n  %-12s weights = constants (%s) + packed for "
                "the kernels %s%s\n",
                e.name.c_str(), fmt_mb(e.weight_bytes()).c_str(), fmt_mb(e.activation_bytes()).c_str(), "",
                parts.c_str(), fmt_mb(packed).c_str(),
                unreferenced ? (" + constants no node reads " + fmt_mb(unreferenced)).c_str() : "");
    memory[e.name] = {{"weight_bytes", e.weight_bytes()},
                      {"weight_const_bytes", e.consts},
                      {"weight_packed_bytes", packed},
                      {"activation_bytes", e.activation_bytes()},
                      {"activation_max_batch", max_batch}};
  }
  std::printf("\n");
  return memory;
}

// The peak once more; what the load did meanwhile.
const Peaks& report_final_peak(PeakTracker& tracker, int threads, bool& busy) {
  const Peaks& peaks = tracker.measure("end", true);
  std::printf("Peak, best measured in this run: int8 %s, fp32 %s (%zu measurements)\n",
              fmt_rate(peaks.int8.rate(), "GMAC/s").c_str(), fmt_rate(peaks.fp32.rate(), "GFMA/s").c_str(),
              tracker.history().size());
  busy = false;  // the threads together reach less than threads x one thread
  for (const Peak* p : {&peaks.int8, &peaks.fp32})
    if (p->all && p->all->total < 0.8 * threads * p->single->total) busy = true;
  if (busy)
    std::fprintf(stderr,
                 "fgq-bench: warning: the machine is busy: %d threads together never reached 80%% of %d "
                 "x the one-thread peak; %% of peak is relative to what was available\n",
                 threads, threads);
  for (const char* key : {"int8", "fp32"}) {
    double lo = 0, hi = 0;
    if (tracker.moved(key, lo, hi))
      std::fprintf(stderr,
                   "fgq-bench: warning: the %s peak measured between %.1f and %.1f in this run: the "
                   "machine's load changed, compare these numbers with care\n",
                   key, lo, hi);
  }
  return peaks;
}

// --timeline: `reps` runs of the integer engine with qconv_run's hook installed; prints where
// the threads' time went inside the convolutions and returns it as JSON.
json report_timeline(const Engine& e, const fgq::Graph& g, const float* input, int batch, int threads,
                     int reps, int top) {
  TimelineRecorder rec(threads);
  struct Installed {
    explicit Installed(fgq::ops::QConvTimeline* t) { fgq::ops::qconv_set_timeline(t); }
    ~Installed() { fgq::ops::qconv_set_timeline(nullptr); }
  };
  {
    const Installed hook(&rec);
    for (int r = 0; r < reps; ++r) {
      rec.begin_run();
      e.run(input, batch);
      rec.end_run();
    }
  }
  std::vector<std::string> names;
  for (const fgq::Node& n : g.nodes)
    if (n.op == "QConv") names.push_back(n.name);
  const TimelineSummary s = rec.summary(names);
  auto shares = [](const TimelineShares& x) {
    return fmt::format("{:9.1f}% {:9.1f}% {:9.1f}% {:9.1f}%", x.busy, x.start, x.end, x.gaps);
  };
  std::printf("Threads in the integer convolutions of %s, batch %d, %d threads (--timeline, "
              "%d runs; times are medians):\n  %.3f ms from the first convolution's start to the last one's end, "
              "%.3f ms of it inside the %zu convolutions\n",
              e.name.c_str(), batch, threads, s.runs, s.run_ms, s.layers_ms, s.layers.size());
  std::printf("  %-36s %9s %10s %10s %10s %10s\n", "share of threads x wall time", "wall us",
              "computing", "before 1st", "after last", "between");
  std::printf("  %-36s %9.1f %s\n", "all convolutions", s.layers_ms * 1e3, shares(s.share).c_str());
  // Every layer, or (--top N) the N losing the most thread time; in run order.
  std::vector<size_t> order(s.layers.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  if (top > 0 && size_t(top) < order.size()) {
    auto lost = [&](size_t i) { return s.layers[i].wall_us * (100 - s.layers[i].share.busy); };
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return lost(a) > lost(b); });
    order.resize(size_t(top));
    std::sort(order.begin(), order.end());
  }
  json layers = json::array();
  for (size_t i : order) {
    const TimelineLayer& l = s.layers[i];
    std::printf("  %-36s %9.1f %s\n", l.name.c_str(), l.wall_us, shares(l.share).c_str());
  }
  for (const TimelineLayer& l : s.layers)
    layers.push_back({{"name", l.name}, {"wall_us", l.wall_us}, {"computing_pct", l.share.busy},
                      {"before_first_task_pct", l.share.start}, {"after_last_task_pct", l.share.end},
                      {"between_tasks_pct", l.share.gaps}});
  if (rec.dropped())
    std::printf("  (%lld events of threads outside the engine's arena not counted)\n", (long long)rec.dropped());
  return {{"engine", e.name}, {"batch", batch}, {"threads", threads}, {"runs", s.runs},
          {"run_ms", s.run_ms}, {"convolutions_ms", s.layers_ms}, {"computing_pct", s.share.busy},
          {"before_first_task_pct", s.share.start}, {"after_last_task_pct", s.share.end},
          {"between_tasks_pct", s.share.gaps}, {"layers", layers}};
}

int run(const Options& o) {
  const std::string model_path = fgq::app::resolve_model(o.model);
  const std::string model_name = fs::path(model_path).stem().string();
  const int max_batch = *std::max_element(o.batches.begin(), o.batches.end());
  const fgq::ops::Isa isa = fgq::ops::active_isa();
  const bool quant = o.quant == "fgq";

  // Which batch sizes get a per-layer profile.
  std::set<int> layer_batches;
  if (!o.no_layers)
    for (int b : o.batches)
      if (o.layers_all || std::count(o.layer_batches.begin(), o.layer_batches.end(), b)) layer_batches.insert(b);
  const int profile_batch = layer_batches.empty() ? 1 : *layer_batches.rbegin();

  fgq::Model fp32_model = fgq::Model::load(model_path);
  const int side = fp32_model.input_size();
  auto fp32_session = std::make_unique<fgq::Session>(fp32_model, max_batch);
  const int classes = fp32_session->num_classes();

  std::string input_what;
  const std::string images_dir = o.images_dir.empty() ? shared_imagenet_dir("val") : o.images_dir;
  const std::vector<float> input =
      load_inputs(*fp32_session, side, max_batch, images_dir, input_what);

  // The graphs the engines run, for MAC counts and the per-layer profiles: what Model::load
  // makes of the file (prepared, not activation-fused; make_run_graph fuses).
  const fgq::Graph prepared = fgq::load_and_prepare(model_path, /*fuse=*/false);
  fgq::RunGraph fp32_run = fgq::make_run_graph(prepared);
  fgq::infer_shapes(fp32_run.graph, 1);
  const MacTotals fp32_macs = mac_totals(node_costs(fp32_run.graph));

  // A model saved by --save-quant runs as it was saved: the integer pipeline (or fake-quant).
  const bool saved_quantized = fp32_model.quantized();
  if (saved_quantized && quant)
    fgq::fail(model_path, "is quantized already (saved by --save-quant): drop --quant fgq");
  const std::string base_name = !saved_quantized ? "fgq-fp32" : fp32_model.integer() ? "fgq-int" : "fgq-fakequant";
  std::vector<Engine> engines;
  if (!o.no_fp32) {
    Engine e{base_name, [&](const float* x, int b) { return fp32_session->run(x, b * fp32_session->input_floats(), b); }, fp32_macs};
    e.weight_bytes = [&] { return fp32_model.weight_bytes(); };
    e.activation_bytes = [&] { return fp32_session->activation_bytes(); };
    e.consts = const_bytes(fp32_run.graph);
    engines.push_back(std::move(e));
  }

  // FGQ: the prepared graph quantized once (as Model::quantize does), then given to a Model (the
  // integer pipeline, through the public API) and to the per-layer profile as the same graph.
  std::unique_ptr<fgq::Model> q_model;
  std::unique_ptr<fgq::Session> q_session;
  std::unique_ptr<ExecNet> sim_net;
  fgq::RunGraph int_run;
  std::string int_error;  // why the integer engine could not be made
  json quant_info = nullptr;
  if (quant) {
    std::string calib_what;
    const std::string calib_dir = o.calib_dir.empty() ? shared_imagenet_dir("calib") : o.calib_dir;
    const std::vector<float> calib =
        load_inputs(*fp32_session, side, o.calib_count, calib_dir, calib_what);
    fgq::Graph quantized = prepared;
    fgq::QuantOptions qo = o.q;
    qo.simulate = false;
    const auto t0 = std::chrono::steady_clock::now();
    const fgq::QuantReport qr = fgq::quantize_graph(quantized, qo, calib.data(), o.calib_count);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    int ternary = 0, int8 = 0;
    for (const auto& l : qr.layers) ternary += l.kind == "ternary", int8 += l.kind == "int8";
    quant_info = {{"method", "fgq"},
                  {"group", o.q.group},
                  {"act_bits", o.q.act_bits},
                  {"fold_levels", o.q.fold_levels},
                  {"calibration", calib_what},
                  {"calib_images", o.calib_count},
                  {"quantize_seconds", secs},
                  {"ternary_layers", ternary},
                  {"int8_layers", int8},
                  {"weight_sparsity", qr.weight_sparsity},
                  {"mults_removed", qr.mults_removed},
                  {"zero_levels", qr.zero_levels},
                  {"nonzero_groups", qr.nonzero_groups},
                  {"weight_blocks", qr.zero_blocks.blocks},
                  {"zero_weight_blocks", qr.zero_blocks.zero},
                  {"isa", fgq::ops::isa_name(isa)}};
    // The integer pipeline is new: if it cannot take this model, say why and still report the
    // other engines (the exit code is then 2).
    try {
      const std::string bytes = fgq::export_onnx_bytes(quantized);
      q_model = std::make_unique<fgq::Model>(
          fgq::Model::load_from_memory(bytes.data(), bytes.size(), model_path + " (quantized)"));
      if (!q_model->integer()) fgq::fail(model_path, "the quantized model does not run the integer pipeline");
      q_session = std::make_unique<fgq::Session>(*q_model, max_batch);
      int_run = fgq::make_run_graph(quantized, fgq::RunMode::Integer);
      fgq::infer_shapes(int_run.graph, 1);
      std::fprintf(stderr,
                   "fgq-bench: FGQ N=%d, %d-bit activations, fold levels %d, calibrated on %s in "
                   "%.1f s: %d QConv (%d ternary) on %s kernels, %zu layers left float\n",
                   o.q.group, o.q.act_bits, o.q.fold_levels, calib_what.c_str(), secs,
                   int_run.lowering.qconv, int_run.lowering.qconv_ternary, fgq::ops::isa_name(isa),
                   int_run.lowering.float_layers.size());
      // Issue "what ternary buys": skipping all-zero weight vectors could save this fraction of
      // the ternary layers' dot products.
      std::fprintf(stderr, "fgq-bench: all-zero 16x4 weight blocks in the ternary layers: %lld of %lld\n",
                   static_cast<long long>(qr.zero_blocks.zero),
                   static_cast<long long>(qr.zero_blocks.blocks));
      quant_info["integer_layers"] = int_run.lowering.qconv;
      quant_info["integer_ternary_layers"] = int_run.lowering.qconv_ternary;
      quant_info["float_layers"] = int_run.lowering.float_layers;
      Engine e{"fgq-int", [&](const float* x, int b) { return q_session->run(x, b * q_session->input_floats(), b); },
               mac_totals(node_costs(int_run.graph))};
      e.weight_bytes = [&] { return q_model->weight_bytes(); };
      e.activation_bytes = [&] { return q_session->activation_bytes(); };
      e.consts = const_bytes(int_run.graph);
      engines.push_back(std::move(e));
      if (o.simulate) {
        fgq::RunGraph sim_run = fgq::make_run_graph(quantized, fgq::RunMode::Simulate);
        sim_net = std::make_unique<ExecNet>(sim_run.graph, max_batch);
        Engine s{"fgq-sim", [&](const float* x, int b) { return sim_net->run(x, b); },
                 mac_totals(node_costs(sim_net->exec->graph()))};
        s.weight_bytes = [&] { return sim_net->weight_bytes(); };
        s.activation_bytes = [&] { return sim_net->activation_bytes(); };
        s.consts = const_bytes(sim_net->exec->graph());
        engines.push_back(std::move(s));
      }
    } catch (const fgq::Error& e) {
      q_session.reset();
      q_model.reset();
      int_error = e.what();
      quant_info["error"] = int_error;
      std::fprintf(stderr, "fgq-bench: FGQ N=%d calibrated on %s in %.1f s, but no integer engine: %s\n",
                   o.q.group, calib_what.c_str(), secs, int_error.c_str());
    }
  }

  cv::dnn::Net net;
  if (!o.no_opencv && saved_quantized)
    std::fprintf(stderr, "fgq-bench: OpenCV DNN skipped: it cannot run fgq's quantized operators\n");
  if (!o.no_opencv && !saved_quantized) {
    try {
      net = cv::dnn::readNetFromONNX(model_path);
    } catch (const cv::Exception& e) {
      fgq::fail(model_path, std::string("OpenCV DNN cannot import it: ") + e.what());
    }
    net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
    net.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
    engines.emplace_back("opencv-fp32",
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
                       fp32_macs);
  }
  if (engines.empty()) fgq::fail("fgq-bench", "nothing to benchmark");

  // Per-layer profiles of fgq-fp32 and fgq-int, on Executors of their own.
  std::vector<std::unique_ptr<Profile>> profiles;
  if (!layer_batches.empty()) {
    if (!o.no_fp32) profiles.push_back(std::make_unique<Profile>(base_name, fp32_run.graph, profile_batch));
    if (q_session) profiles.push_back(std::make_unique<Profile>("fgq-int", int_run.graph, profile_batch));
  }

  std::fprintf(stderr, "fgq-bench: %s, threads %d, %s\n", model_path.c_str(), o.threads,
               input_what.c_str());

  // The machine's peak, now, with the benchmark's thread count.
  PeakTracker tracker(isa, o.threads, o.peak_seconds);
  {
    const Peaks& peaks = tracker.measure("start", true);
    std::printf("Peak, measured now on %d thread%s (integer kernels: %s); later tables use the best "
                "measured up to them:\n  %s\n  %s\n",
                o.threads, o.threads == 1 ? "" : "s", fgq::ops::isa_name(isa),
                peak_line("int8", peaks.int8, "GMAC/s").c_str(), peak_line("fp32", peaks.fp32, "GFMA/s").c_str());
    if (peaks.kernel16.all)
      std::printf("  (the avx2 qconv path multiplies int16 pairs: %s)\n",
                  peak_line("int16", peaks.kernel16, "GMAC/s").c_str());
  }

  // Google-Benchmark-style table: one row per engine and batch size.
  json rows = json::array();
  json agreement = json::object(), quant_error = json::object(), top1 = json::object();
  json layers = json::array(), timelines = json::array();
  for (const int batch : o.batches) {
    // Warm-up: first runs allocate and plan (OpenCV re-plans on a new input shape).
    std::vector<std::vector<float>> first(engines.size());
    for (size_t e = 0; e < engines.size(); ++e)
      for (int w = 0; w < std::max(1, o.warmup); ++w)
        first[e] = engines[e].run(input.data(), batch);
    // Sanity on the same input. Float engines against OpenCV; the simulation against the integer
    // pipeline (integer-exact up to float rounding at requantization ties). The integer pipeline
    // against FP32 is the quantization error, not a fault.
    auto index_of = [&](const std::string& name) -> int {
      for (size_t e = 0; e < engines.size(); ++e)
        if (engines[e].name == name) return int(e);
      return -1;
    };
    const int i_cv = index_of("opencv-fp32"), i_fp32 = index_of("fgq-fp32"), i_int = index_of("fgq-int"),
              i_sim = index_of("fgq-sim");
    auto compare = [&](int a, int b, json& into, const char* label) {
      if (a < 0 || b < 0) return;
      const double err = max_rel_error(first[a].data(), first[b].data(), first[a].size());
      into[fmt::format("{}_vs_{}/batch:{}", engines[a].name, engines[b].name, batch)] = err;
      std::fprintf(stderr, "fgq-bench: batch %d: %s vs %s max|a-b|/max|b| = %.3g%s\n", batch,
                   engines[a].name.c_str(), engines[b].name.c_str(), err, label);
    };
    compare(i_fp32, i_cv, agreement, "");
    compare(i_sim, i_int, agreement, " (simulation vs integer pipeline)");
    const int i_ref = i_fp32 >= 0 ? i_fp32 : i_cv;
    compare(i_int, i_ref, quant_error, " (quantization error, not a fault)");
    if (i_int >= 0 && i_ref >= 0) {
      const int same = top1_agreement(first[i_int], first[i_ref], classes);
      top1[fmt::format("{}_vs_{}/batch:{}", engines[i_int].name, engines[i_ref].name, batch)] =
          double(same) / batch;
      std::fprintf(stderr, "fgq-bench: batch %d: %s and %s agree on the top-1 class of %d of %d images\n",
                   batch, engines[i_int].name.c_str(), engines[i_ref].name.c_str(), same, batch);
    }

    time_engines(engines, input.data(), batch, o.reps);
    const Peaks peaks = tracker.measure(fmt::format("batch {}", batch), false);
    const std::map<std::string, double> wall_of = print_table(engines, peaks, model_name, batch, o, rows);
    if (o.timeline && i_int >= 0) {
      std::printf("\n");
      timelines.push_back(report_timeline(engines[size_t(i_int)], saved_quantized ? fp32_run.graph : int_run.graph,
                                          input.data(), batch, o.threads, o.reps, o.top));
    }

    // Per-layer profiles of this batch size, the two engines interleaved like above.
    if (layer_batches.count(batch) && !profiles.empty()) {
      for (auto& p : profiles) {
        for (int w = 0; w < std::max(1, o.warmup); ++w) p->net->exec->run(input.data(), batch);
        // The profile's executor runs the engine's graph: same logits (a check on the setup).
        const int i = index_of(p->engine);
        const std::vector<float> out = p->net->run(input.data(), batch);
        if (i >= 0)
          agreement[fmt::format("{}-layers_vs_{}/batch:{}", p->engine, p->engine, batch)] =
              max_rel_error(out.data(), first[i].data(), out.size());
        p->clear();
      }
      for (int r = 0; r < o.reps; ++r)
        for (size_t k = 0; k < profiles.size(); ++k)
          profiles[r % 2 ? profiles.size() - 1 - k : k]->timed_run(input.data(), batch);
      const Peaks& now = tracker.measure(fmt::format("batch {} layers", batch), false);
      for (const auto& p : profiles)
        layers.push_back(report_profile(*p, model_name, batch, o.threads, now, wall_of.at(p->engine), o.top));
    }
    std::printf("\n");
  }

  const json memory = report_memory(engines, max_batch);

  bool busy = false;
  const Peaks& peaks = report_final_peak(tracker, o.threads, busy);

  if (!o.json_path.empty()) {
    json doc = {{"context",
                 {{"executable", "fgq-bench"},
                  {"model", model_path},
                  {"threads", o.threads},
                  {"warmup", o.warmup},
                  {"input", input_what},
                  {"opencv_version", CV_VERSION},
                  {"isa", fgq::ops::isa_name(isa)},
                  {"machine_busy", busy},
                  {"peak",
                   {{"int8", peak_json(peaks.int8)},
                    {"fp32", peak_json(peaks.fp32)},
                    {"int16_avx2_kernel", peak_json(peaks.kernel16)},
                    {"history", tracker.history()}}},
                  {"memory", memory},
                  {"quantization", quant_info},
                  {"max_rel_error", agreement},
                  {"quantization_error", quant_error},
                  {"top1_agreement", top1}}},
                {"benchmarks", rows},
                {"layers", layers},
                {"timeline", timelines}};
    std::ofstream out(o.json_path);
    out << doc.dump(2) << "\n";
    if (!out) fgq::fail(o.json_path, "cannot write the JSON report");
  }
  if (!int_error.empty()) {
    std::fprintf(stderr, "fgq-bench: fgq-int failed: %s\n", int_error.c_str());
    return 2;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App cli{"fgq-bench: fgq's integer pipeline vs its FP32 engine vs OpenCV DNN, whole network "
               "and per layer, in % of the machine's measured peak"};
  cli.add_option("--model", o.model, "resnet50 | resnet101 | alexnet (models/NAME.onnx) or a path; a model saved by fgq-run --save-quant runs as the fgq-int engine")
      ->capture_default_str();
  cli.add_option("--batch", o.batches, "batch sizes, comma separated")
      ->capture_default_str()
      ->delimiter(',')
      ->check(CLI::Range(1, 1024));
  cli.add_option("--threads", o.threads, "threads for fgq (TBB), OpenCV (cv::setNumThreads) and the peak")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  cli.add_option("--reps", o.reps, "timed repetitions per engine and batch size (and per layer)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cli.add_option("--warmup", o.warmup, "untimed runs per engine and batch size first")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cli.add_option("--images", o.images_dir,
                 "images to feed (default ${FGQ_DATA:-<repo>/../shared}/data/imagenet/val; "
                 "random inputs if missing)");
  cli.add_option("--json", o.json_path, "write the results as JSON (Google Benchmark layout + layers)");
  cli.add_flag("--no-opencv", o.no_opencv, "skip OpenCV DNN");
  cli.add_flag("--no-fp32", o.no_fp32, "skip the fgq engine of --model as loaded (FP32, or fgq-int for a saved quantized model)");
  cli.add_option("--quant", o.quant, "none | fgq: also benchmark the FGQ integer pipeline (fgq-int)")
      ->capture_default_str()
      ->check(CLI::IsMember({"none", "fgq"}));
  cli.add_option("--isa", o.isa, "integer kernels: scalar | avx2 | avx512vnni (default: the best this "
                                 "CPU runs, or $FGQ_ISA)")
      ->check(CLI::IsMember({"scalar", "avx2", "avx512vnni"}));
  cli.add_flag("--simulate", o.simulate,
               "with --quant fgq: add fgq-sim, the integer graph on the FP32 kernels (integer-exact)");
  cli.add_option("--group", o.q.group, "FGQ group size N")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cli.add_option("--act-bits", o.q.act_bits, "activation bits: 8 | 4")
      ->capture_default_str()
      ->check(CLI::IsMember({4, 8}));
  cli.add_option("--fold-levels", o.q.fold_levels,
                 "int8 levels each ternary layer's group scales fold into (1..127; 0 keeps float "
                 "scales: those layers stay on float kernels)")
      ->capture_default_str()
      ->check(CLI::Range(0, 127));
  cli.add_option("--calib", o.calib_dir,
                 "calibration images (default ${FGQ_DATA:-<repo>/../shared}/data/imagenet/calib; "
                 "random inputs if missing)");
  cli.add_option("--calib-count", o.calib_count, "calibration images to use")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  auto* layers = cli.add_flag("--layers", o.layers_all,
                              "per-layer profile of fgq-fp32 and fgq-int for every --batch size "
                              "(default: for those in --layer-batches)");
  cli.add_flag("--no-layers", o.no_layers, "no per-layer profile")->excludes(layers);
  cli.add_option("--layer-batches", o.layer_batches, "batch sizes profiled per layer by default")
      ->capture_default_str()
      ->delimiter(',')
      ->check(CLI::Range(1, 1024));
  cli.add_flag("--timeline", o.timeline,
               "fgq-int only: where the threads' time goes inside the integer convolutions (--reps more runs)");
  cli.add_option("--top", o.top, "per-layer tables: only the N slowest MAC layers (--timeline: the N losing the most thread time; 0: all, in graph order)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cli.add_option("--peak-seconds", o.peak_seconds, "length of each peak-measurement trial")
      ->capture_default_str()
      ->check(CLI::Range(0.001, 10.0));
  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return cli.exit(e) == 0 ? 0 : 1;
  }
  if (o.batches.empty()) o.batches = {1, 8};

  tbb::global_control threads(tbb::global_control::max_allowed_parallelism, o.threads);
  cv::setNumThreads(o.threads);
  try {
    // Before anything is compiled: kernels pick their path when a session is made.
    if (!o.isa.empty()) fgq::ops::set_forced_isa(o.isa);
    return run(o);
  } catch (const std::exception& e) {  // fgq::Error, cv::Exception, std::bad_alloc: one line
    std::string msg = e.what();
    while (!msg.empty() && msg.back() == '\n') msg.pop_back();
    std::replace(msg.begin(), msg.end(), '\n', ' ');  // OpenCV's messages span lines
    std::fprintf(stderr, "fgq-bench: %s\n", msg.c_str());
    return 2;
  }
}
