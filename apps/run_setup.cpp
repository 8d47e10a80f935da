#include "run_setup.h"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include <tbb/parallel_for.h>

#include "graph/error.h"
#include "model_registry.h"
#include "ops/cpu_features.h"
#include "runtime/report.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace fgq::app {

namespace {
// The largest group size quantize_graph accepts (quant/quantize.cpp, validate()): checked here
// too so that a bad --group fails before the calibration images are loaded.
constexpr int kMaxGroup = 1 << 16;
}  // namespace

CLI::Validator whole_number(int64_t lo, int64_t hi) {
  const std::string range = std::to_string(lo) + " to " + std::to_string(hi);
  return CLI::Validator(
      [lo, hi, range](std::string& text) -> std::string {
        int64_t v = 0;
        const char* b = text.data();
        const char* e = b + text.size();
        const bool digits = !text.empty() && text.find_first_not_of("0123456789") == std::string::npos;
        const auto [end, ec] = std::from_chars(b, e, v);
        if (!digits || ec != std::errc() || end != e || v < lo || v > hi)
          return "must be a whole number from " + range + ", got '" + text + "'";
        return "";
      },
      "INT in " + range);
}

void add_preprocess_options(CLI::App& cli, PreprocessFlags& f) {
  // Bounded: every decoded image is resized to about resize^2 pixels before the crop.
  cli.add_option("--resize", f.resize, "resize the shorter side to N, then centre-crop")
      ->check(whole_number(1, kMaxImageSide));
  cli.add_option("--crop", f.crop, "crop size (default: the model's input size)")
      ->check(whole_number(1, kMaxImageSide));
  cli.add_flag("--plain-resize", f.plain_resize, "resize straight to crop x crop");
}

Preprocess model_preprocess(const Graph& g, const std::string& model_path, const PreprocessFlags& f) {
  Preprocess pre = Preprocess::from_metadata(g.metadata, model_path);
  if (!g.metadata.count("fgq.input_size") && !g.inputs.empty()) {
    const Shape& in = g.values[g.inputs[0]].shape;  // no metadata: trust the graph
    if (in.size() == 4 && in[2] > 0 && in[2] == in[3]) pre.input_size = static_cast<int>(in[2]);
  }
  if (f.crop > 0) pre.input_size = f.crop;
  pre.resize_shorter = f.resize;
  pre.plain_resize = f.plain_resize;
  if (!pre.plain_resize && pre.resize_shorter < pre.input_size)
    fail("--resize", std::to_string(f.resize) + " is smaller than the crop " +
                         std::to_string(pre.input_size));
  return pre;
}

void add_quant_options(CLI::App& cli, QuantFlags& f) {
  cli.add_option("--quant", f.quant, "none | fgq")->check(CLI::IsMember({"none", "fgq"}));
  cli.add_option("--group", f.q.group, "FGQ group size N")->check(whole_number(1, kMaxGroup));
  cli.add_option("--act-bits", f.q.act_bits, "activation bits: 8 | 4 | 0 (FP32)")
      ->check(CLI::IsMember({0, 4, 8}));
  cli.add_option("--threshold", f.q.threshold, "ternary threshold: exact | twn")
      ->check(CLI::IsMember({"exact", "twn"}));
  cli.add_option("--act-calib", f.q.act_calib, "activation range calibration: max | percentile | mse")
      ->check(CLI::IsMember({"max", "percentile", "mse"}));
  cli.add_option("--percentile", f.q.percentile, "percentile of |x| kept by --act-calib percentile")
      ->check(CLI::Range(0.001, 100.0));
  cli.add_flag("--pow2-scales", f.q.pow2_scales,
               "power-of-two activation scales (dynamic fixed point; rounded up)");
  cli.add_option("--calib", f.calib_dir,
                 "calibration images (default ${FGQ_DATA:-<repo>/../shared}/data/imagenet/calib)");
  cli.add_option("--calib-count", f.calib_count,
                 "use N calibration images, evenly spread over the sorted folder")
      ->check(whole_number(1, INT_MAX));
  cli.add_option("--correction", f.q.correction,
                 "statistics correction: fp32 (match the FP32 network's channel mean and "
                 "variance) | mean (its mean only) | bn (re-estimate BatchNorm)")
      ->check(CLI::IsMember({"fp32", "mean", "bn"}));
  cli.add_flag("--ternarize-first", f.q.ternarize_first, "ternarize the first conv too (default: 8-bit)");
  cli.add_flag("--ternarize-last", f.q.ternarize_last, "ternarize the classifier too (default: 8-bit)");
  cli.add_flag("--no-gptq", f.no_gptq, "ternarize by weight error only (no GPTQ compensation)");
  cli.add_option("--gptq-samples", f.q.gptq_samples, "input patches per layer for GPTQ's Hessian")
      ->check(whole_number(1, INT_MAX));
  cli.add_flag("--no-stats-correction", f.no_stats_correction,
               "skip the per-channel statistics correction");
  cli.add_option("--fold-levels", f.q.fold_levels,
                 "fold each ternary layer's group scales into this many int8 levels per output "
                 "channel (0: exact float scales, simulation only)")
      ->check(whole_number(0, 127));
  cli.add_flag("--simulate", f.q.simulate,
               "integer-exact simulation: the integer network with its convolutions on the FP32 "
               "kernels (same numbers as the integer kernels, on independent code)");
  cli.add_flag("--fake-quant", f.fake_quant,
               "run the calibration graph (real-valued FakeQuant on FP32 kernels) instead of the "
               "integer network");
}

