#include "quant/quantize.h"

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <optional>

#include <tbb/parallel_for.h>

#include "graph/error.h"
#include "graph/passes.h"
#include "graph/window.h"
#include "ops/elementwise.h"
#include "quant/gptq.h"
#include "quant/layer_weights.h"

namespace fgq {

namespace {

const char* const kWhere = "quantize";

void validate(const Graph& g, const QuantOptions& opt, int n_calib, const float* calib) {
  // A group never spans more than a layer's input channels (ternarize() sizes its buffers by
  // min(group, C)); beyond any real layer's width a group size is a mistake, not a choice.
  constexpr int kMaxGroup = 1 << 16;
  if (opt.group < 1 || opt.group > kMaxGroup)
    fail(kWhere, "group size must be from 1 to " + std::to_string(kMaxGroup) + ", got " +
                     std::to_string(opt.group));
  if (opt.fold_levels < 0 || opt.fold_levels > 127)
    fail(kWhere, "fold_levels must be in 0..127, got " + std::to_string(opt.fold_levels));
  if (opt.gptq && opt.gptq_samples < 1)
    fail(kWhere, "gptq_samples must be >= 1, got " + std::to_string(opt.gptq_samples));
  if (opt.act_bits != 0 && opt.act_bits != 4 && opt.act_bits != 8)
    fail(kWhere, "act_bits must be 0, 4 or 8, got " + std::to_string(opt.act_bits));
  parse_threshold(opt.threshold);
  parse_calib_method(opt.act_calib);
  if (opt.correction != "fp32" && opt.correction != "mean" && opt.correction != "bn")
    fail(kWhere, "correction must be fp32, mean or bn, got '" + opt.correction + "'");
  if ((opt.stats_correction || opt.act_bits > 0 || opt.gptq) && (n_calib <= 0 || calib == nullptr))
    fail(kWhere, "GPTQ, statistics correction and activation quantization need calibration images");
  for (const Node& n : g.nodes)
    if (n.op == "FakeQuant" || n.attrs.has("fgq_weight"))
      fail(g.source.empty() ? kWhere : g.source, "graph is already quantized");
}

std::vector<int> producers(const Graph& g) {
  std::vector<int> p(g.values.size(), -1);
  for (size_t i = 0; i < g.nodes.size(); ++i)
    for (int v : g.nodes[i].outputs) p[v] = static_cast<int>(i);
  return p;
}

// Non-negative by construction (ReLU, possibly behind pooling or reshaping): such tensors get
// the unsigned grid, which has twice the resolution of the signed one.
bool structurally_nonnegative(const Graph& g, const std::vector<int>& prod, int v) {
  static const char* const passthrough[] = {"MaxPool", "AveragePool", "GlobalAveragePool",
                                            "GlobalMaxPool", "Flatten", "Reshape", "Squeeze",
                                            "Unsqueeze"};
  while (v >= 0 && prod[v] >= 0) {
    const Node& n = g.nodes[prod[v]];
    if (n.op == "Relu" || n.attrs.s("activation", "") == "Relu") return true;
    if (std::find(std::begin(passthrough), std::end(passthrough), n.op) == std::end(passthrough))
      return false;
    v = n.inputs.empty() ? -1 : n.inputs[0];
  }
  return false;
}

std::optional<FoldedBn> folded_bn(const Node& n, int64_t channels) {
  if (!n.attrs.has("bn_gamma")) return std::nullopt;
  FoldedBn bn{n.attrs.floats("bn_gamma"), n.attrs.floats("bn_beta"), n.attrs.floats("bn_mean"),
              n.attrs.floats("bn_var"), n.attrs.f("bn_eps", 1e-5f)};
  for (const auto* p : {&bn.gamma, &bn.beta, &bn.mean, &bn.var})
    if (static_cast<int64_t>(p->size()) != channels)
      fail(kWhere, "node '" + n.name + "': bn_* attributes do not match its output channels");
  return bn;
}

// Conv (group 1), Gemm or MatMul: the layers GPTQ can take, i.e. whose input patches are plain
// im2col columns of input 0.
bool gptq_applies(const Node& n) { return n.op != "Conv" || n.attrs.i("group", 1) == 1; }

PatchWindow patch_window(const Graph& g, const Node& n, const Shape& x) {
  PatchWindow w;
  if (n.op != "Conv") {
    if (x.size() != 2) fail(kWhere, "node '" + n.name + "': GPTQ needs a [batch, features] input");
    w.C = x[1];
    return w;
  }
  const Shape& ws = g.values[n.inputs[1]].constant->shape;
  const Window2d win = window_of(n, ws[2], ws[3], x[2], x[3], kWhere);
  w.C = x[1], w.H = x[2], w.W = x[3], w.KH = ws[2], w.KW = ws[3];
  w.SH = win.sh, w.SW = win.sw, w.DH = win.dh, w.DW = win.dw, w.PT = win.pt, w.PL = win.pl;
  w.OH = conv_out_size(x[2], ws[2], win.sh, win.dh, win.pt, win.pb);
  w.OW = conv_out_size(x[3], ws[3], win.sw, win.dw, win.pl, win.pr);
  return w;
}

// GPTQ's factor for layer node n from its input x (the whole calibration batch).
GptqFactor layer_factor(const Graph& g, const Node& n, const float* x, const Shape& shape,
                        int samples) {
  LayerHessian h;
  const PatchWindow win = patch_window(g, n, shape);
  accumulate_hessian(h, x, shape[0], win, samples);
  return gptq_factor(h, win.C, win.KH * win.KW);
}

// One FakeQuant behind each value the integer pipeline stores as integers.
struct ActSite {
  int in_value = -1;
  int bits = 8;
  bool nonneg = false;
  ActCalibrator cal;
  std::optional<ActQuantParams> params;
};

// Ops that keep the stored integers of their input (same scale): the integer pipeline runs them
// on integers, so their output needs no FakeQuant of its own.
bool keeps_integers(const std::string& op) {
  return op == "MaxPool" || op == "Flatten" || op == "Reshape" || op == "Identity";
}

// The simulation must quantize exactly the tensors the integer pipeline stores as integers, so
// that both compute the same thing (graph/pass_lower_integer.h): the data input of every
// quantized layer, the residual operand of every Add that fuses into a conv, and the input of
// every MaxPool and GlobalAveragePool; a value that MaxPool / Flatten / Reshape / Identity make
// from such a value is the same integers and shares its FakeQuant. One FakeQuant (uncalibrated:
// the executor passes its input through) goes right behind each stored value, and every reader
// reads it. Bits: act_bits where a ternary layer reads the value (also through those ops), 8
// otherwise. Returns the sites and updates the layers' node indices.
std::vector<ActSite> insert_fake_quants(Graph& g, std::vector<LayerWeights>& layers, int act_bits) {
  const std::vector<int> prod = producers(g);
  std::map<int, int> need;  // value -> bits its readers need (9: no requirement)
  auto require = [&](int v, int bits) {
    auto [it, fresh] = need.emplace(v, bits);
    if (!fresh) it->second = std::min(it->second, bits);
  };
  for (const LayerWeights& lw : layers)
    require(g.nodes[lw.node].inputs[0], lw.ternary ? act_bits : std::max(act_bits, 8));
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = g.nodes[i];
    if (n.op == "Add") {
      const int fused = fused_add_operand(g, static_cast<int>(i));
      if (fused >= 0) require(n.inputs[1 - fused], 9);
    } else if (n.op == "MaxPool" || n.op == "GlobalAveragePool") {
      require(n.inputs[0], 9);
    }
  }
  // A value is integer when it is stored, or made by an op that keeps the integers of an integer
  // value; a requirement lands on the stored value it comes from.
  auto kept_from = [&](int v) {  // the input whose integers v keeps, else -1
    const int p = prod[v];
    return p >= 0 && keeps_integers(g.nodes[p].op) && !g.nodes[p].inputs.empty() ? g.nodes[p].inputs[0] : -1;
  };
  std::function<bool(int)> is_int = [&](int v) {
    if (need.count(v)) return true;
    const int in = kept_from(v);
    return in >= 0 && is_int(in);
  };
  std::function<int(int)> root = [&](int v) {
    const int in = kept_from(v);
    return in >= 0 && is_int(in) ? root(in) : v;
  };
  std::map<int, int> root_bits;
  for (const auto& [v, bits] : need) {
    if (g.values[v].is_const()) continue;
    auto [it, fresh] = root_bits.emplace(root(v), bits);
    if (!fresh) it->second = std::min(it->second, bits);
  }

