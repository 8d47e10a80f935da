#pragma once
// What fgq-run and fgq-sweep share: the model's preprocessing, the FGQ command-line options,
// the calibration images and the JSON records of both.
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "fgq/quant_options.h"
#include "graph/ir.h"
#include "quant/quantize.h"
#include "runtime/dataset.h"
#include "runtime/executor.h"
#include "runtime/preprocess.h"
#include "runtime/run_graph.h"

namespace fgq::app {

// An integer option read as what it is: decimal digits only (no sign, fraction, exponent or hex),
// lo..hi, else the usage error "<option>: must be a whole number from lo to hi, got 'text'".
CLI::Validator whole_number(int64_t lo, int64_t hi);

struct PreprocessFlags {
  int resize = 256, crop = 0;
  bool plain_resize = false;
};
void add_preprocess_options(CLI::App& cli, PreprocessFlags& f);
// The model's preprocessing (fgq.* metadata, else the graph's input size) with the flags applied.
Preprocess model_preprocess(const Graph& g, const std::string& model_path, const PreprocessFlags& f);

// --quant and the FGQ options, as fgq-run takes them.
struct QuantFlags {
  std::string quant = "none";  // none | fgq
  std::string calib_dir;       // "" = default_calib_dir()
  int calib_count = 200;
  QuantOptions q;
  bool no_stats_correction = false, no_gptq = false;
  bool fake_quant = false;     // run the calibration graph itself (FakeQuant on FP32 kernels)
  bool enabled() const { return quant == "fgq"; }
  RunMode mode() const { return fake_quant ? RunMode::FakeQuant : q.simulate ? RunMode::Simulate : RunMode::Integer; }
};
void add_quant_options(CLI::App& cli, QuantFlags& f);
// Applies the --no-* flags and the default calibration folder; call after parsing.
void finish_quant_flags(QuantFlags& f);
// After parsing: "" if every quantization option given (CLI11 count()) takes effect, else why
// not, e.g. "--group needs --quant fgq (without it nothing is quantized)" or "--percentile
// needs --act-calib percentile". --simulate and --fake-quant also apply to a model saved
// quantized, so they are checked against the loaded model (check_run_mode).
std::string unused_quant_options(const CLI::App& cli, const QuantFlags& f);
// Throws fgq::Error when --simulate / --fake-quant are given for a model that is not quantized.
void check_run_mode(const QuantFlags& f, bool quantized);

// An output file (--json, --save-quant, ...) checked before any long work: its folder exists and
// a file can be created in it, and the path is not a folder. Throws fgq::Error
// "<option>: <path>: ...". Empty path: nothing to check.
void check_output_path(const std::string& option, const std::string& path);
// ${FGQ_DATA}/data/imagenet/calib, else <repo>/../shared/data/imagenet/calib.
std::string default_calib_dir();

// calib_count images spread evenly over the sorted calibration folder, preprocessed like
// inference: n x 3 x S x S floats; n is set to the number loaded.
std::vector<float> load_calibration(const QuantFlags& f, const Preprocess& pre, int& n);

nlohmann::json quant_json(const QuantReport& r, const QuantFlags& f, int n_calib);
// How the network runs: "fp32", "simulated" or "integer" (with the kernels' instruction set and
// what the lowering made of the graph).
nlohmann::json pipeline_json(const RunGraph& r, RunMode mode, bool quantized);
// One info line for stderr, e.g. "integer pipeline (avx512vnni): 53 QConv (52 ternary), ...".
std::string pipeline_line(const RunGraph& r, RunMode mode, bool quantized);
nlohmann::json preprocess_json(const Preprocess& pre);

// Throws fgq::Error "<image>: label L is outside the model's C classes" when the graph's output
// shape (from shape inference; nothing checked if unknown) has fewer classes than a label needs.
void check_labels(const Graph& g, const std::vector<LabeledImage>& images);
// Throws fgq::Error unless the network input is 3 x crop x crop and every label is a class.
void check_model_fits(const Executor& ex, const Preprocess& pre,
                      const std::vector<LabeledImage>& images, const std::string& model);

}  // namespace fgq::app