void finish_quant_flags(QuantFlags& f) {
  f.q.stats_correction = !f.no_stats_correction;
  f.q.gptq = !f.no_gptq;
  if (f.calib_dir.empty()) f.calib_dir = default_calib_dir();
}

std::string unused_quant_options(const CLI::App& cli, const QuantFlags& f) {
  auto given = [&](const char* name) {
    const CLI::Option* o = cli.get_option_no_throw(name);
    return o != nullptr && o->count() > 0;
  };
  if (!f.enabled())
    for (const char* name : {"--group", "--act-bits", "--threshold", "--act-calib", "--percentile",
                             "--pow2-scales", "--calib", "--calib-count", "--correction",
                             "--ternarize-first", "--ternarize-last", "--no-gptq", "--gptq-samples",
                             "--no-stats-correction", "--fold-levels", "--save-quant"})
      if (given(name)) return std::string(name) + " needs --quant fgq (without it nothing is quantized)";
  if (given("--percentile") && f.q.act_calib != "percentile")
    return "--percentile needs --act-calib percentile";
  if (given("--gptq-samples") && f.no_gptq) return "--gptq-samples does nothing with --no-gptq";
  if (given("--correction") && f.no_stats_correction)
    return "--correction does nothing with --no-stats-correction";
  if (f.fake_quant && f.q.simulate) return "--simulate and --fake-quant exclude each other";
  return "";
}

void check_run_mode(const QuantFlags& f, bool quantized) {
  if (quantized) return;
  if (f.q.simulate) fail("--simulate", "needs a quantized model (--quant fgq, or a saved one)");
  if (f.fake_quant) fail("--fake-quant", "needs a quantized model (--quant fgq, or a saved one)");
}

void check_output_path(const std::string& option, const std::string& path) {
  if (path.empty()) return;
  const fs::path p(path);
  std::error_code ec;
  if (fs::is_directory(p, ec)) fail(option, path + ": is a folder, not a file");
  const fs::path dir = p.parent_path().empty() ? fs::path(".") : p.parent_path();
  if (!fs::is_directory(dir, ec)) fail(option, path + ": folder " + dir.string() + " does not exist");
  // Whether a file can be created there (permissions, read-only file systems, root or not):
  // create one. The writers write a temporary file next to the destination and rename it.
  const std::string probe = (dir / (".fgq-write-test." + std::to_string(getpid()))).string();
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd < 0) {
    const int err = errno;
    if (err != EEXIST)
      fail(option, path + ": cannot create files in " + dir.string() + " (" + std::strerror(err) + ")");
  } else {
    ::close(fd);
    ::unlink(probe.c_str());
  }
}

std::string default_calib_dir() {
  if (const char* env = std::getenv("FGQ_DATA"); env && *env)
    return (fs::path(env) / "data/imagenet/calib").string();
  // Executables live in <repo>/build*/apps/; the shared data sits next to the repo.
  return (fs::path(executable_dir()) / "../../../shared/data/imagenet/calib").lexically_normal().string();
}

// Evenly, not the first ones: the folder is sorted by class, and statistics taken from the
// first 200 classes (all animals) bias the correction.
std::vector<float> load_calibration(const QuantFlags& f, const Preprocess& pre, int& n) {
  std::vector<std::string> files = list_image_files(f.calib_dir);
  if (files.empty()) fail(f.calib_dir, "no calibration images");
  if (files.size() > size_t(f.calib_count)) {
    std::vector<std::string> spread(f.calib_count);
    for (size_t i = 0; i < spread.size(); ++i) spread[i] = files[i * files.size() / spread.size()];
    files = std::move(spread);
  }
  n = static_cast<int>(files.size());
  const size_t per_image = size_t(3) * pre.input_size * pre.input_size;
  std::vector<float> data(per_image * n);
  tbb::parallel_for(0, n, [&](int i) { load_image(files[i], pre, data.data() + i * per_image); });
  return data;
}

