// The public API (include/fgq/fgq.h) over the graph loader, FGQ quantizer and executor.
#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>
#include <new>

#include "fgq/fgq.h"
#include "graph/onnx_export.h"
#include "graph/onnx_import.h"
#include "graph/prepare.h"
#include "runtime/executor.h"
#include "runtime/op_registry.h"
#include "runtime/preprocess.h"
#include "runtime/quantize_runner.h"
#include "runtime/report.h"
#include "runtime/run_graph.h"

namespace fgq {

namespace {

// The object behind a Model or Session, or an fgq::Error for a moved-from one (never a null
// dereference). Deduced, so the private Impl types need not be named here.
template <class T>
T& live(const std::unique_ptr<T>& impl, const char* what) {
  if (!impl) fail(what, "used after it was moved from");
  return *impl;
}

constexpr int kMaxSessionBatch = 1 << 16;

// Whether any of n floats is infinite or NaN (exponent bits all ones), branch-free over blocks
// of 16 so that GCC vectorizes it: a test-and-branch per value took 70 us per 224x224 image,
// about 1 % of ResNet-50's integer run at batch 1; this takes 11 us.
bool any_nonfinite(const float* x, size_t n) {
  size_t i = 0;
  uint32_t bad = 0;
  for (; i + 16 <= n; i += 16) {
    uint32_t u[16];
    std::memcpy(u, x + i, sizeof u);
    for (int j = 0; j < 16; ++j) bad |= uint32_t((u[j] & 0x7f800000u) == 0x7f800000u);
  }
  for (; i < n; ++i) bad |= uint32_t(!std::isfinite(x[i]));
  return bad != 0;
}

}  // namespace

struct Model::Impl {
  // BN-folded, not activation-fused (quantization still needs the conv outputs); once quantized
  // for the integer pipeline only its source and metadata (the run graph is the model).
  Graph graph;
  Preprocess pre;
  bool quantized = false;
  // What sessions run (fused, lowered when integer), immutable and shared by them, with the
  // kernels' packed weights made once for all of them.
  std::shared_ptr<const RunGraph> run;
  std::shared_ptr<rt::KernelCache> cache = std::make_shared<rt::KernelCache>();

