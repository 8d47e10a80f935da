#pragma once
// Load-time FGQ quantization of a prepared (BN-folded, NOT yet activation-fused) graph:
// ternary weights in groups of N, 8/4-bit activations (simulated: FakeQuant nodes), and
// per-channel statistics correction on calibration images.
#include <string>
#include <vector>

#include "fgq/quant_options.h"
#include "graph/ir.h"

namespace fgq {


struct LayerQuantStats {
  std::string name;
  std::string kind;                  // ternary | int8 | fp32
  int64_t groups = 0;
  double sparsity = 0;               // fraction of zero weights
  double rel_error = 0;              // ||W - W_hat|| / ||W||
};

struct QuantReport {
  std::vector<LayerQuantStats> layers;
  double weight_sparsity = 0;        // over all ternarized weights
  double mults_removed = 0;          // 1 - 1/N over ternarized weights
};

// calib: n_calib preprocessed images, contiguous (n_calib x C x H x W).
QuantReport quantize_graph(Graph& g, const QuantOptions& opt, const float* calib, int n_calib);

}  // namespace fgq
