#pragma once
// What skipping all-zero weight blocks could buy (issue: "what ternary buys beyond int8"). The
// VNNI kernels (ops/qconv) multiply 64-byte weight vectors of 16 output x 4 input channels at one
// kernel position; a vector whose 64 weights are all zero contributes nothing and could be
// skipped. This counts them in a layer's final integer weights.
#include <cstdint>

#include "graph/ir.h"

namespace fgq {

struct ZeroBlocks {
  int64_t blocks = 0;  // 16 x 4 blocks covering the weights (the last ones partial)
  int64_t zero = 0;    // of them, the ones whose weights are all zero
};

// q: weights [K, C, ...] (rank 2 or 4, dim 0 the output channel), row-major.
ZeroBlocks count_zero_blocks(const int8_t* q, const Shape& shape);

}  // namespace fgq