  std::vector<ActSite> sites;
  std::map<int, int> fq_of;  // stored value -> its FakeQuant output
  std::vector<Node> fqs;
  for (const auto& [v, bits] : root_bits) {
    sites.emplace_back();
    ActSite& s = sites.back();
    s.in_value = v;
    s.bits = bits > 8 ? 8 : bits;
    s.nonneg = structurally_nonnegative(g, prod, v);
    const int vq = g.add_value(g.values[v].name + "_fq", g.values[v].shape);
    Node fq;
    fq.op = "FakeQuant";
    fq.name = "fq/" + g.values[v].name;
    fq.inputs = {v};
    fq.outputs = {vq};
    fqs.push_back(std::move(fq));
    fq_of[v] = vq;
  }
  // Every reader of a stored value reads its FakeQuant.
  for (Node& n : g.nodes)
    for (int& in : n.inputs)
      if (auto it = fq_of.find(in); in >= 0 && it != fq_of.end()) in = it->second;

  // Each FakeQuant right behind its value's producer (graph inputs: first).
  std::vector<int> new_index(g.nodes.size());
  std::vector<Node> nodes;
  auto emit_fqs_of = [&](int v) {
    for (Node& fq : fqs)
      if (!fq.inputs.empty() && fq.inputs[0] == v) nodes.push_back(std::move(fq)), fq.inputs.clear();
  };
  for (int v : g.inputs) emit_fqs_of(v);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    new_index[i] = static_cast<int>(nodes.size());
    const std::vector<int> outs = g.nodes[i].outputs;
    nodes.push_back(std::move(g.nodes[i]));
    for (int o : outs) emit_fqs_of(o);
  }
  for (const Node& fq : fqs)
    if (!fq.inputs.empty()) fail(kWhere, "value '" + g.values[fq.inputs[0]].name + "' has no producer");
  g.nodes = std::move(nodes);
  for (LayerWeights& lw : layers) lw.node = new_index[lw.node];
  return sites;
}

