#pragma once
// FGQ weights as the integer pipeline keeps them: 2-bit ternary codes (DType::T2, graph/ir.h)
// plus one integer level a_g (1..127, 0 for a group whose scale rounded to zero) per group of N
// input channels, so that weight = a_g * t is an int8 and the layer is per-channel int8 with
// scale s_o[k] (quant/fold_scales.h). 2 bits per weight + 1 byte per group: at N = 4, ResNet-50's
// ternary layers take 11.7 MB instead of 23.5 MB as int8 or 94 MB as float.
#include <cstdint>
#include <string>
#include <vector>

#include "graph/ir.h"

namespace fgq {

// t in {-1, 0, +1} -> T2 bytes (four per byte, first in the low bits).
std::vector<uint8_t> pack_ternary_codes(const int8_t* t, int64_t n);
// Throws fgq::Error (naming `where`) on the invalid code 3.
std::vector<int8_t> unpack_ternary_codes(const uint8_t* codes, int64_t n, const std::string& where);

// Checks a layer's ternary weights: codes T2 of shape [K, C, KH, KW] (no code 3), levels U8
// [K, ceil(C / group), KH, KW] (each <= 127), group >= 1. Throws fgq::Error naming `where`.
void check_ternary(const Tensor& codes, const Tensor& levels, int64_t group, const std::string& where);

// int8 weights [K][C][KH][KW] = level[k][c / group][r][s] * t[k][c][r][s], checked as above.
std::vector<int8_t> expand_ternary(const Tensor& codes, const Tensor& levels, int64_t group,
                                   const std::string& where);

}  // namespace fgq
