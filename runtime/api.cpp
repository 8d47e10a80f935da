// The public API (include/fgq/fgq.h) over the graph loader, FGQ quantizer and executor.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "fgq/fgq.h"
#include "graph/onnx_export.h"
#include "graph/onnx_import.h"
#include "graph/prepare.h"
#include "runtime/executor.h"
#include "runtime/op_registry.h"
#include "runtime/preprocess.h"
#include "runtime/quantize_runner.h"
#include "runtime/run_graph.h"

namespace fgq {

struct Model::Impl {
  Graph graph;  // BN-folded, not activation-fused: quantization still needs the conv outputs
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
  Model m;
  m.impl_->graph = prepare_graph(import_onnx_bytes(data, size, name), /*fuse=*/false);
  m.impl_->pre = Preprocess::from_metadata(m.impl_->graph.metadata, name);
  m.impl_->quantized = has_fake_quant(m.impl_->graph) || has_integer_ops(m.impl_->graph);
  m.impl_->build_run(false);
  return m;
}

QuantSummary Model::quantize(const QuantOptions& options, const std::vector<std::string>& calib_images) {
  const int s = impl_->pre.input_size;
  const size_t per_image = size_t(3) * s * s;
  std::vector<float> calib(per_image * calib_images.size());
  for (size_t i = 0; i < calib_images.size(); ++i)
    load_image(calib_images[i], impl_->pre, calib.data() + i * per_image);
  return quantize(options, calib.data(), static_cast<int>(calib_images.size()));
}

QuantSummary Model::quantize(const QuantOptions& options, const float* calib, int n) {
  if (impl_->quantized) fail(impl_->graph.source, "model is already quantized");
  Graph g = impl_->graph;  // the model stays as it was if quantization fails
  QuantReport r = quantize_graph(g, options, calib, n);
  impl_->graph = std::move(g);
  impl_->quantized = true;
  impl_->build_run(options.simulate);
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
  // An integer model is saved lowered (what the integer pipeline needs: codes, levels, requant
  // constants), a simulated or FP32 one as its prepared graph.
  export_onnx_file(impl_->run->integer ? impl_->run->graph : impl_->graph, onnx_path);
}

const std::map<std::string, std::string>& Model::metadata() const { return impl_->graph.metadata; }
int Model::input_size() const { return impl_->pre.input_size; }
bool Model::quantized() const { return impl_->quantized; }
bool Model::integer() const { return impl_->run->integer; }

size_t Model::weight_bytes() const {
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
  if (max_batch < 1) fail(model.impl_->graph.source, "max_batch must be >= 1");
  impl_->pre = model.impl_->pre;
  impl_->exec = std::make_unique<Executor>(model.impl_->run->graph, max_batch, model.impl_->cache);
  const Graph& eg = impl_->exec->graph();
  impl_->output_is_softmax = !eg.nodes.empty() && eg.nodes.back().op == "Softmax";
}

Session::Session(Session&&) noexcept = default;
Session& Session::operator=(Session&&) noexcept = default;
Session::~Session() = default;

int Session::max_batch() const { return impl_->exec->max_batch(); }
size_t Session::activation_bytes() const { return impl_->exec->arena_bytes() + impl_->exec->scratch_bytes(); }

int Session::num_classes() const {
  Shape s = impl_->exec->output_shape(0, 1);
  return static_cast<int>(numel(s));
}

std::vector<float> Session::run(const float* input, int batch) {
  if (batch < 1 || batch > max_batch())
    fail(impl_->exec->graph().source,
         "batch " + std::to_string(batch) + " outside 1.." + std::to_string(max_batch()));
  impl_->exec->run(input, batch);
  const float* out = impl_->exec->output(0);
  return std::vector<float>(out, out + size_t(batch) * num_classes());
}

std::vector<float> Session::preprocess(const std::string& image_path) const {
  const int s = impl_->pre.input_size;
  std::vector<float> x(size_t(3) * s * s);
  load_image(image_path, impl_->pre, x.data());
  return x;
}

std::vector<std::vector<Prediction>> Session::classify(const std::vector<std::string>& image_paths, int k) {
  const int classes = num_classes();
  k = std::clamp(k, 1, classes);
  std::vector<std::vector<Prediction>> result;
  const size_t per_image = size_t(3) * impl_->pre.input_size * impl_->pre.input_size;
  std::vector<float> batch_in(per_image * max_batch());
  for (size_t first = 0; first < image_paths.size(); first += max_batch()) {
    const int b = static_cast<int>(std::min<size_t>(max_batch(), image_paths.size() - first));
    for (int i = 0; i < b; ++i) load_image(image_paths[first + i], impl_->pre, batch_in.data() + i * per_image);
    std::vector<float> logits = run(batch_in.data(), b);
    for (int i = 0; i < b; ++i) {
      const float* row = logits.data() + size_t(i) * classes;
      std::vector<float> p(row, row + classes);
      if (!impl_->output_is_softmax) {  // scores are probabilities either way
        const float mx = *std::max_element(p.begin(), p.end());
        double sum = 0;
        for (float& v : p) sum += (v = std::exp(v - mx));
        for (float& v : p) v = static_cast<float>(v / sum);
      }
      std::vector<int> idx(classes);
      std::iota(idx.begin(), idx.end(), 0);
      std::partial_sort(idx.begin(), idx.begin() + k, idx.end(),
                        [&](int a, int c) { return p[a] > p[c] || (p[a] == p[c] && a < c); });
      std::vector<Prediction> top;
      for (int j = 0; j < k; ++j) top.push_back({idx[j], p[idx[j]]});
      result.push_back(std::move(top));
    }
  }
  return result;
}

}  // namespace fgq
