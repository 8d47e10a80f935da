#pragma once
// Load-time FGQ quantization of a prepared (BN-folded, NOT yet activation-fused) graph:
// ternary weights in groups of N, 8/4-bit activations (FakeQuant nodes: the calibration graph,
// which graph/pass_lower_integer.h turns into the integer pipeline), and per-channel statistics
// correction on calibration images.
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "fgq/quant_options.h"
#include "graph/ir.h"
#include "quant/act_quant.h"
#include "quant/gptq.h"
#include "quant/stats_correction.h"
#include "quant/zero_blocks.h"

namespace fgq {

struct LayerQuantStats {
  std::string name;
  std::string kind;                  // ternary | int8 | fp32
  int64_t groups = 0;
  double sparsity = 0;               // fraction of zero weights
  double rel_error = 0;              // ||W - W_hat|| / ||W|| (ternary: before folding)
  int64_t zero_levels = 0;           // folded ternary: groups whose scale rounded to level 0
  double fold_rel_error = 0;         // folded ternary: ||alpha t - s_o q|| / ||alpha t||
  ZeroBlocks zero_blocks;            // ternary: all-zero 16 x 4 blocks of the weights that run
};

struct QuantReport {
  std::vector<LayerQuantStats> layers;
  double weight_sparsity = 0;        // over all ternarized weights
  double mults_removed = 0;          // 1 - groups/weights over ternarized weights (1 - 1/N when N | C)
  int64_t zero_levels = 0;           // over all folded ternary layers (see LayerQuantStats)
  int64_t nonzero_groups = 0;        // ternary groups with a non-zero weight, the base of that
  ZeroBlocks zero_blocks;            // over all ternary layers (see quant/zero_blocks.h)
  // Added by quant/: what an integer pipeline (and a later run) needs, and what the run cost.
  ActCalibTable act_params;          // per FakeQuant, keyed by the name of the value it reads
  int corrected_layers = 0;          // convs whose per-channel statistics were corrected
  size_t calib_arena_bytes = 0;      // executor arena of the calibration pass (whole batch)
  double seconds = 0;                // wall time of quantize_graph
};

// The graph runner is passed in (quant/ sits below runtime/ in the layering; runtime/
// quantize_runner.h has quantize_graph(), this on runtime/'s Executor):
// run(graph, input, batch, observer) executes `graph` on `batch` images, calls observer after
// every node with that node's output over the whole batch (which it may modify in place before
// later nodes read it), and returns the bytes of activation memory it used.
using GraphObserver = std::function<void(const Graph& run_graph, const Node& node, float* out,
                                         const Shape& shape)>;
using GraphRunner = std::function<size_t(const Graph& g, const float* input, int batch,
                                         const GraphObserver& observer)>;

// What quantization measures on the FP32 graph g over the calibration images: each Conv
// output's per-channel moments (the target of correction "fp32" and "mean"), and each GPTQ-able
// layer's factor of its input Hessian. It depends on neither N, the threshold rule nor the
// activation width: quantize_graph_with measures it when not given, a sweep over configurations
// measures it once. gptq_samples 0: no factors.
struct Fp32Reference {
  std::map<std::string, ChannelMoments> moments;  // by Conv output value name
  std::map<std::string, GptqFactor> factors;      // by layer node name
};
Fp32Reference measure_fp32_reference(const Graph& g, const float* calib, int n_calib,
                                     bool moments, int gptq_samples, const GraphRunner& run);

// calib: n_calib preprocessed images, contiguous (n_calib x C x H x W).
// Every Conv/Gemm/MatMul with constant weights gets quantized weights (ternary, or 8-bit for the
// first conv / last layer unless ternarize_first/last), ternary ones with their group scales
// folded into opt.fold_levels int8 levels per output channel (quant/fold_scales.h; the fgq_*
// node attributes of quant/layer_weights.h keep the int8 weights recoverable exactly). With
// act_bits > 0, a "FakeQuant" node (attrs scale, qmin, qmax, bits) goes behind every tensor the
// integer pipeline stores as integers (graph/pass_lower_integer.h): each layer's data input, the
// residual operand of each Add that fuses into a conv, the input of each MaxPool and
// GlobalAveragePool; all readers read it. With opt.gptq, ternary layers are ternarized by GPTQ
// (quant/gptq.h) with reference.factors (layers whose Hessian has fewer samples than inputs fall
// back to plain ternarization).
// Statistics correction and activation calibration share ONE pass over all n_calib images as one
// batch: layer by layer, each conv output is corrected in place before later layers read it, and
// each FakeQuant (inserted uncalibrated: the executor passes its input through) is calibrated on
// the corrected values it sees, then quantizes them in place. Each conv output is matched to the
// FP32 graph's per-channel moments (reference.moments; correction "mean": the mean only), or with
// correction "bn" convs with bn_* attributes get their BN re-estimated instead
// (quant/stats_correction.h). Gemm/MatMul outputs are not corrected. Layers kept at 8-bit
// weights also get 8-bit inputs when act_bits is 4, and tensors no ternary layer reads (a
// projection shortcut, the pool's input) stay 8-bit.
QuantReport quantize_graph_with(Graph& g, const QuantOptions& opt, const float* calib,
                                int n_calib, const GraphRunner& run,
                                const Fp32Reference* reference = nullptr);

}  // namespace fgq