ActQuantParams site_params(const ActSite& s, const QuantOptions& opt) {
  const bool is_signed = !s.nonneg || s.cal.seen_negative();
  int qmin = 0, qmax = 0;
  act_range(s.bits, is_signed, qmin, qmax);
  const float clip = s.cal.clip(parse_calib_method(opt.act_calib), qmax, opt.percentile);
  return make_act_params(clip, s.bits, is_signed, opt.pow2_scales);
}

}  // namespace

Fp32Reference measure_fp32_reference(const Graph& g, const float* calib, int n_calib,
                                     bool moments, int gptq_samples, const GraphRunner& run) {
  Fp32Reference ref;
  // GPTQ layers by the name of the value they read.
  std::map<std::string, std::vector<int>> layers_reading;
  if (gptq_samples > 0)
    for (size_t i = 0; i < g.nodes.size(); ++i)
      if (is_weighted_layer(g, g.nodes[i]) && gptq_applies(g.nodes[i]))
        layers_reading[g.values[g.nodes[i].inputs[0]].name].push_back(static_cast<int>(i));
  // Layers reading the graph input see the calibration images themselves.
  if (g.inputs.size() == 1)
    if (auto it = layers_reading.find(g.values[g.inputs[0]].name); it != layers_reading.end()) {
      Shape in = g.values[g.inputs[0]].shape;
      in[0] = n_calib;
      for (int i : it->second)
        ref.factors[g.nodes[i].name] = layer_factor(g, g.nodes[i], calib, in, gptq_samples);
    }
  if (!moments && layers_reading.empty()) return ref;
  run(g, calib, n_calib, [&](const Graph& rg, const Node& node, float* out, const Shape& shape) {
    const std::string& name = rg.values[node.outputs[0]].name;
    if (moments && node.op == "Conv") ref.moments[name] = channel_moments(out, shape);
    if (auto it = layers_reading.find(name); it != layers_reading.end())
      for (int i : it->second)
        ref.factors[rg.nodes[i].name] = layer_factor(rg, rg.nodes[i], out, shape, gptq_samples);
  });
  return ref;
}

