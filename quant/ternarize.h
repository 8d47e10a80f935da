#pragma once
// Fine-grained ternarization (FGQ): a weight tensor [K, C, KH, KW] (FC: [K, C], i.e. KH=KW=1) is
// split into groups of N consecutive input channels at fixed (k, r, s); each group g gets its own
// threshold delta_g and scale alpha_g, and w ~= alpha_g * t with t in {-1, 0, +1},
// t = sign(w) if |w| > delta_g else 0. The last group along C is shorter when N does not divide C.
#include <cstdint>
#include <string>
#include <vector>

#include "graph/ir.h"

namespace fgq {

enum class Threshold {
  Exact,  // per-group optimum of ||w - alpha t||^2 (keep the k largest magnitudes, best k)
  Twn,    // Ternary Weight Networks rule: delta = 0.7 mean|w|, alpha = mean of |w| > delta
};
// "exact" | "twn"; throws fgq::Error otherwise.
Threshold parse_threshold(const std::string& name);

// Result of ternarizing one group of weights.
struct GroupTernary {
  float alpha = 0;  // scale of the kept weights (0 when none is kept)
  float delta = 0;  // keep w iff |w| > delta
  int kept = 0;     // number of non-zero ternary values
};

// One group given as n values (contiguous). Exact: candidate k only where the k-th and (k+1)-th
// magnitudes differ (a threshold cannot split ties; the objective is convex along a run of equal
// magnitudes, so nothing is lost), smallest maximising k wins, zero magnitudes are never kept;
// delta = the (k+1)-th largest magnitude (0 when all are kept).
GroupTernary ternarize_group(const float* w, int n, Threshold method);

struct TernaryWeights {
  Shape shape;               // [K, C, KH, KW] (FC weights are stored as [K, C, 1, 1])
  int group = 1;             // N
  std::vector<int8_t> t;     // same layout as the weights, values in {-1, 0, +1}
  // One scale per group, index ((k * G + g) * KH + r) * KW + s with G = groups_along_c()
  // and g = c / N: the weight layout with C replaced by the group index.
  std::vector<float> alpha;

  int64_t K() const { return shape[0]; }
  int64_t C() const { return shape[1]; }
  int64_t KH() const { return shape[2]; }
  int64_t KW() const { return shape[3]; }
  int64_t groups_along_c() const { return (C() + group - 1) / group; }
  int64_t num_groups() const { return static_cast<int64_t>(alpha.size()); }
  // alpha_g * t in the weight layout.
  std::vector<float> dequantize() const;
  // Multiplies every alpha of output channel k by scale[k] (scale >= 0 keeps t unchanged).
  void scale_output_channels(const std::vector<float>& scale);
};

struct TernaryStats {
  int64_t groups = 0;
  double sparsity = 0;   // fraction of zeros in t
  double rel_error = 0;  // ||W - W_hat|| / ||W|| (0 for an all-zero W)
};

// w has the layout of `shape` (rank 2 [K, C] or rank 4 [K, C, KH, KW]). Parallel over K.
TernaryWeights ternarize(const float* w, const Shape& shape, int group, Threshold method);
TernaryStats ternary_stats(const float* w, const TernaryWeights& tw);

}  // namespace fgq