json quant_json(const QuantReport& r, const QuantFlags& f, int n_calib) {
  json layers = json::array();
  for (const auto& l : r.layers)
    layers.push_back({{"name", l.name}, {"kind", l.kind}, {"groups", l.groups},
                      {"sparsity", l.sparsity}, {"rel_error", l.rel_error},
                      {"zero_levels", l.zero_levels}, {"fold_rel_error", l.fold_rel_error}});
  return {{"method", "fgq"},
          {"group", f.q.group},
          {"act_bits", f.q.act_bits},
          {"threshold", f.q.threshold},
          {"act_calib", f.q.act_calib},
          {"percentile", f.q.percentile},
          {"pow2_scales", f.q.pow2_scales},
          {"stats_correction", f.q.stats_correction},
          {"correction", f.q.correction},
          {"gptq", f.q.gptq},
          {"gptq_samples", f.q.gptq_samples},
          {"ternarize_first", f.q.ternarize_first},
          {"ternarize_last", f.q.ternarize_last},
          {"fold_levels", f.q.fold_levels},
          {"zero_levels", r.zero_levels},
          {"nonzero_groups", r.nonzero_groups},
          {"calib_dir", f.calib_dir},
          {"calib_images", n_calib},
          {"weight_sparsity", r.weight_sparsity},
          {"mults_removed", r.mults_removed},
          {"corrected_layers", r.corrected_layers},
          {"seconds", r.seconds},
          {"layers", std::move(layers)}};
}

json pipeline_json(const RunGraph& r, RunMode mode, bool quantized) {
  if (!r.integer) return {{"pipeline", quantized ? "fake-quant" : "fp32"}};
  const LoweringReport& l = r.lowering;
  return {{"pipeline", run_mode_name(mode)},
          {"isa", mode == RunMode::Simulate ? "fp32" : ops::isa_name(ops::active_isa())},
          {"qconv", l.qconv},
          {"qconv_ternary", l.qconv_ternary},
          {"quantize", l.quantize},
          {"dequantize", l.dequantize},
          {"maxpool", l.maxpool},
          {"global_avgpool", l.global_avgpool},
          {"float_layers", l.float_layers}};
}

std::string pipeline_line(const RunGraph& r, RunMode mode, bool quantized) {
  if (!r.integer) return quantized ? "fake-quant graph (FakeQuant on FP32 kernels)" : "FP32";
  const LoweringReport& l = r.lowering;
  std::string s = mode == RunMode::Simulate
                      ? std::string("integer-exact simulation (convolutions on FP32 kernels)")
                      : std::string("integer pipeline (") + ops::isa_name(ops::active_isa()) + ")";
  if (l.qconv == 0 && l.quantize == 0) return s + ", loaded lowered";
  s += ": " + std::to_string(l.qconv) + " QConv (" + std::to_string(l.qconv_ternary) +
       " ternary), " + std::to_string(l.maxpool) + " MaxPool, " + std::to_string(l.global_avgpool) +
       " QGlobalAveragePool, " + std::to_string(l.quantize) + " Quantize, " +
       std::to_string(l.dequantize) + " Dequantize";
  for (const std::string& f : l.float_layers) s += "; float: " + f;
  return s;
}

json preprocess_json(const Preprocess& pre) {
  auto triple = [](const std::array<float, 3>& a) {
    return json::array({json_float(a[0]), json_float(a[1]), json_float(a[2])});
  };
  return {{"channel_order", pre.channel_order},
          {"pixel_scale", json_float(pre.pixel_scale)},
          {"mean", triple(pre.mean)},
          {"std", triple(pre.std)},
          {"input_size", pre.input_size},
          {"resize", pre.resize_shorter},
          {"plain_resize", pre.plain_resize}};
}

namespace {

void check_classes(int64_t classes, const std::vector<LabeledImage>& images) {
  for (const auto& img : images)
    if (img.label < 0 || img.label >= classes)
      fail(img.name, "label " + std::to_string(img.label) + " is outside the model's " +
                         std::to_string(classes) + " classes");
}

}  // namespace

void check_model_fits(const Executor& ex, const Preprocess& pre,
                      const std::vector<LabeledImage>& images, const std::string& model) {
  const Shape& in = ex.input_shape();
  if (in.size() != 4 || in[1] != 3 || in[2] != pre.input_size || in[3] != pre.input_size)
    fail(model, "input is " + shape_str(in) + ", but images are preprocessed to 3x" +
                    std::to_string(pre.input_size) + "x" + std::to_string(pre.input_size) +
                    " (see --crop)");
  check_classes(numel(ex.output_shape(0, 1)), images);
}

void check_labels(const Graph& g, const std::vector<LabeledImage>& images) {
  if (g.outputs.empty()) return;
  const Shape& out = g.values[g.outputs[0]].shape;
  if (out.size() < 2) return;
  int64_t classes = 1;
  for (size_t i = 1; i < out.size(); ++i) {
    if (out[i] <= 0) return;  // not known before the executor plans it
    classes *= out[i];
  }
  check_classes(classes, images);
}

}  // namespace fgq::app