namespace {

// 1. Weights: ternary (or int8 for the first/last layers), GPTQ against the FP32 network's inputs
// to each layer (so that one factor per layer serves every configuration).
std::vector<LayerWeights> quantize_weights(Graph& g, const std::vector<int>& layer_nodes,
                                           const QuantOptions& opt, const Fp32Reference& ref) {
  const Threshold method = parse_threshold(opt.threshold);
  std::vector<LayerWeights> layers;
  for (size_t l = 0; l < layer_nodes.size(); ++l) {
    const bool first = l == 0, last = l + 1 == layer_nodes.size();
    const bool ternary = !(first && !opt.ternarize_first) && !(last && !opt.ternarize_last);
    LayerWeights lw = quantize_layer_weights(g, layer_nodes[l], ternary, opt.group, method, opt.fold_levels);
    if (auto f = ref.factors.find(g.nodes[lw.node].name); opt.gptq && ternary && f != ref.factors.end())
      set_ternary(lw, gptq_ternarize(lw.fp32.data(), lw.fp32_shape, opt.group, method, f->second), opt.fold_levels);
    write_layer_weights(g, lw);
    layers.push_back(std::move(lw));
  }
  return layers;
}

// 2 + 3. One pass over the calibration images: correct conv outputs in place (statistics
// correction), calibrate and apply the FakeQuants; then fold the corrections into the weights and
// set the FakeQuant parameters.
void correct_and_calibrate(Graph& g, std::vector<LayerWeights>& layers, const QuantOptions& opt,
                           const float* calib, int n_calib, const GraphRunner& run,
                           const Fp32Reference& ref, QuantReport& report) {
  const bool use_bn = opt.correction == "bn";
  std::vector<ActSite> sites;
  if (opt.act_bits > 0) sites = insert_fake_quants(g, layers, opt.act_bits);
  std::map<std::string, size_t> corr_at, site_at;  // by output value name
  std::vector<std::optional<FoldedBn>> bns(layers.size());
  std::vector<std::optional<ChannelAffine>> corrections(layers.size());
  if (opt.stats_correction) {
    for (size_t l = 0; l < layers.size(); ++l) {
      const Node& n = g.nodes[layers[l].node];
      if (n.op != "Conv") continue;
      const std::string& out = g.values[n.outputs[0]].name;
      if (use_bn) bns[l] = folded_bn(n, layers[l].out_channels());
      if (!bns[l] && !ref.moments.count(out)) fail(kWhere, "no FP32 statistics recorded for '" + out + "'");
      corr_at[out] = l;
    }
  }
  for (size_t s = 0; s < sites.size(); ++s)
    for (int c : g.consumers(sites[s].in_value))
      if (g.nodes[c].op == "FakeQuant") site_at[g.values[g.nodes[c].outputs[0]].name] = s;
  // The range of each conv output that a fused Add takes, observed but not quantized (fgq adds
  // the residual before requantizing): an export for engines that requantize first (ONNX
  // Runtime's QLinearAdd, graph/onnx_export_qdq.h) needs a scale there.
  std::map<std::string, ActCalibrator> preadd;  // by conv output value name
  if (opt.act_bits > 0)
    for (size_t i = 0; i < g.nodes.size(); ++i)
      if (const int side = fused_add_operand(g, static_cast<int>(i)); side >= 0)
        preadd.emplace(g.values[g.nodes[i].inputs[side]].name, ActCalibrator{});

  if (!corr_at.empty() || !sites.empty()) {
    report.calib_arena_bytes = run(g, calib, n_calib, [&](const Graph& rg, const Node& node, float* out,
                                                          const Shape& shape) {
      const std::string& name = rg.values[node.outputs[0]].name;
      if (auto it = corr_at.find(name); it != corr_at.end()) {
        const size_t l = it->second;
        const ChannelMoments m = channel_moments(out, shape);
        corrections[l] = bns[l] ? bn_reestimation(*bns[l], m) : moment_matching(ref.moments.at(name), m, opt.correction == "mean");
        apply_channel_affine(out, shape, corrections[l]->a, corrections[l]->b);
      }
      if (auto it = preadd.find(name); it != preadd.end()) it->second.observe(out, numel(shape));
      // An uncalibrated FakeQuant passed its (corrected) input through: calibrate on it, then
      // quantize it in place for the layers downstream.
      if (auto it = site_at.find(name); it != site_at.end()) {
        ActSite& site = sites[it->second];
        const int64_t n = numel(shape);
        site.cal.observe(out, n);
        site.params = site_params(site, opt);
        const ActQuantParams q = *site.params;
        tbb::parallel_for(tbb::blocked_range<int64_t>(0, n, 1 << 16), [&](const tbb::blocked_range<int64_t>& r) {
          ops::fake_quant_f32(out + r.begin(), out + r.begin(), r.size(), q.scale, q.qmin, q.qmax);
        });
      }
    });
  }

  // Fold the corrections into the weights; fix the FakeQuant parameters.
  for (size_t l = 0; l < layers.size(); ++l) {
    if (corr_at.count(g.values[g.nodes[layers[l].node].outputs[0]].name)) {
      if (!corrections[l]) fail(kWhere, "calibration pass never reached layer '" + layers[l].stats.name + "'");
      fold_output_affine(layers[l], *corrections[l]);
      for (const char* k : {"bn_gamma", "bn_beta", "bn_mean", "bn_var", "bn_eps"})
        g.nodes[layers[l].node].attrs.erase(k);  // consumed: the folded values changed
      ++report.corrected_layers;
    }
    write_layer_weights(g, layers[l]);
  }
  for (const ActSite& site : sites) {
    const std::string& in = g.values[site.in_value].name;
    if (!site.params) fail(kWhere, "calibration pass never reached value '" + in + "'");
    for (int c : g.consumers(site.in_value)) {
      Node& fq = g.nodes[c];
      if (fq.op != "FakeQuant") continue;
      fq.attrs.set_f("scale", site.params->scale);
      fq.attrs.set_i("qmin", site.params->qmin);
      fq.attrs.set_i("qmax", site.params->qmax);
      fq.attrs.set_i("bits", site.params->bits);
    }
    report.act_params[in] = *site.params;
  }
  for (Node& n : g.nodes)
    if (auto it = preadd.find(g.values[n.outputs[0]].name); it != preadd.end() && it->second.count() > 0) {
      int qmin = 0, qmax = 0;
      act_range(8, true, qmin, qmax);
      const float clip = it->second.clip(parse_calib_method(opt.act_calib), qmax, opt.percentile);
      n.attrs.set_f("fgq_preadd_scale", make_act_params(clip, 8, true, opt.pow2_scales).scale);
    }

}

// 4. Report: sparsity and multiplications saved over the ternary layers.
void summarize_weights(const std::vector<LayerWeights>& layers, QuantReport& report) {
  double ternary_weights = 0, ternary_zeros = 0, ternary_groups = 0;
  for (const LayerWeights& lw : layers) {
    report.layers.push_back(lw.stats);
    if (!lw.ternary) continue;
    // The weights the integer kernels multiply: folded int8 levels (a level that rounded to 0
    // zeroes its group) or the codes themselves.
    ZeroBlocks& z = report.layers.back().zero_blocks;
    z = lw.runs_int8() ? count_zero_blocks(lw.int8.q.data(), lw.int8.shape)
                       : count_zero_blocks(lw.tern.t.data(), lw.tern.shape);
    report.zero_blocks.blocks += z.blocks;
    report.zero_blocks.zero += z.zero;
    report.zero_levels += lw.fold.zero_levels;
    report.nonzero_groups += lw.fold.groups;
    const double count = static_cast<double>(lw.tern.t.size());
    ternary_weights += count;
    ternary_zeros += lw.stats.sparsity * count;
    ternary_groups += static_cast<double>(lw.tern.num_groups());
  }
  if (ternary_weights > 0) {
    report.weight_sparsity = ternary_zeros / ternary_weights;
    // Each group of n weights needs one multiply instead of n (1 - 1/N when N divides C).
    report.mults_removed = 1 - ternary_groups / ternary_weights;
  }
}

}  // namespace

