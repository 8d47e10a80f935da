#pragma once
// Data-aware ternarization with error compensation (GPTQ, Frantar et al. 2022, after OBQ):
// a layer's weights are ternarized one FGQ group at a time, and each weight's rounding error is
// pushed onto the weights of the same output channel not yet quantized, through the inverse
// Hessian of the layer's squared output error on calibration inputs, H = sum_p x_p x_p^T.
// This minimises ||X W - X W_hat|| (what the next layer sees) rather than ||W - W_hat||.
#include <cstdint>
#include <vector>

#include "graph/ir.h"
#include "quant/ternarize.h"

namespace fgq {

// Second moments of a layer's input patches, in the weight layout of one output channel:
// index (c * KH + r) * KW + s.
struct LayerHessian {
  int64_t d = 0;
  std::vector<float> h;  // d x d, symmetric
  int64_t samples = 0;
};

// Geometry of a (group = 1) convolution's input patches.
struct PatchWindow {
  int64_t C = 0, H = 0, W = 0, KH = 1, KW = 1;
  int64_t SH = 1, SW = 1, DH = 1, DW = 1, PT = 0, PL = 0;
  int64_t OH = 1, OW = 1;
};

// Adds the patches of x [batch, C, H, W] at up to `max_samples` output positions, spread evenly
// over the batch, to H. A fully-connected input [batch, C] is the window C x 1 x 1.
void accumulate_hessian(LayerHessian& h, const float* x, int64_t batch, const PatchWindow& win,
                        int64_t max_samples);

// H's inverse Cholesky factor in group order: all gptq_ternarize needs from the inputs, the same
// for every group size and threshold rule. Empty (u.empty()) when H has fewer samples than
// inputs (singular: compensation would overfit the calibration inputs) or cannot be factored
// even after raising the damping `damp` (a fraction of the mean diagonal) 10000-fold.
struct GptqFactor {
  int64_t C = 0, RS = 0;          // input channels, kernel positions (FC: 1): d = C * RS
  std::vector<float> u;           // d x d upper triangular, row-major, (H + damp)^-1 = U^T U
  std::vector<uint8_t> dead;      // per column (group order): input never non-zero
};
GptqFactor gptq_factor(const LayerHessian& h, int64_t C, int64_t RS, double damp = 0.01);

// Ternarizes w [K, C, KH, KW] (FC: [K, C]) in FGQ groups of `group` input channels. Within a
// group, alpha comes from `method` on the group's current (compensated) weights; each weight then
// takes the ternary value nearest to it on alpha's grid. Falls back to plain ternarize() when the
// factor is empty (H could not be factored) or belongs to another weight shape.
TernaryWeights gptq_ternarize(const float* w, const Shape& shape, int group, Threshold method,
                              const GptqFactor& f);
// The same from H: gptq_factor(h, C, KH * KW, damp), then the above.
TernaryWeights gptq_ternarize(const float* w, const Shape& shape, int group, Threshold method,
                              const LayerHessian& h, double damp = 0.01);

}  // namespace fgq