  void build_run(bool simulate) {
    run = std::make_shared<const RunGraph>(make_run_graph(graph, simulate ? RunMode::Simulate : RunMode::Integer));
    cache = std::make_shared<rt::KernelCache>();
  }
};

Model::Model() : impl_(std::make_unique<Impl>()) {}
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;
Model::~Model() = default;

Model Model::load(const std::string& onnx_path) {
  Model m;
  m.impl_->graph = load_and_prepare(onnx_path, /*fuse=*/false);
  m.impl_->pre = Preprocess::from_metadata(m.impl_->graph.metadata, onnx_path);
  m.impl_->quantized = has_fake_quant(m.impl_->graph) || has_integer_ops(m.impl_->graph);
  m.impl_->build_run(false);
  return m;
}

Model Model::load_from_memory(const void* data, size_t size, const std::string& name) {
  if (data == nullptr && size > 0) fail(name, "null data pointer with size " + std::to_string(size));
  Model m;
  m.impl_->graph = prepare_graph(import_onnx_bytes(data, size, name), /*fuse=*/false);
  m.impl_->pre = Preprocess::from_metadata(m.impl_->graph.metadata, name);
  m.impl_->quantized = has_fake_quant(m.impl_->graph) || has_integer_ops(m.impl_->graph);
  m.impl_->build_run(false);
  return m;
}

QuantSummary Model::quantize(const QuantOptions& options, const std::vector<std::string>& calib_images) {
  Impl& impl = live(impl_, "fgq::Model");
  if (calib_images.size() > size_t(INT_MAX)) fail(impl.graph.source, "too many calibration images");
  const int s = impl.pre.input_size;
  const size_t per_image = size_t(3) * s * s;
  std::vector<float> calib(per_image * calib_images.size());
  for (size_t i = 0; i < calib_images.size(); ++i)
    load_image(calib_images[i], impl_->pre, calib.data() + i * per_image);
  return quantize(options, calib.data(), static_cast<int>(calib_images.size()));
}

QuantSummary Model::quantize(const QuantOptions& options, const float* calib, int n) {
  live(impl_, "fgq::Model");
  if (n < 0) fail(impl_->graph.source, "calibration image count " + std::to_string(n) + " is negative");
  if (n > 0 && calib == nullptr)
    fail(impl_->graph.source, "null calibration data for " + std::to_string(n) + " images");
  if (impl_->quantized) fail(impl_->graph.source, "model is already quantized");
  Graph g = impl_->graph;  // the model stays as it was if quantization fails
  QuantReport r = quantize_graph(g, options, calib, n);
  impl_->graph = std::move(g);
  impl_->quantized = true;
  impl_->build_run(options.simulate);
  if (impl_->run->integer && !options.simulate) {
    // The float weights served quantization only: save() writes the integer graph, and a
    // model is quantized once. Keeping them would hold the FP32 network's memory for nothing.
    Graph kept;
    kept.source = impl_->graph.source;
    kept.metadata = impl_->graph.metadata;
    impl_->graph = std::move(kept);
  }
  QuantSummary s;
  for (const auto& l : r.layers) {
    s.ternary_layers += l.kind == "ternary";
    s.int8_layers += l.kind == "int8";
  }
  s.weight_sparsity = r.weight_sparsity;
  s.mults_removed = r.mults_removed;
  s.zero_levels = r.zero_levels;
  s.nonzero_groups = r.nonzero_groups;
  s.integer = impl_->run->integer;
  s.integer_layers = impl_->run->lowering.qconv;
  s.float_layers = impl_->run->lowering.float_layers;
  return s;
}

void Model::save(const std::string& onnx_path) const {
  live(impl_, "fgq::Model");
  // An integer model is saved lowered (what the integer pipeline needs: codes, levels, requant
  // constants), a simulated or FP32 one as its prepared graph.
  export_onnx_file(impl_->run->integer ? impl_->run->graph : impl_->graph, onnx_path);
}

const std::map<std::string, std::string>& Model::metadata() const {
  return live(impl_, "fgq::Model").graph.metadata;
}
int Model::input_size() const { return live(impl_, "fgq::Model").pre.input_size; }
bool Model::quantized() const { return live(impl_, "fgq::Model").quantized; }
bool Model::integer() const { return live(impl_, "fgq::Model").run->integer; }

size_t Model::weight_bytes() const {
  live(impl_, "fgq::Model");
  size_t bytes = 0;
  for (const Value& v : impl_->run->graph.values)
    if (v.is_const()) {
      const Tensor& t = *v.constant;
      bytes += t.f.size() * sizeof(float) + t.i.size() * sizeof(int64_t) + t.raw.size();
    }
  return bytes + impl_->cache->bytes();
}

struct Session::Impl {
  Preprocess pre;
  std::unique_ptr<Executor> exec;
  bool output_is_softmax = false;
};

Session::Session(const Model& model, int max_batch) : impl_(std::make_unique<Impl>()) {
  const Model::Impl& m = live(model.impl_, "fgq::Model");
  if (max_batch < 1 || max_batch > kMaxSessionBatch)
    fail(m.graph.source, "max_batch " + std::to_string(max_batch) + " is outside 1.." +
                             std::to_string(kMaxSessionBatch));
  impl_->pre = m.pre;
  try {
    impl_->exec = std::make_unique<Executor>(m.run->graph, max_batch, m.cache);
  } catch (const std::bad_alloc&) {
    fail(m.graph.source, "not enough memory for a session of max_batch " + std::to_string(max_batch));
  }
  const Graph& eg = impl_->exec->graph();
  impl_->output_is_softmax = !eg.nodes.empty() && eg.nodes.back().op == "Softmax";
}

Session::Session(Session&&) noexcept = default;
Session& Session::operator=(Session&&) noexcept = default;
Session::~Session() = default;

int Session::max_batch() const { return live(impl_, "fgq::Session").exec->max_batch(); }
size_t Session::activation_bytes() const {
  const Impl& s = live(impl_, "fgq::Session");
  return s.exec->arena_bytes() + s.exec->scratch_bytes();
}

size_t Session::input_floats() const {
  const Shape& in = live(impl_, "fgq::Session").exec->input_shape();  // dim 0 = max_batch
  size_t n = 1;
  for (size_t i = 1; i < in.size(); ++i) n *= static_cast<size_t>(in[i]);
  return n;
}

int Session::num_classes() const {
  Shape s = live(impl_, "fgq::Session").exec->output_shape(0, 1);
  return static_cast<int>(numel(s));
}

std::vector<float> Session::run(const float* input, size_t size, int batch) {
  Impl& s = live(impl_, "fgq::Session");
  const std::string& where = s.exec->graph().source;
  if (batch < 1 || batch > max_batch())
    fail(where, "batch " + std::to_string(batch) + " outside 1.." + std::to_string(max_batch()));
  if (input == nullptr) fail(where, "null input");
  const size_t per_image = input_floats();
  const size_t want = size_t(batch) * per_image;
  const Shape& in = s.exec->input_shape();
  if (size != want) {
    std::string dims;
    for (size_t i = 1; i < in.size(); ++i) dims += " x " + std::to_string(in[i]);
    fail(where, "input has " + std::to_string(size) + " floats, batch " + std::to_string(batch) +
                    " needs " + std::to_string(batch) + dims + " = " + std::to_string(want));
  }
  if (any_nonfinite(input, want)) {
    size_t i = 0;
    while (std::isfinite(input[i])) ++i;
    std::string at = "image " + std::to_string(i / per_image);
    if (in.size() == 4) {  // NCHW
      const size_t h = static_cast<size_t>(in[2]), w = static_cast<size_t>(in[3]), r = i % per_image;
      at += ", channel " + std::to_string(r / (h * w)) + ", row " + std::to_string(r % (h * w) / w) +
            ", column " + std::to_string(r % w);
    }
    fail(where, "input[" + std::to_string(i) + "] (" + at + ") is " + (std::isnan(input[i]) ? "nan" : "infinite"));
  }
  s.exec->run(input, batch);
  const float* out = s.exec->output(0);
  return std::vector<float>(out, out + size_t(batch) * num_classes());
}

std::vector<float> Session::run(const std::vector<float>& input, int batch) {
  return run(input.data(), input.size(), batch);
}

std::vector<float> Session::run(const float* input, int batch) {
  if (batch < 1 || batch > max_batch())  // before the size product below
    fail(live(impl_, "fgq::Session").exec->graph().source,
         "batch " + std::to_string(batch) + " outside 1.." + std::to_string(max_batch()));
  return run(input, size_t(batch) * input_floats(), batch);
}

std::vector<float> Session::preprocess(const std::string& image_path) const {
  const Impl& s = live(impl_, "fgq::Session");
  std::vector<float> x(input_floats());
  load_image(image_path, s.pre, x.data());
  return x;
}

std::vector<std::vector<Prediction>> Session::classify(const std::vector<std::string>& image_paths, int k) {
  Impl& s = live(impl_, "fgq::Session");
  const int classes = num_classes();
  if (k < 1 || k > classes)
    fail(s.exec->graph().source,
         "k " + std::to_string(k) + " is outside 1.." + std::to_string(classes) + " (the model's classes)");
  std::vector<std::vector<Prediction>> result;
  const size_t per_image = input_floats();
  const size_t side = static_cast<size_t>(s.pre.input_size);
  if (per_image != 3 * side * side)  // load_image writes 3 x S x S floats
    fail(s.exec->graph().source, "network input has " + std::to_string(per_image) +
                                     " floats per image, but images are preprocessed to 3 x " +
                                     std::to_string(side) + " x " + std::to_string(side) +
                                     " (fgq.input_size metadata)");
  // For the images there are, not for max_batch() of them.
  const size_t batch_max = std::min<size_t>(max_batch(), image_paths.size());
  std::vector<float> batch_in(per_image * batch_max);
  for (size_t first = 0; first < image_paths.size(); first += batch_max) {
    const int b = static_cast<int>(std::min<size_t>(batch_max, image_paths.size() - first));
    for (int i = 0; i < b; ++i) load_image(image_paths[first + i], s.pre, batch_in.data() + i * per_image);
    const std::vector<float> logits = run(batch_in.data(), size_t(b) * per_image, b);
    for (int i = 0; i < b; ++i) {
      const TopK t = rank_row(logits.data() + size_t(i) * classes, classes, k, s.output_is_softmax);
      std::vector<Prediction> top;
      for (size_t j = 0; j < t.classes.size(); ++j) top.push_back({t.classes[j], t.scores[j]});
      result.push_back(std::move(top));
    }
  }
  return result;
}

}  // namespace fgq