QuantReport quantize_graph_with(Graph& g, const QuantOptions& opt, const float* calib,
                                int n_calib, const GraphRunner& run,
                                const Fp32Reference* reference) {
  const auto t0 = std::chrono::steady_clock::now();
  validate(g, opt, n_calib, calib);

  std::vector<int> layer_nodes;
  for (size_t i = 0; i < g.nodes.size(); ++i)
    if (is_weighted_layer(g, g.nodes[i])) layer_nodes.push_back(static_cast<int>(i));
  QuantReport report;
  if (layer_nodes.empty()) return report;

  // Convs without folded BN parameters are matched to the FP32 network's statistics.
  const bool use_bn = opt.correction == "bn";
  bool need_moments = false;
  if (opt.stats_correction)
    for (int i : layer_nodes)
      need_moments |= g.nodes[i].op == "Conv" && (!use_bn || !g.nodes[i].attrs.has("bn_gamma"));
  Fp32Reference computed;
  if (!reference && (need_moments || opt.gptq))
    computed = measure_fp32_reference(g, calib, n_calib, need_moments, opt.gptq ? opt.gptq_samples : 0, run);
  const Fp32Reference& ref = reference ? *reference : computed;

  std::vector<LayerWeights> layers = quantize_weights(g, layer_nodes, opt, ref);
  correct_and_calibrate(g, layers, opt, calib, n_calib, run, ref, report);
  summarize_weights(layers, report);
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return report;
}

}  // namespace fgq
