#pragma once
// Exact folding of FGQ's per-group scales into per-output-channel int8 (what the integer
// pipeline runs). alpha_g changes every N input channels, so one int32 accumulator cannot sum
// across groups as it stands; with
//     s_o[k] = max_g alpha_g / A,   a_g = round(alpha_g / s_o[k])  (0..A),   q = a_g * t,
// the layer is plain per-channel int8 (w ~= s_o[k] * q) and one u8 x s8 dot product covers every
// group. The price is alpha rounded to A levels per channel: a_g = 0 zeroes a group outright.
#include <cstdint>

#include "quant/ternarize.h"
#include "quant/weight_int8.h"

namespace fgq {

struct FoldStats {
  int64_t groups = 0;        // groups with a non-zero ternary value
  int64_t zero_levels = 0;   // ... of which alpha rounded to level 0 (the group is lost)
  double rel_error = 0;      // ||alpha t - s_o q|| / ||alpha t||: what folding adds
};

// levels = A in 1..127. The result's q (int8) has the ternary layout; scale[k] = s_o[k] (1 for
// a channel without any non-zero weight).
Int8Weights fold_group_scales(const TernaryWeights& tw, int levels, FoldStats* stats = nullptr);

}  // namespace fgq
